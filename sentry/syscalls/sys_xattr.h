// The xattr family (sys_xattr.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_XATTR_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_XATTR_H_

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

SyscallReturn SysGetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysLgetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysFgetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysSetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysLsetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysFsetxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysListxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysLlistxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysFlistxattr(Task& t, const SyscallArgs& a);
SyscallReturn SysRemovexattr(Task& t, const SyscallArgs& a);
SyscallReturn SysLremovexattr(Task& t, const SyscallArgs& a);
SyscallReturn SysFremovexattr(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_XATTR_H_
