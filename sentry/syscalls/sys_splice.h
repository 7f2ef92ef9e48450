// splice, tee, vmsplice and copy_file_range (sys_splice.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_SPLICE_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_SPLICE_H_

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

SyscallReturn SysSplice(Task& t, const SyscallArgs& a);
SyscallReturn SysCopyFileRange(Task& t, const SyscallArgs& a);
SyscallReturn SysTee(Task& t, const SyscallArgs& a);
SyscallReturn SysVmsplice(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_SPLICE_H_
