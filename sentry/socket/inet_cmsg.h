// IP-level ancillary data of the sandbox stack's sockets (--network=sandbox):
// what a receiver asked to learn of each datagram (IP_PKTINFO, IP_RECVTTL,
// IP_RECVTOS; RFC 3542's IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
// IPV6_RECVTCLASS and RFC 2292's IPV6_2292PKTINFO, IPV6_2292HOPLIMIT), the
// control messages recvmsg then returns, in Linux's order
// (ip_cmsg_recv_offset(), ip6_datagram_recv_common_ctl() and
// ip6_datagram_recv_specific_ctl()), and a sendmsg's control messages
// (IP_TTL, IP_TOS, IP_PKTINFO; IPV6_HOPLIMIT, IPV6_TCLASS, IPV6_PKTINFO)
// checked as ip_cmsg_send() and ip6_datagram_send_ctl() check them.
//
//   InetRecvOpts rx;  rx.rxhlim = true;      // setsockopt(IPV6_RECVHOPLIMIT)
//   PutInetRecvControl(&out, room, AF_INET6, rx, info);
//   SV_ASSIGN_OR_RETURN(netstack::SendInfo si,
//                       ParseInetSendControl(AF_INET6, IPPROTO_UDP, false, m.control));
#ifndef SEEDVISOR_SENTRY_SOCKET_INET_CMSG_H_
#define SEEDVISOR_SENTRY_SOCKET_INET_CMSG_H_

#include <string_view>

#include "netstack/shared/udp.h"
#include "sentry/base/errno.h"
#include "sentry/socket/socket.h"

namespace seedvisor::sentry {

// The receive-side flags: inet->cmsg_flags (IPv4) and np->rxopt (IPv6).
struct InetRecvOpts {
  bool pktinfo = false, recvttl = false, recvtos = false;  // IP_PKTINFO, IP_RECVTTL, IP_RECVTOS
  bool rxinfo = false, rxhlim = false, rxtclass = false;   // IPV6_RECV{PKTINFO,HOPLIMIT,TCLASS}
  bool rxoinfo = false, rxohlim = false;  // IPV6_2292PKTINFO, IPV6_2292HOPLIMIT
};

// The control messages for one datagram described by `info` on a socket of
// `family` (an AF_INET6 socket's IPv4 datagram: IPV6_PKTINFO with the
// mapped address, then the IPv4 ones, as udpv6_recvmsg()). MSG_CTRUNC in
// `out` when `room` is short (put_cmsg()).
void PutInetRecvControl(MsgOut* out, size_t room, int family, const InetRecvOpts& o,
                        const netstack::RecvInfo& info);

// A sendmsg's control messages for a datagram to an IPv4 (`dst_v4`) or
// IPv6 destination from a socket of `family` and `protocol`. To IPv4
// (udp_sendmsg() -> ip_cmsg_send()): SOL_IP IP_TTL, IP_TOS, IP_PKTINFO,
// IP_PROTOCOL, and from an AF_INET6 socket SOL_IPV6 IPV6_PKTINFO with a
// mapped address; other SOL_IPV6 messages are skipped. To IPv6
// (ip6_datagram_send_ctl()): SOL_IPV6 IPV6_HOPLIMIT, IPV6_TCLASS,
// IPV6_PKTINFO and their RFC 2292 names, IPV6_DONTFRAG; SOL_IP messages are
// skipped. SOL_SOCKET SCM_RIGHTS and SCM_CREDENTIALS are skipped (they
// belong to unix sockets). EINVAL for a malformed message, a value out of
// range, and what this stack does not model (IP options, extension
// headers, flow labels, SO_MARK, timestamps, UDP_SEGMENT).
Result<netstack::SendInfo> ParseInetSendControl(int family, int protocol, bool dst_v4,
                                                std::string_view control);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_INET_CMSG_H_
