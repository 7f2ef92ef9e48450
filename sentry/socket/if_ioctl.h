// The interface ioctls sockets answer (dev_ioctl(), dev_ifconf() and, for
// AF_INET sockets, devinet_ioctl()) for the interfaces the sandbox shows:
// the NetView (net_view.h) that netlink_route.h answers from as well, so
// if_nametoindex(3), if_indextoname(3), getifaddrs users and `ip` agree:
// with --network=sandbox the sandbox stack's lo and NICs, with
// --network=none the loopback-only network's lo; with --network=host the
// host's, asked of the host (read-only requests only: the sentry's seccomp
// policy lets no other interface ioctl reach the host).
//
//   if (IsDeviceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
#ifndef SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_
#define SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/socket/net_view.h"

namespace seedvisor::sentry {

class Kernel;
class Task;

// The sandbox's own network as the guest sees it (not for --network=host).
NetView SandboxNetView(Kernel& k);

// dev_ioctl()'s queries, which a socket of any family answers: SIOCGIFNAME,
// SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMETRIC, SIOCGIFMTU, SIOCGIFTXQLEN,
// SIOCGIFHWADDR and SIOCGIFCONF.
bool IsDeviceIoctl(unsigned long cmd);
// devinet_ioctl()'s queries (SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR,
// SIOCGIFDSTADDR): AF_INET sockets only; others say ENOTTY.
bool IsInetInterfaceIoctl(unsigned long cmd);
// The ioctls that change interfaces, addresses, routes or ARP entries
// (dev_ioctl(), devinet_ioctl(), ip_rt_ioctl(), arp_ioctl()): Linux wants
// CAP_NET_ADMIN (EPERM). The sandbox never passes them on, whatever the
// guest's capabilities: with --network=host they would change the host's
// network. All are EPERM.
bool IsInterfaceSetIoctl(unsigned long cmd);
// Reads the guest's struct ifreq (struct ifconf for SIOCGIFCONF) at `arg`
// and writes the answer back; `cmd` is one of the two kinds above.
Result<long> InterfaceIoctl(Task& t, unsigned long cmd, UserAddr arg);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_IF_IOCTL_H_
