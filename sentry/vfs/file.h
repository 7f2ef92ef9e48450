// FileDescription: one open file description (Linux's struct file).
//
// File descriptors in an FdTable point at these; dup() and fork() share them,
// so the offset and status flags are shared as Linux shares them. Every file
// type (host passthrough, tmpfs, overlay, pipe, /dev, /proc ...) derives from
// it and overrides what it supports; the defaults return the errno Linux
// returns for a file that lacks the operation.
//
//   SV_ASSIGN_OR_RETURN(auto file, task.fds().Get(fd));
//   SV_ASSIGN_OR_RETURN(size_t n, file->Read(task, buf.data(), buf.size()));
#ifndef SEEDVISOR_SENTRY_VFS_FILE_H_
#define SEEDVISOR_SENTRY_VFS_FILE_H_

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::sentry {

class Task;
class Dentry;
class FileDescription;
class Mount;
class PidNumbers;

// What holds a Mount (Mount::counts()): its users keep umount2 from
// unmounting it (EBUSY, propagate_mount_busy()), its writers a remount
// from making it read-only (mnt_get_writers()); `fs_writers` counts the
// writers of every mount of one filesystem instance (shared by
// Mount::ShareSuperblock: sb_prepare_remount_readonly()). Kept apart from
// the Mount so that a hold may outlive it.
//
// `unmounting` is set by umount2 (without MNT_DETACH) under the Vfs's
// mount lock before it reads `users`, and stays set once the mount is
// gone (Linux's MNT_SYNC_UMOUNT); a hold is taken before `unmounting` is
// read (both sequentially consistent), so either umount2 sees the hold
// (EBUSY) or the holder sees the flag and asks Vfs::HeldMountLive.
struct MountCounts {
  std::atomic<int> users{0};
  std::atomic<int> writers{0};
  std::atomic<bool> unmounting{false};
  std::shared_ptr<std::atomic<int>> fs_writers = std::make_shared<std::atomic<int>>(0);
};

// One hold on a mount while it lives: an open file on it, or an fs
// context's root or working directory there. A file opened for writing
// (not a device node, FIFO or socket: Linux's FMODE_WRITER) is a writer.
//
//   MountHold hold(dentry->mount(), /*write=*/false);  // null: holds nothing
class MountHold {
 public:
  MountHold() = default;
  MountHold(const Mount* m, bool write);
  MountHold(MountHold&& o) noexcept;
  MountHold& operator=(MountHold&& o) noexcept;
  MountHold(const MountHold&) = delete;
  MountHold& operator=(const MountHold&) = delete;
  ~MountHold() { Release(); }

 private:
  void Release();
  std::shared_ptr<MountCounts> counts_;
  bool write_ = false;
};

// What a forked sentry's files need to become the child's own (sentry/sfork,
// FileDescription::AdoptInForkChild).
struct ForkFileContext {
  // The child's stdio (host fds the sfork code owns): the seed's stdio files
  // (HostStdioFile) switch to these. `stdio_slot` says which slot each of
  // the init's stdio files was; other stdio files go by access mode.
  int stdio[3] = {-1, -1, -1};
  std::map<const FileDescription*, int> stdio_slot;
  // A fork made ahead of its request (sentry/sfork's ahead forks) has no
  // stdio yet (stdio[slot] < 0): its stdio files let go of the seed's host
  // fds and wait here, to adopt again once the request brings the stdio.
  std::vector<std::shared_ptr<FileDescription>> stdio_later;
  // Work that must wait until every file has adopted (an epoll instance
  // registers its files' new PollFd()s): the sfork code runs these in order
  // after the walk; an error fails the fork like a refusal.
  std::vector<std::function<absl::Status()>> deferred;
  // What the deferred work must leave until the files in stdio_later have
  // their stdio (an epoll instance's registration of one): the sfork code
  // runs these in order once they adopted it; an error fails the fork.
  std::vector<std::function<absl::Status()>> after_stdio;
  // Objects that several descriptions share (a pipe and its ends) and that
  // one of them already made the child's own during this walk.
  std::set<const void*> shared_adopted;
  // Adopts a description that no fd table or mapping holds but an adopted
  // object does (a file queued by SCM_RIGHTS, a connection waiting in
  // accept()'s queue), once per description like the walk's own.
  std::function<absl::Status(const std::shared_ptr<FileDescription>&)> adopt;
};

// Which file an inode is, for advisory locks (fcntl record and OFD locks,
// flock), which Linux keeps per inode (inode->i_flctx): equal for every
// Inode object that stands for one file. Pointers are no such key where a
// filesystem makes an object per lookup (the overlay does: a rename, a
// second link or a lookup racing with the create leads to another).
struct FileLockKey {
  const void* fs = nullptr;  // FsId()
  dev_t dev = 0;
  ino_t ino = 0;
  auto operator<=>(const FileLockKey&) const = default;
};

// The kernel's O_LARGEFILE on x86-64, which F_GETFL reports for files that
// open(2) made (glibc's O_LARGEFILE is 0 there: every file is large).
inline constexpr int kKernelOLargefile = 0100000;

class FileDescription : public std::enable_shared_from_this<FileDescription> {
 public:
  // `flags` are the open(2) flags; O_CLOEXEC belongs to the fd, not here.
  explicit FileDescription(int flags, std::shared_ptr<Dentry> dentry = nullptr);
  virtual ~FileDescription();
  FileDescription(const FileDescription&) = delete;
  FileDescription& operator=(const FileDescription&) = delete;

  int flags() const { return flags_.load(); }
  // F_SETFL: only O_APPEND, O_NONBLOCK, O_DIRECT and O_NOATIME change, and
  // O_ASYNC on a file that SupportsAsync() (setfl() leaves FASYNC to
  // ->fasync). Turning O_ASYNC on through `fd` makes it the si_fd of the
  // F_SETSIG signal (fasync_helper()).
  void SetStatusFlags(int flags, int fd = -1);
  // Whether a write(2) that fails with EPIPE also raises SIGPIPE: pipes and
  // stream sockets do (pipe_write(), unix_stream_sendmsg()), datagram and
  // seqpacket sockets do not (unix_dgram_sendmsg()).
  virtual bool EpipeRaisesSigpipe() const { return true; }
  // Files that signal their owner when they become ready (Linux's
  // ->fasync: pipes, FIFOs, sockets); the others ignore O_ASYNC.
  virtual bool SupportsAsync() const { return false; }
  // Files whose O_ASYNC signals come from their PollFd()'s readiness
  // (sockets, terminals, inotify: sentry/kernel/file_owner.h's WatchAsync)
  // rather than from their own code (pipes signal their ends themselves).
  virtual bool SigioFromReadiness() const { return false; }
  // O_ASYNC was just turned on for this description (->fasync with on=1),
  // by fcntl(F_SETFL) or FIOASYNC: a terminal makes its foreground process
  // group the owner if it has none (tty_fasync()).
  virtual void AsyncTurnedOn(Task&) {}
  // sock_wake_async(SOCK_WAKE_SPACE) signals POLL_OUT only after a send found
  // no room (SOCKWQ_ASYNC_NOSPACE), and a connect that completes later
  // (tcp_finish_connect()) signals it too: the file notes either here, and
  // the next POLL_OUT edge takes the note.
  void NoteAsyncOutWanted() const { async_out_wanted_.store(true); }
  bool TakeAsyncOutWanted() { return async_out_wanted_.exchange(false); }

  // The F_SETOWN/F_SETOWN_EX/F_SETSIG state (Linux's struct fown_struct),
  // shared by every fd of the description. sentry/kernel/file_owner.h sets
  // it and sends the signals.
  struct AsyncOwner {
    int type = F_OWNER_TID;  // F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP
    // The id it names (f_owner.pid, a struct pid: its numbers as they were
    // given, never a later holder's); null: nobody.
    std::shared_ptr<const PidNumbers> pid;
    int sig = 0;             // F_SETSIG; 0 is plain SIGIO
    int fd = -1;             // si_fd: the fd O_ASYNC was turned on through
    uid_t uid = 0, euid = 0;  // of the task that set the owner (f_modown()), for sigio_perm()
  };
  AsyncOwner async_owner() const;
  void UpdateAsyncOwner(const std::function<void(AsyncOwner&)>& fn);
  bool readable() const;
  bool writable() const;
  // Whether I/O at an explicit offset (pread64, pwritev, sendfile's and
  // splice's offsets) may name this file: Linux's FMODE_PREAD/FMODE_PWRITE,
  // which do_dentry_open() gives every file opened by a path and
  // stream_open()/nonseekable_open() take from pipes, FIFOs and terminals;
  // anonymous files (sockets, eventfd, epoll, signalfd, timerfd, inotify,
  // pidfd) never had it. Without it such I/O is ESPIPE before the access
  // mode is looked at (ksys_pread64()); sentry/syscalls asks it in one
  // place (file_internal::NeedPosition).
  virtual bool Positional() const { return dentry_ != nullptr; }
  bool nonblocking() const { return (flags() & O_NONBLOCK) != 0; }
  const std::shared_ptr<Dentry>& dentry() const { return dentry_; }
  // Which file this is for advisory locks: its inode's LockKey (the
  // description itself without a dentry: a pipe, a socket), asked when
  // first needed and kept, since it never changes and asking may cost a
  // host fstatat (a close while locks exist asks it).
  FileLockKey LockKey();

  // read(2)/write(2) at the file offset. Blocking files wait through
  // Task::BlockOnFd or a WaitQueue (vfs/waiter.h), so a signal interrupts
  // them.
  virtual Result<size_t> Read(Task& t, char* buf, size_t len);
  virtual Result<size_t> Write(Task& t, const char* buf, size_t len);
  // pread64(2)/pwrite64(2): ESPIPE unless the file is seekable.
  virtual Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset);
  virtual Result<size_t> PWrite(Task& t, const char* buf, size_t len, int64_t offset);
  virtual Result<int64_t> Seek(int64_t offset, int whence);
  virtual Result<struct stat> Stat();
  // getdents64(2) into guest memory at `buf`.
  virtual Result<size_t> GetDents64(Task& t, UserAddr buf, size_t len);
  virtual Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg);
  virtual Status Truncate(int64_t length);
  virtual Status Sync();
  // A host fd the platform can mmap for this file, or ENODEV.
  virtual Result<int> MappableFd();
  // The same for a change of the host object (fallocate, a MAP_SHARED
  // mapping): a file whose host object a sandbox fork left shared with
  // another sandbox makes it its own first (tmpfs).
  virtual Result<int> MappableFdForWrite() { return MappableFd(); }
  // A new open file description of the same object, for open() through
  // /proc/PID/fd/N of a file that has no path (a pipe, the sandbox's
  // stdio). ENXIO by default, as Linux answers for sockets.
  virtual Result<std::shared_ptr<FileDescription>> Reopen(int flags);
  // A host fd whose poll readiness is this file's, or -1 if always ready.
  // Files whose state lives in the sentry (pipes, eventfds, ptys) may make
  // it on the first call: call it only to poll.
  virtual int PollFd() const { return -1; }
  // Error events (POLLERR, POLLHUP) the file's own state adds to what its
  // PollFd() shows, for a state no host object can mirror: an eventfd
  // whose count reached 2^64-1 (eventfd_poll()'s EPOLLERR). poll, select
  // and epoll add them to what they report.
  virtual short PollErrorEvents() const { return 0; }
  // True for files whose reads return what is there and may block (pipes,
  // sockets, terminals, eventfds): one read(2) is one Read, never chunked.
  virtual bool IsStream() const { return PollFd() >= 0; }
  // What FIONREAD says for a stream (0 if unknown): how much a read can
  // take now.
  virtual size_t BytesReadable() const;
  // The name /proc/PID/fd and /proc/PID/maps show ("/etc/passwd", "pipe:[12]").
  virtual std::string DisplayPath() const;
  // What /proc/PID/fdinfo/N shows after pos, flags, mnt_id and ino: the
  // file type's own lines (Linux's ->show_fdinfo, e.g. "eventfd-count:").
  virtual std::string FdInfo() { return ""; }

  // Sandbox fork (sentry/sfork): called once in the forked sentry, on its
  // only thread, for every open file description the child's guest can
  // reach. Replaces host state that must not be shared with the seed (a host
  // object that holds guest data, a wakeup primitive) by the child's own.
  // The default accepts files without such state (PollFd() < 0) and refuses
  // the others, naming them: nothing is shared between sandboxes by
  // accident.
  virtual absl::Status AdoptInForkChild(ForkFileContext& ctx);
  // True if no sandbox can change this file's data (a read-only host
  // passthrough file): a MAP_SHARED mapping of it may stay shared between a
  // seed and its forks, like the host's page cache it is.
  virtual bool DataImmutableInSandbox() const { return false; }
  // Sandbox fork of a MAP_SHARED mapping of this file (sentry/sfork.cc has
  // the design): in the forked sentry, makes the host object behind
  // MappableFdForWrite() this sandbox's own copy now, before the seed can
  // run again and change its own. Refused by default: only files that can
  // copy their data (tmpfs) may be mapped shared across a fork.
  virtual absl::Status UnshareMappedInForkChild();
  // In the seed after a fork: the forks copied what this file's MAP_SHARED
  // mappings map, so the host object is the seed's alone again (tmpfs
  // counts it shared otherwise, and would copy it away from under the
  // seed's own mappings on the next write).
  virtual void KeepMappedAfterFork() {}

  // Runs `fn` once when this description is released (its last reference
  // goes, after the derived class closed its host fd): epoll instances
  // forget their registrations of it, as eventpoll_release() does. One hook
  // per `owner` (a later one replaces it); CancelRelease(owner) removes it.
  void OnRelease(const void* owner, std::function<void(const FileDescription*)> fn);
  void CancelRelease(const void* owner);

  // Landlock's LANDLOCK_ACCESS_FS_TRUNCATE as the opener's domain granted
  // it on the path when the file was opened (hook_file_open() keeps the
  // rights in the file): ftruncate(2) and O_TRUNC ask the file, not the
  // path, so a file opened before a restriction keeps its rights.
  bool landlock_truncate_denied() const { return landlock_no_truncate_.load(); }
  void set_landlock_truncate_denied() { landlock_no_truncate_.store(true); }

 protected:
  // read(2) for a file whose PRead gives its bytes: reads at the file offset
  // and moves it past what was read.
  Result<size_t> ReadAtOffset(Task& t, char* buf, size_t len);

  // Keeps `flag` in flags() though the constructor drops creation flags
  // (a thread pidfd's PIDFD_THREAD is O_EXCL, and F_GETFL shows it).
  void KeepCreationFlag(int flag) { flags_.fetch_or(flag); }

  std::mutex offset_mu_;  // guards offset_ for files that have one
  int64_t offset_ = 0;

 private:
  std::atomic<int> flags_;
  std::shared_ptr<Dentry> dentry_;
  MountHold mount_hold_;  // on dentry_'s mount
  mutable std::mutex async_mu_;
  AsyncOwner async_owner_;  // guarded by async_mu_
  mutable std::atomic<bool> async_out_wanted_{false};
  std::atomic<bool> landlock_no_truncate_{false};
  std::mutex release_mu_;
  std::vector<std::pair<const void*, std::function<void(const FileDescription*)>>>
      on_release_;  // guarded by release_mu_
  std::mutex lock_key_mu_;
  std::optional<FileLockKey> lock_key_;  // guarded by lock_key_mu_
};

using FileRef = std::shared_ptr<FileDescription>;

// pread(2) of a file whose bytes are `text` (a status line, a synthetic
// file's contents): EINVAL for a negative offset, 0 at or past its end.
Result<size_t> PReadString(std::string_view text, char* buf, size_t len, int64_t offset);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_FILE_H_
