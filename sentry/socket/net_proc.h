// The texts of /proc/net/{dev,route,tcp,udp} for the sandbox's own
// network, in Linux's formats (dev_seq_show(), fib_route_seq_show(),
// tcp4_seq_show(), udp4_seq_show()), so that netstat, ss's /proc fallback
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
std::string ProcNetTcp(const std::vector<netstack::SocketInfo>& sockets);
std::string ProcNetUdp(const std::vector<netstack::SocketInfo>& sockets);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NET_PROC_H_
