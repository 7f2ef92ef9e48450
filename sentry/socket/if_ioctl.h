// The SIOCGIF* ioctls any socket answers (sock_ioctl() -> dev_ioctl()), for
// the sandbox's loopback-only network: if_nametoindex(3), if_indextoname(3)
// and busybox `ip` ask them. With --network=host they are ENOTTY (the
// sentry's seccomp policy keeps these ioctls off the host).
//
//   if (IsInterfaceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
#ifndef SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_
#define SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::sentry {

class Task;

bool IsInterfaceIoctl(unsigned long cmd);
// The ioctls that change interfaces, addresses, routes or ARP entries
// (dev_ioctl(), devinet_ioctl(), ip_rt_ioctl(), arp_ioctl()): Linux wants
// CAP_NET_ADMIN (EPERM). The sandbox never passes them on, whatever the
// guest's capabilities: with --network=host they would change the host's
// network. All are EPERM.
bool IsInterfaceSetIoctl(unsigned long cmd);
// Reads the guest's struct ifreq at `arg` and writes the answer back.
Result<long> InterfaceIoctl(Task& t, unsigned long cmd, UserAddr arg);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_
