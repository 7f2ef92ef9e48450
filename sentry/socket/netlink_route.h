// The NETLINK_ROUTE answers of the sandbox's own network: the links,
// addresses and IPv4 routes of a NetView (net_view.h: the sandbox stack's
// lo and NICs with --network=sandbox, the loopback-only namespace's lo with
// --network=none). Pure message logic, no sockets: NetlinkSocket
// (netlink_socket.h) queues what this returns.
//
//   std::vector<std::string> replies;
//   HandleRouteRequests(view, request_bytes, /*port=*/42, &replies);
//   // replies: RTM_NEWLINK ... NLMSG_DONE, one netlink message per datagram
//
// Malformed input follows netlink_rcv_skb(): a header shorter than 16 bytes
// or longer than what is left ends the batch silently; a known request whose
// payload is too short is answered with an NLMSG_ERROR of EINVAL.
#ifndef SEEDVISOR_SENTRY_SOCKET_NETLINK_ROUTE_H_
#define SEEDVISOR_SENTRY_SOCKET_NETLINK_ROUTE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sentry/socket/net_view.h"

namespace seedvisor::sentry {

// Appends the replies to every request in `batch` (sent by port `port`) to
// `out`, one netlink message per element.
void HandleRouteRequests(const NetView& view, std::string_view batch, uint32_t port,
                         std::vector<std::string>* out);

// True if every message in `batch` only reads state (NLMSG_NOOP-class types
// below RTM_BASE, or an RTM_GET* type): what --network=host lets through to
// the host's rtnetlink. A malformed batch is false.
bool RouteBatchIsReadOnly(std::string_view batch);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NETLINK_ROUTE_H_
