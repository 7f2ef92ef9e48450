#include "sentry/socket/inet_cmsg.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstring>

#ifndef IP_PROTOCOL
#define IP_PROTOCOL 52
#endif

namespace seedvisor::sentry {
namespace {

using netstack::IpAddr;

in6_addr In6(const IpAddr& a) {
  in6_addr r;
  memcpy(&r, a.b.data(), sizeof r);
  return r;
}

in_addr In4(const IpAddr& a) {
  in_addr r;
  r.s_addr = htonl(a.v4().v);
  return r;
}

IpAddr FromIn6(const in6_addr& a) {
  IpAddr r;
  memcpy(r.b.data(), &a, sizeof a);
  return r;
}

void PutInt(MsgOut* out, size_t room, int level, int type, int v) {
  PutCmsg(out, room, level, type, &v, sizeof v);
}

// IPV6_PKTINFO or IPV6_2292PKTINFO: the destination and its interface.
void PutPktinfo6(MsgOut* out, size_t room, int type, const netstack::RecvInfo& info) {
  in6_pktinfo p{};
  p.ipi6_addr = In6(info.dst);
  p.ipi6_ifindex = unsigned(info.nic);
  PutCmsg(out, room, SOL_IPV6, type, &p, sizeof p);
}

// ip_cmsg_recv_offset(): IP_PKTINFO, IP_TTL, IP_TOS (one byte), in that order.
void PutIp4(MsgOut* out, size_t room, const InetRecvOpts& o, const netstack::RecvInfo& info) {
  if (o.pktinfo) {
    in_pktinfo p{};
    p.ipi_ifindex = info.nic;
    p.ipi_spec_dst = In4(info.spec_dst);
    p.ipi_addr = In4(info.dst);
    PutCmsg(out, room, SOL_IP, IP_PKTINFO, &p, sizeof p);
  }
  if (o.recvttl) PutInt(out, room, SOL_IP, IP_TTL, info.ttl);
  if (o.recvtos) PutCmsg(out, room, SOL_IP, IP_TOS, &info.tos, 1);
}

// Linux's CMSG_OK and for_each_cmsghdr over the bytes the guest gave: a
// header that does not fit ends the walk, one whose length is short or
// runs past the end is EINVAL.
template <typename Fn>
Status ForEachCmsg(std::string_view control, Fn fn) {
  size_t off = 0;
  while (off <= control.size() && control.size() - off >= sizeof(cmsghdr)) {
    cmsghdr h;
    memcpy(&h, control.data() + off, sizeof h);
    if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > control.size() - off) return Errno(EINVAL);
    SV_TRY(fn(h, control.substr(off + CMSG_LEN(0), h.cmsg_len - CMSG_LEN(0))));
    off += CMSG_ALIGN(h.cmsg_len);
  }
  return {};
}

Result<int> IntOf(const cmsghdr& h, std::string_view data) {
  if (h.cmsg_len != CMSG_LEN(sizeof(int))) return Errno(EINVAL);
  int v;
  memcpy(&v, data.data(), sizeof v);
  return v;
}

// __sock_cmsg_send(): SCM_RIGHTS and SCM_CREDENTIALS are skipped; SO_MARK,
// SO_TIMESTAMPING, SCM_TXTIME and SO_PRIORITY are not modelled here.
Status SocketLevel(const cmsghdr& h) {
  if (h.cmsg_type == SCM_RIGHTS || h.cmsg_type == SCM_CREDENTIALS) return {};
  return Errno(EINVAL);
}

}  // namespace

void PutInetRecvControl(MsgOut* out, size_t room, int family, const InetRecvOpts& o,
                        const netstack::RecvInfo& info) {
  if (family == AF_INET) {
    PutIp4(out, room, o, info);
    return;
  }
  // ip6_datagram_recv_common_ctl(): IPV6_PKTINFO for either family.
  if (o.rxinfo) PutPktinfo6(out, room, IPV6_PKTINFO, info);
  if (info.dst.is_v4()) {
    PutIp4(out, room, o, info);
    return;
  }
  // ip6_datagram_recv_specific_ctl(): the hop limit and traffic class as
  // ints, then RFC 2292's names.
  if (o.rxhlim) PutInt(out, room, SOL_IPV6, IPV6_HOPLIMIT, info.ttl);
  if (o.rxtclass) PutInt(out, room, SOL_IPV6, IPV6_TCLASS, info.tos);
  if (o.rxoinfo) PutPktinfo6(out, room, IPV6_2292PKTINFO, info);
  if (o.rxohlim) PutInt(out, room, SOL_IPV6, IPV6_2292HOPLIMIT, info.ttl);
}

