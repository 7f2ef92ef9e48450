// Helpers shared by the file-family handlers (not for other families).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_INTERNAL_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_INTERNAL_H_

#include <poll.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/syscall.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry::file_internal {

// MAX_RW_COUNT: Linux caps one read/write at INT_MAX rounded down to a page.
inline constexpr size_t kMaxRw = 0x7ffff000;
inline constexpr int kUioMaxIov = 1024;

inline Result<FileRef> GetFile(Task& t, int fd) {
  auto f = t.fds().Get(fd);
  if (!f.ok()) return Errno(EBADF);
  return f;
}
// Like GetFile, but O_PATH files are EBADF (they support no I/O).
Result<FileRef> GetIoFile(Task& t, int fd);

inline Result<std::string> CopyInPath(Task& t, UserAddr a) {
  if (a.IsNull()) return Errno(EFAULT);
  return t.CopyInString(a, 4096);
}

// RLIMIT_NOFILE of the task's process (1024 if unset).
int FdLimit(Task& t);
// inode_newsize_ok(): growing a regular file from `old_size` to `new_size`
// past RLIMIT_FSIZE is EFBIG and sends the caller SIGXFSZ (truncate,
// fallocate); shrinking is never limited.
Status CheckFileGrowth(Task& t, uint64_t old_size, uint64_t new_size);
// generic_write_check_limits(): how much of a `len`-byte write at `offset`
// (-1: the file offset; O_APPEND: the end) a regular file takes under
// RLIMIT_FSIZE; EFBIG (and SIGXFSZ to the caller) if none. Every write
// path uses it: write(2) and friends, io_submit's writes.
Result<size_t> LimitToFileSize(Task& t, FileDescription& f, size_t len, int64_t offset);

// Reads up to `len` bytes from `f` into guest memory at `buf` (at `offset`
// if >= 0, else at the file offset).
Result<size_t> ReadToUser(Task& t, FileDescription& f, UserAddr buf, size_t len,
                          int64_t offset);
Result<size_t> WriteFromUser(Task& t, FileDescription& f, UserAddr buf, size_t len,
                             int64_t offset);

// I/O at an explicit `offset` (>= 0; -1 is the file offset, which any file
// has) on a file without a position (FileDescription::Positional(): a
// pipe, socket, terminal, eventfd ...) is ESPIPE, before the access mode is
// looked at (ksys_pread64(), do_preadv(), do_sendfile()).
inline Status NeedPosition(const FileDescription& f, int64_t offset) {
  if (offset >= 0 && !f.Positional()) return Errno(ESPIPE);
  return {};
}

// readv(2)-style iovecs from guest memory (EINVAL past UIO_MAXIOV or when
// the lengths overflow).
Result<std::vector<iovec>> CopyInIovecs(Task& t, UserAddr addr, int cnt);
// The bytes the iovecs point at, in one buffer; a fault after some bytes
// ends the buffer there (EFAULT if at the start).
Result<std::string> GatherFromUser(Task& t, const std::vector<iovec>& iov);

// Waits until one of `pfds` (guest fds) is ready, the absolute CLOCK_MONOTONIC
// `deadline` passes (null: none), or a signal arrives (kERESTARTNOHAND).
// Fills revents and returns the number of ready entries.
Result<int> DoPoll(Task& t, std::vector<pollfd>& pfds, const timespec* deadline);

// The sigmask argument of ppoll(2), pselect6(2), epoll_pwait(2) and
// io_pgetevents(2) (null: none; EINVAL unless `size` is a sigset's), in
// force until the return to the guest (Task::restore_saved_mask_; the
// signal frame saves the old one if a handler runs).
Status SwapSigmask(Task& t, UserAddr set, size_t size);

timespec MonotonicNowTimespec();
timespec AddTimespec(timespec a, timespec b);

// File leases (sys_file_lease.cc): fcntl(F_SETLEASE) with `arg` on `f`
// through `fd`, fcntl(F_GETLEASE), and the breaks an open(2) of `f` with
// `flags` or a truncate(2) of `inode` make (waiting for the holder,
// EWOULDBLOCK for O_NONBLOCK).
SyscallReturn FcntlSetLease(Task& t, FileDescription& f, int fd, long arg);
SyscallReturn FcntlGetLease(FileDescription& f);
Status BreakLeasesOnOpen(Task& t, FileDescription& f, int flags);
Status BreakLeasesOnTruncate(Task& t, Inode& inode, bool nonblock = false);
// Whether any file has a lease (one atomic load): an open(2) with O_TRUNC
// then looks its file up first, to break them before it truncates.
bool AnyLeases();

// dnotify (sys_file_dnotify.cc): fcntl(F_NOTIFY) with `arg` on `f` through
// `fd` (fcntl_dirnotify()), and what a close(2) of an fd of `f` by `t`
// does to it (dnotify_flush(): the watch t's fd table set through `f` goes).
SyscallReturn FcntlNotify(Task& t, FileDescription& f, int fd, unsigned long arg);
void DnotifyFlush(Task& t, FileDescription& f);

// FS_IOC_GETFLAGS/FS_IOC_SETFLAGS on `f` (sys_file_flags.cc); other
// files' own Ioctl answers where their filesystem keeps no inode flags.
Result<long> InodeFlagsIoctl(Task& t, FileDescription& f, unsigned long cmd, UserAddr arg);

// Releases the POSIX record locks `owner` holds on the file behind `f`
// (close(2) drops them all, whichever fd they were taken through).
void ReleaseRecordLocks(FileDescription& f, int owner);
// What close(2) of an fd of `f` by `t` does besides dropping it (Linux's
// ->flush and locks_remove_posix()): its record locks go, and a POSIX
// message queue notification `t`'s process registered goes.
void FlushOnClose(Task& t, FileDescription& f);

}  // namespace seedvisor::sentry::file_internal

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_INTERNAL_H_
