// Event-notification syscalls: epoll (sys_epoll.cc), eventfd
// (sys_eventfd.cc), timerfd (sys_timerfd.cc), signalfd (sys_signalfd.cc),
// memfd_create (sys_memfd.cc), inotify (sys_inotify.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_EVENTS_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_EVENTS_H_

#include "sentry/syscalls/syscall.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

SyscallReturn SysEpollCreate(Task& t, const SyscallArgs& a);
SyscallReturn SysEpollCreate1(Task& t, const SyscallArgs& a);
SyscallReturn SysEpollCtl(Task& t, const SyscallArgs& a);
SyscallReturn SysEpollWait(Task& t, const SyscallArgs& a);
SyscallReturn SysEpollPwait(Task& t, const SyscallArgs& a);
SyscallReturn SysEpollPwait2(Task& t, const SyscallArgs& a);
SyscallReturn SysEventfd(Task& t, const SyscallArgs& a);
SyscallReturn SysEventfd2(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerfdCreate(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerfdSettime(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerfdGettime(Task& t, const SyscallArgs& a);
SyscallReturn SysSignalfd(Task& t, const SyscallArgs& a);
SyscallReturn SysSignalfd4(Task& t, const SyscallArgs& a);
SyscallReturn SysMemfdCreate(Task& t, const SyscallArgs& a);
// fcntl(F_GET_SEALS / F_ADD_SEALS `seals`) on `f` (sys_memfd.cc).
SyscallReturn MemfdSeals(FileDescription& f, int cmd, unsigned seals);
SyscallReturn SysInotifyInit(Task& t, const SyscallArgs& a);
SyscallReturn SysInotifyInit1(Task& t, const SyscallArgs& a);
SyscallReturn SysInotifyAddWatch(Task& t, const SyscallArgs& a);
SyscallReturn SysInotifyRmWatch(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_EVENTS_H_
