// Transport demultiplexing: which endpoint a TCP segment or UDP datagram
// belongs to, and the RST / port-unreachable answers when none does.
#include "netstack/stack.h"

namespace seedvisor::netstack {

void Stack::HandleTcp(const L3& ip, std::string_view seg) {
  TcpHeader h;
  if (!ParseTcp(seg, &h)) {
    ++stats_.tcp_malformed;
    return;
  }
  uint32_t sum = PseudoHeaderSum(ip.src, ip.dst, kProtoTcp, uint16_t(seg.size()));
  if (!skip_l4_csum_ && ChecksumFinish(ChecksumPartial(seg, sum)) != 0) {
    ++stats_.tcp_bad_checksum;
    return;
  }
  if (!IsLocalAddress(ip.dst) || h.src_port == 0 || h.dst_port == 0) {
    ++stats_.tcp_malformed;  // TCP is unicast only; port 0 is never valid
    return;
  }
  std::string_view payload = seg.substr(h.header_len);
  auto it = tcp_conns_.find(ConnKey{ip.dst, h.dst_port, ip.src, h.src_port});
  if (it != tcp_conns_.end()) {
    std::shared_ptr<TcpEndpoint> ep = it->second;  // may leave the table meanwhile
    ep->HandleSegment(h, payload);
    return;
  }
  std::shared_ptr<TcpEndpoint> listener = FindListener(ip, h.src_port, h.dst_port);
  if (listener) {
    listener->HandleListen(h, ip.src, ip.dst);
    return;
  }
  SendRstFor(ip.src, ip.dst, h, payload.size());
}

std::shared_ptr<TcpEndpoint> Stack::FindListener(const L3& ip, uint16_t sport, uint16_t dport) {
  auto score = [&](const TcpEndpoint& l) {
    int s = 0;
    if (l.local_.ip == ip.dst) {
      s = 4;
    } else if (l.local_.ip.any() && l.WildcardAccepts(ip.dst)) {
      s = 2;
    } else {
      return 0;
    }
    return s + (ip.dst.is_v4() && !l.v6_ ? 1 : 0);
  };
  auto [b, e] = tcp_listeners_.equal_range(dport);
  int best = 0;
  size_t ties = 0;
  for (auto l = b; l != e; ++l) {
    int s = score(*l->second);
    if (s > best) {
      best = s;
      ties = 0;
    }
    if (s == best && s && l->second->port_.reuseport) ++ties;
  }
  if (!best) return nullptr;
  // The group's members that fit best, the hash's pick among them; else
  // the one that fits best.
  size_t pick = ties > 1 ? inst_.secrets.FlowHash(ip.src, sport, ip.dst, dport) % ties : 0;
  std::shared_ptr<TcpEndpoint> first;
  for (auto l = b; l != e; ++l) {
    if (score(*l->second) != best) continue;
    if (!first) first = l->second;
    if (ties > 1 && l->second->port_.reuseport && pick-- == 0) return l->second;
  }
  return first;
}

void Stack::SendRstFor(const IpAddr& src, const IpAddr& dst, const TcpHeader& h,
                       size_t payload_len) {
  if (h.flags & kTcpRst) return;  // never answer a reset (RFC 9293 3.10.7.1)
  TcpHeader r;
  r.src_port = h.dst_port;
  r.dst_port = h.src_port;
  if (h.flags & kTcpAck) {
    r.seq = h.ack;
    r.flags = kTcpRst;
  } else {
    r.seq = 0;
    r.ack = h.seq + uint32_t(payload_len) + ((h.flags & kTcpSyn) ? 1 : 0) +
            ((h.flags & kTcpFin) ? 1 : 0);
    r.flags = kTcpRst | kTcpAck;
  }
  std::string seg;
  AppendTcp(&seg, r, dst, src, {});
  if (SendIp(dst, src, kProtoTcp, seg, true).ok()) ++stats_.tcp_rst_sent;
}

UdpEndpoint* Stack::FindUdp(const IpAddr& dst, uint16_t dport, const IpAddr& src,
                            uint16_t sport) {
  auto score = [&](const UdpEndpoint& ep) {
    int s = 0;
    if (!ep.local_.ip.any()) {
      if (ep.local_.ip != dst) return -1;
      s += 2;
    } else if (!ep.WildcardAccepts(dst)) {
      return -1;
    }
    if (ep.connected_) {
      if (ep.remote_.ip != src || ep.remote_.port != sport) return -1;
      s += 4;
    }
    return s;
  };
  UdpEndpoint* best = nullptr;
  int best_score = -1;
  auto [b, e] = udp_bound_.equal_range(dport);
  for (auto it = b; it != e; ++it) {
    int s = score(*it->second);
    if (s > best_score) {
      best = it->second;
      best_score = s;
    }
  }
  // The unconnected members of a SO_REUSEPORT group that fit as well
  // share: the flow's keyed hash picks one (udp4_lib_lookup2(),
  // lookup_reuseport()).
  if (!best || !best->port_.reuseport || best->connected_) return best;
  auto member = [&](const UdpEndpoint& ep) {
    return ep.port_.reuseport && !ep.connected_ && score(ep) == best_score;
  };
  size_t n = 0;
  for (auto it = b; it != e; ++it) n += member(*it->second);
  if (n < 2) return best;
  size_t pick = inst_.secrets.FlowHash(src, sport, dst, dport) % n;
  for (auto it = b; it != e; ++it) {
    if (member(*it->second) && pick-- == 0) return it->second;
  }
  return best;
}

void Stack::HandleUdp(const L3& ip, std::string_view seg) {
  UdpHeader h;
  if (!ParseUdp(seg, &h)) {
    ++stats_.udp_malformed;
    return;
  }
  std::string_view dgram = seg.substr(0, h.len);
  if (h.checksum == 0 && !ip.ip4) {  // mandatory over IPv6 (RFC 8200 8.1)
    ++stats_.udp_bad_checksum;
    return;
  }
  if (h.checksum != 0 && !skip_l4_csum_) {  // 0: the sender computed none (RFC 768)
    uint32_t sum = PseudoHeaderSum(ip.src, ip.dst, kProtoUdp, h.len);
    if (ChecksumFinish(ChecksumPartial(dgram, sum)) != 0) {
      ++stats_.udp_bad_checksum;
      return;
    }
  }
  if (h.dst_port == 0) {
    ++stats_.udp_malformed;
    return;
  }
  UdpEndpoint* ep = FindUdp(ip.dst, h.dst_port, ip.src, h.src_port);
  if (!ep) {
    ++stats_.udp_no_port;
    if (ip.ip4) {
      // As much of the datagram as fits (SendIcmpUnreachable cuts it): the
      // sender's IP_RECVERR queue shows its payload.
      std::string quote;
      AppendIp4(&quote, *ip.ip4);
      quote.append(dgram);
      SendIcmpUnreachable(*ip.ip4, quote, kIcmpPortUnreach);
    } else {
      Ip6Header h6;
      if (ParseIp6(ip.packet, &h6) == Ip6ParseError::kOk) {
        SendIcmp6Unreachable(h6, ip.packet, kIcmp6PortUnreach);
      }
    }
    return;
  }
  // ipv6_iface_scope_id() with inet6_iif(): a link-local source's NIC;
  // what came through lo to an address of ours, that address's NIC.
  uint32_t scope = 0;
  if (ip.src.link_local()) {
    scope = uint32_t(ip.nic);
    if (scope == kLoopbackNic && NicOwning(ip.dst)) scope = NicOwning(ip.dst);
  }
  ep->Deliver({ip.src, h.src_port}, dgram.substr(kUdpHeaderLen), scope, RecvInfoOf(ip));
}

RecvInfo Stack::RecvInfoOf(const L3& ip) {
  RecvInfo r{ip.dst, ip.dst, ip.nic, ip.ttl, ip.tos};
  if (ip.dst.multicast() || IsBroadcast(ip.dst)) {
    auto route = FindRoute(ip.src);
    r.spec_dst = route.ok() ? route->src : (ip.dst.is_v4() ? IpAddr(Ip4{}) : kIp6Any);
  }
  return r;
}

void Stack::UdpIcmpError(const IpAddr& src, const IpAddr& dst, std::string_view quoted,
                         IcmpError e, bool hard) {
  if (quoted.size() < 4) return;  // the ports at least (RFC 792: 8 bytes)
  uint16_t sport = Get16(U8(quoted)), dport = Get16(U8(quoted) + 2);
  // The socket that would receive the answer: we were the source.
  UdpEndpoint* ep = FindUdp(src, sport, dst, dport);
  if (!ep) return;
  e.dest = {dst, dport};
  if (quoted.size() > kUdpHeaderLen) e.payload.assign(quoted.substr(kUdpHeaderLen));
  ep->IcmpErrorLocked(std::move(e), hard);
}

}  // namespace seedvisor::netstack
