// ioprio_get(2), ioprio_set(2) (sys_ioprio.cc): an I/O priority per
// thread, kept and reported back; the host schedules the sandbox's I/O.
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_IOPRIO_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_IOPRIO_H_

#include <cstddef>

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

SyscallReturn SysIoprioGet(Task& t, const SyscallArgs& a);
SyscallReturn SysIoprioSet(Task& t, const SyscallArgs& a);

// ioprio_check_cap(): whether `t` may use `ioprio` (for ioprio_set and an
// AIO request's IOCB_FLAG_IOPRIO): EINVAL for an unknown class or a level
// out of range, EPERM for the realtime class without CAP_SYS_NICE or
// CAP_SYS_ADMIN.
Status IoprioCheck(Task& t, int ioprio);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_IOPRIO_H_
