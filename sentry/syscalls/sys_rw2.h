// preadv2 and pwritev2 (sys_rw2.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_RW2_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_RW2_H_

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

SyscallReturn SysPreadv2(Task& t, const SyscallArgs& a);
SyscallReturn SysPwritev2(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_RW2_H_
