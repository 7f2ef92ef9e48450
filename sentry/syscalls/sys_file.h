// File-family syscall handlers (sys_file_*.cc, sys_poll.cc), referred to by
// the syscall table. Semantics follow Linux; see each file for the odd cases.
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_H_

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

class FileDescription;

#define SV_FILE_SYSCALLS(X)                                                                   \
  X(SysRead) X(SysWrite) X(SysOpen) X(SysOpenat) X(SysCreat) X(SysClose) X(SysPread64)        \
  X(SysPwrite64) X(SysReadv) X(SysWritev) X(SysPreadv) X(SysPwritev) X(SysLseek) X(SysStat)   \
  X(SysFstat) X(SysLstat) X(SysNewfstatat) X(SysStatx) X(SysGetdents64) X(SysGetdents)        \
  X(SysMkdir) X(SysMkdirat) X(SysMknod) X(SysMknodat) X(SysUnlink) X(SysUnlinkat) X(SysRmdir) \
  X(SysRename) X(SysRenameat) X(SysRenameat2) X(SysLink) X(SysLinkat) X(SysSymlink)           \
  X(SysSymlinkat) X(SysReadlink) X(SysReadlinkat) X(SysChmod) X(SysFchmod) X(SysFchmodat)     \
  X(SysChown) X(SysFchown) X(SysLchown) X(SysFchownat) X(SysTruncate) X(SysFtruncate)         \
  X(SysAccess) X(SysFaccessat) X(SysFaccessat2) X(SysFcntl) X(SysDup) X(SysDup2) X(SysDup3)   \
  X(SysPipe) X(SysPipe2) X(SysChdir) X(SysChroot) X(SysFchdir) X(SysGetcwd) X(SysUmask) X(SysUtimensat)    \
  X(SysUtime) X(SysUtimes) X(SysFutimesat) X(SysIoctl) X(SysFsync) X(SysFdatasync)            \
  X(SysSyncFs) X(SysSync) X(SysStatfs) X(SysFstatfs) X(SysPoll) X(SysPpoll) X(SysSelect)      \
  X(SysPselect6) X(SysSendfile) X(SysFlock) X(SysFadvise64) X(SysFallocate) X(SysSyncFileRange)      \
  X(SysCloseRange)

#define SV_DECLARE_FILE_SYSCALL(name) SyscallReturn name(Task& t, const SyscallArgs& a);
SV_FILE_SYSCALLS(SV_DECLARE_FILE_SYSCALL)
#undef SV_DECLARE_FILE_SYSCALL

// Drops every POSIX record lock (not OFD lock) that process `tgid` holds, on
// any file: the kernel calls it when the process's last thread has exited
// (fcntl(2): a process's record locks are released when it terminates).
void ReleaseProcessRecordLocks(int tgid);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_FILE_H_
