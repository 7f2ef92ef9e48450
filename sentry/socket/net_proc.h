// The texts of /proc/net/{dev,route,tcp,udp,tcp6,udp6,if_inet6,ipv6_route} for the
// sandbox's own network, in Linux's formats (dev_seq_show(),
// fib_route_seq_show(), tcp4/6_seq_show(), udp4_seq_show(),
// ip6_dgram_sock_seq_show(), if6_seq_show()), so that netstat, ss's /proc fallback
// and scripts that parse them read them as on a host.
//
//   std::string dev = ProcNetDev(StackView(stack));
//   std::string tcp = ProcNetTcp(stack.TcpSockets());
#ifndef SEEDVISOR_SENTRY_SOCKET_NET_PROC_H_
#define SEEDVISOR_SENTRY_SOCKET_NET_PROC_H_

#include <string>
#include <vector>

#include "netstack/stack.h"
#include "sentry/socket/net_view.h"

namespace seedvisor::sentry {

std::string ProcNetDev(const NetView& view);
// The main table's unicast routes only, as fib_route_seq_show() lists them.
std::string ProcNetRoute(const NetView& view);
// AF_INET sockets only; the *6 forms list AF_INET6 ones (IPv4 peers of a
// dual-stack socket as ::ffff:a.b.c.d).
std::string ProcNetTcp(const std::vector<netstack::SocketInfo>& sockets);
std::string ProcNetUdp(const std::vector<netstack::SocketInfo>& sockets);
std::string ProcNetTcp6(const std::vector<netstack::SocketInfo>& sockets);
std::string ProcNetUdp6(const std::vector<netstack::SocketInfo>& sockets);
std::string ProcNetIfInet6(const NetView& view);
// Both tables' IPv6 routes (main, then local) and the trailing null entry,
// as ipv6_route_native_seq_show() lists them.
std::string ProcNetIpv6Route(const NetView& view);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NET_PROC_H_
