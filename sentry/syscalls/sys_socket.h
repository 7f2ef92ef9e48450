// Socket syscalls (sys_socket.cc: creation, names, connections, options;
// sys_socket_msg.cc: send/recv families).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_SOCKET_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_SOCKET_H_

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

SyscallReturn SysSocket(Task& t, const SyscallArgs& a);
SyscallReturn SysSocketpair(Task& t, const SyscallArgs& a);
SyscallReturn SysBind(Task& t, const SyscallArgs& a);
SyscallReturn SysListen(Task& t, const SyscallArgs& a);
SyscallReturn SysAccept(Task& t, const SyscallArgs& a);
SyscallReturn SysAccept4(Task& t, const SyscallArgs& a);
SyscallReturn SysConnect(Task& t, const SyscallArgs& a);
SyscallReturn SysShutdown(Task& t, const SyscallArgs& a);
SyscallReturn SysGetsockname(Task& t, const SyscallArgs& a);
SyscallReturn SysGetpeername(Task& t, const SyscallArgs& a);
SyscallReturn SysGetsockopt(Task& t, const SyscallArgs& a);
SyscallReturn SysSetsockopt(Task& t, const SyscallArgs& a);
SyscallReturn SysSendto(Task& t, const SyscallArgs& a);
SyscallReturn SysRecvfrom(Task& t, const SyscallArgs& a);
SyscallReturn SysSendmsg(Task& t, const SyscallArgs& a);
SyscallReturn SysRecvmsg(Task& t, const SyscallArgs& a);
SyscallReturn SysSendmmsg(Task& t, const SyscallArgs& a);
SyscallReturn SysRecvmmsg(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_SOCKET_H_
