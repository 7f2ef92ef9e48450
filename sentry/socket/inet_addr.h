// The guest's sockaddr_in / sockaddr_in6 and the netstack's SockAddr, both
// ways, with the errors inet_bind()/inet6_bind() and the connect and send
// paths give for a wrong family or length. An AF_INET6 socket sees IPv4
// peers as IPv4-mapped addresses (::ffff:a.b.c.d), which is what SockAddr
// holds anyway.
//
//   SV_ASSIGN_OR_RETURN(SockAddr a, ParseInetAddr(AF_INET6, addr, InetUse::kConnect));
//   std::string out = FormatInetAddr(AF_INET6, a);
#ifndef SEEDVISOR_SENTRY_SOCKET_INET_ADDR_H_
#define SEEDVISOR_SENTRY_SOCKET_INET_ADDR_H_

#include <string>

#include "netstack/shared/endpoint.h"
#include "sentry/base/errno.h"

namespace seedvisor::sentry {

enum class InetUse {
  kBind,     // an AF_INET6 socket takes only sockaddr_in6 (inet6_bind())
  kConnect,  // connect/sendto: an AF_INET6 socket also takes a sockaddr_in
             // (tcp_v6_connect(), udpv6_sendmsg()), unless IPV6_V6ONLY
};

// `family` is the socket's. EINVAL if `addr` is short, EAFNOSUPPORT if its
// family does not fit.
Result<netstack::SockAddr> ParseInetAddr(int family, const std::string& addr, InetUse use,
                                         bool v6only = false);
// The sin6_scope_id of an AF_INET6 `addr` (RFC 4007: the interface a
// link-local address is on), 0 if it has none or is shorter than a whole
// sockaddr_in6 (inet6_bind(), tcp_v6_connect() look only then).
uint32_t InetScopeId(const std::string& addr);
// A sockaddr_in (AF_INET sockets) or sockaddr_in6 (flow info 0, `scope`
// as sin6_scope_id).
std::string FormatInetAddr(int family, const netstack::SockAddr& a, uint32_t scope = 0);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_INET_ADDR_H_