Result<netstack::SendInfo> ParseInetSendControl(int family, int protocol, bool dst_v4,
                                                std::string_view control) {
  netstack::SendInfo si;
  Status s = ForEachCmsg(control, [&](const cmsghdr& h, std::string_view data) -> Status {
    if (h.cmsg_level == SOL_SOCKET) return SocketLevel(h);
    // udp_cmsg_send(): UDP_SEGMENT (GSO) is not modelled; any other
    // SOL_UDP type is EINVAL there too.
    if (h.cmsg_level == SOL_UDP && protocol == IPPROTO_UDP) return Errno(EINVAL);
    if (dst_v4) {
      // ip_cmsg_send() with allow_ipv6 for an AF_INET6 socket.
      if (family == AF_INET6 && h.cmsg_level == SOL_IPV6 && h.cmsg_type == IPV6_PKTINFO) {
        if (h.cmsg_len < CMSG_LEN(sizeof(in6_pktinfo))) return Errno(EINVAL);
        in6_pktinfo p;
        memcpy(&p, data.data(), sizeof p);
        IpAddr a = FromIn6(p.ipi6_addr);
        if (!a.is_v4()) return Errno(EINVAL);
        if (p.ipi6_ifindex) si.oif = p.ipi6_ifindex;
        si.src = a;
        return {};
      }
      if (h.cmsg_level != SOL_IP) return {};
      switch (h.cmsg_type) {
        case IP_PKTINFO: {
          if (h.cmsg_len != CMSG_LEN(sizeof(in_pktinfo))) return Errno(EINVAL);
          in_pktinfo p;
          memcpy(&p, data.data(), sizeof p);
          if (p.ipi_ifindex) si.oif = uint32_t(p.ipi_ifindex);
          si.src = IpAddr(netstack::Ip4{ntohl(p.ipi_spec_dst.s_addr)});
          return {};
        }
        case IP_TTL: {
          SV_ASSIGN_OR_RETURN(int v, IntOf(h, data));
          if (v < 1 || v > 255) return Errno(EINVAL);
          si.ttl = v;
          return {};
        }
        case IP_TOS: {
          int v;
          if (h.cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(&v, data.data(), sizeof v);
          } else if (h.cmsg_len == CMSG_LEN(1)) {
            v = static_cast<unsigned char>(data[0]);
          } else {
            return Errno(EINVAL);
          }
          if (v < 0 || v > 255) return Errno(EINVAL);
          si.tos = v;
          return {};
        }
        case IP_PROTOCOL: {
          // The range only: UDP and ping sockets ignore it (raw_sendmsg()
          // would also want a raw socket's own protocol).
          SV_ASSIGN_OR_RETURN(int v, IntOf(h, data));
          if (v < 1 || v > 255) return Errno(EINVAL);
          return {};
        }
        case IP_RETOPTS:
          // ip_options_get(): empty options are none; IP options are not
          // modelled.
          return h.cmsg_len == CMSG_LEN(0) ? Status{} : Status(Errno(EINVAL));
        default:
          return Errno(EINVAL);
      }
    }
    // ip6_datagram_send_ctl().
    if (h.cmsg_level != SOL_IPV6) return {};
    switch (h.cmsg_type) {
      case IPV6_PKTINFO:
      case IPV6_2292PKTINFO: {
        if (h.cmsg_len < CMSG_LEN(sizeof(in6_pktinfo))) return Errno(EINVAL);
        in6_pktinfo p;
        memcpy(&p, data.data(), sizeof p);
        if (p.ipi6_ifindex) {
          if (si.oif && p.ipi6_ifindex != si.oif) return Errno(EINVAL);
          si.oif = p.ipi6_ifindex;
        }
        IpAddr a = FromIn6(p.ipi6_addr);
        // A link-local source needs its interface.
        if (!si.oif && a.link_local()) return Errno(EINVAL);
        if (!a.any()) si.src = a;
        return {};
      }
      case IPV6_HOPLIMIT:
      case IPV6_2292HOPLIMIT: {
        SV_ASSIGN_OR_RETURN(int v, IntOf(h, data));
        if (v < -1 || v > 255) return Errno(EINVAL);
        si.ttl = v;  // -1: the socket's
        return {};
      }
      case IPV6_TCLASS: {
        SV_ASSIGN_OR_RETURN(int v, IntOf(h, data));
        if (v < -1 || v > 255) return Errno(EINVAL);
        si.tos = v;  // -1: the socket's
        return {};
      }
      case IPV6_DONTFRAG: {
        // This stack never fragments IPv6 (a datagram past the MTU is
        // EMSGSIZE), which is what 1 asks; 0 lets Linux fragment.
        SV_ASSIGN_OR_RETURN(int v, IntOf(h, data));
        if (v < 0 || v > 1) return Errno(EINVAL);
        return {};
      }
      default:
        return Errno(EINVAL);
    }
  });
  if (!s.ok()) return s.error();
  return si;
}

}  // namespace seedvisor::sentry
