// IPv4 input and output (RFC 791, RFC 1122 host requirements) and ICMP
// (RFC 792): echo replies, port unreachable for UDP, ICMP errors about
// our UDP datagrams and echo requests turned into socket errors, echo
// replies to ping sockets.
#include <algorithm>
#include <cerrno>
#include <iterator>

#include "netstack/stack.h"

namespace seedvisor::netstack {

void Stack::HandleIp(Nic* nic, std::string_view pkt) {
  if (!pkt.empty() && (U8(pkt)[0] >> 4) == 6) {
    HandleIp6(nic, pkt);
  } else {
    HandleIp4(nic, pkt);
  }
}

void Stack::HandleIp4(Nic* nic, std::string_view pkt) {
  Ip4Header h;
  switch (ParseIp4(pkt, &h)) {
    case Ip4ParseError::kOk: break;
    case Ip4ParseError::kTruncated: ++stats_.ip_truncated; return;
    case Ip4ParseError::kVersion: ++stats_.ip_bad_version; return;
    case Ip4ParseError::kHeaderLen: ++stats_.ip_bad_header_len; return;
    case Ip4ParseError::kTotalLen: ++stats_.ip_bad_total_len; return;
    case Ip4ParseError::kChecksum: ++stats_.ip_bad_checksum; return;
  }
  // Martians (RFC 1122 3.2.1.3): no multicast/broadcast source, and
  // 127/8 only on loopback, in either direction.
  if (h.src.multicast() || h.src.broadcast() || (!nic->loopback && (h.src.loopback() || h.dst.loopback()))) {
    ++stats_.ip_bad_src;
    return;
  }
  bool to_us = IsLocalAddress(h.dst) || h.dst.broadcast();
  for (const AddrPrefix& p : nic->addrs) {
    to_us |= p.addr.is_v4() && p.prefix_len < 31 && h.dst == p.broadcast();
  }
  if (!to_us) {
    ++stats_.ip_not_for_us;  // a host does not forward (RFC 1122 3.3.1)
    return;
  }
  std::string_view payload = pkt.substr(h.header_len, h.total_len - h.header_len);
  if (h.more_fragments() || h.frag_offset() != 0) {
    Reassembler::AddResult r = reasm_.Add(h, payload, now_ns_());
    switch (r.status) {
      case Reassembler::kIncomplete:
        if (!reasm_timer_.armed()) ArmTimer(&reasm_timer_, reasm_.NextExpiry());
        return;
      case Reassembler::kOverlap: ++stats_.ip_frag_overlap; return;
      case Reassembler::kTooBig: ++stats_.ip_frag_too_big; return;
      case Reassembler::kNoRoom: ++stats_.ip_frag_no_room; return;
      case Reassembler::kBadLength: ++stats_.ip_frag_bad_len; return;
      case Reassembler::kComplete: break;
    }
    ++stats_.ip_reassembled;
    h.frag = 0;
    h.total_len = uint16_t(h.header_len + r.datagram.size());
    HandleTransport(h, r.datagram, nic->id);
    return;
  }
  HandleTransport(h, payload, nic->id);
}

void Stack::ReassemblyTimer() {
  stats_.ip_frag_timeout += reasm_.Expire(now_ns_());
  int64_t next = reasm_.NextExpiry();
  if (next >= 0) ArmTimer(&reasm_timer_, next);
}

void Stack::HandleTransport(const Ip4Header& h, std::string_view payload, int nic) {
  switch (h.proto) {
    case kProtoTcp: HandleTcp({h.src, h.dst, &h, {}, nic, h.ttl, h.tos}, payload); break;
    case kProtoUdp: HandleUdp({h.src, h.dst, &h, {}, nic, h.ttl, h.tos}, payload); break;
    case kProtoIcmp: HandleIcmp(h, payload, nic); break;
    default: {
      ++stats_.ip_unknown_proto;
      // Protocol unreachable (code 2) would need the original header;
      // Linux sends it only when no raw socket took the packet either.
      std::string quote;
      AppendIp4(&quote, h);
      quote.append(payload);
      SendIcmpUnreachable(h, quote, 2);
    }
  }
}

void Stack::HandleIcmp(const Ip4Header& h, std::string_view msg, int nic) {
  const L3 l3{h.src, h.dst, &h, {}, nic, h.ttl, h.tos};
  if (msg.size() < kIcmpHeaderLen || ChecksumFinish(ChecksumPartial(msg)) != 0) {
    ++stats_.icmp_malformed;
    return;
  }
  uint8_t type = U8(msg)[0];
  uint8_t code = U8(msg)[1];
  if (!raw_icmp_.empty()) {  // raw_local_deliver(): before ICMP itself
    Ip4Header copy = h;
    copy.total_len = uint16_t(kIp4MinHeaderLen + msg.size());
    copy.frag = 0;
    std::string hdr;
    AppendIp4(&hdr, copy);
    DeliverRawIcmp(l3, kProtoIcmp, hdr, msg);
  }
  if (type == kIcmpEchoRequest) {
    // No replies to broadcast pings (icmp_echo_ignore_broadcasts=1).
    if (!IsLocalAddress(h.dst) || IsBroadcast(h.dst)) return;
    std::string reply(msg);
    U8(reply)[0] = kIcmpEchoReply;
    Put16(U8(reply) + 2, 0);
    Put16(U8(reply) + 2, ChecksumFinish(ChecksumPartial(reply)));
    if (SendIp(h.dst, h.src, kProtoIcmp, reply, false).ok()) ++stats_.icmp_echo_replies;
    return;
  }
  if (type == kIcmpEchoReply) {
    HandleEchoReply(l3, kProtoIcmp, msg);
    return;
  }
  if (type != kIcmpDestUnreach && type != kIcmpTimeExceeded && type != kIcmpParamProblem) {
    return;  // replies, source quench, redirects (a host with fixed routes): nothing to report
  }
  // The quoted datagram: its header and at least 8 bytes of transport.
  std::string_view inner = msg.substr(kIcmpHeaderLen);
  if (inner.size() < kIp4MinHeaderLen) return;
  size_t ihl = size_t(U8(inner)[0] & 0xf) * 4;
  if (ihl < kIp4MinHeaderLen || inner.size() < ihl + 8) return;
  const uint8_t* ip = U8(inner);
  if (ip[9] != kProtoUdp && ip[9] != kProtoIcmp) return;
  // __udp4_lib_err(): the errno and whether a socket without IP_RECVERR
  // hears of it (icmp_err_convert[]); the MTU of "fragmentation needed"
  // (path MTU discovery on: a hard EMSGSIZE) and a parameter problem's
  // pointer go to ee_info.
  static constexpr struct {
    int err;
    bool hard;
  } kUnreach[] = {
      {ENETUNREACH, false}, {EHOSTUNREACH, false}, {ENOPROTOOPT, true},  {ECONNREFUSED, true},
      {EMSGSIZE, true},     {EOPNOTSUPP, false},   {ENETUNREACH, true},  {EHOSTDOWN, true},
      {ENONET, true},       {ENETUNREACH, true},   {EHOSTUNREACH, true}, {ENETUNREACH, false},
      {EHOSTUNREACH, false}, {EHOSTUNREACH, true}, {EHOSTUNREACH, true}, {EHOSTUNREACH, true},
  };
  IcmpError e;
  e.type = type;
  e.code = code;
  e.offender = h.src;
  e.err = EHOSTUNREACH;
  bool hard = false;
  if (type == kIcmpDestUnreach && code < std::size(kUnreach)) {
    e.err = kUnreach[code].err;
    hard = kUnreach[code].hard;
    if (code == kIcmpFragNeeded) e.info = Get16(U8(msg) + 6);
  } else if (type == kIcmpParamProblem) {
    e.err = EPROTO;
    hard = true;
    e.info = U8(msg)[4];
  }
  IpAddr src = Ip4{Get32(ip + 12)}, dst = Ip4{Get32(ip + 16)};
  if (ip[9] == kProtoIcmp) {
    PingIcmpError(src, dst, kProtoIcmp, inner.substr(ihl), std::move(e), hard);  // ping_err()
  } else {
    UdpIcmpError(src, dst, inner.substr(ihl), std::move(e), hard);
  }
}

void Stack::SendIcmpUnreachable(const Ip4Header& h, std::string_view ip_packet, uint8_t code) {
  // Never about broadcasts, multicasts or ICMP errors (RFC 1122 3.2.2).
  if (!IsLocalAddress(h.dst) || h.frag_offset() != 0) return;
  std::string msg(kIcmpHeaderLen, '\0');
  U8(msg)[0] = kIcmpDestUnreach;
  U8(msg)[1] = code;
  msg.append(ip_packet.substr(0, std::min<size_t>(ip_packet.size(), 576 - 20 - 8)));
  Put16(U8(msg) + 2, ChecksumFinish(ChecksumPartial(msg)));
  if (SendIp(h.dst, h.src, kProtoIcmp, msg, false).ok()) ++stats_.icmp_unreach_sent;
}

Status Stack::SendIp(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                     std::string_view payload, bool df, uint8_t ttl, uint32_t flow_label,
                     PacketOffload off, uint8_t tos) {
  if (!dst.is_v4()) return SendIp6(src, dst, proto, payload, ttl, flow_label, off, tos);
  if (!src.any() && !src.is_v4()) return Errno(EAFNOSUPPORT);
  if (payload.size() + kIp4MinHeaderLen > 65535) return Errno(EMSGSIZE);
  auto route = FindRoute(dst);
  if (!route.ok()) {
    ++stats_.ip_no_route;
    return route.error();
  }
  Nic* nic = route->nic;
  Ip4Header h;
  h.total_len = uint16_t(kIp4MinHeaderLen + payload.size());
  h.id = uint16_t(inst_.secrets.IpIdBase(src.v4(), dst.v4(), proto) + ip_id_++);
  h.ttl = ttl;
  h.tos = tos;
  h.proto = proto;
  h.src = (src.any() ? route->src : src).v4();
  h.dst = dst.v4();
  if (off.gso_size > 0) {
    // The device cuts it and numbers the pieces' ids from this one on
    // (tcp4_gso_segment()): the next packet's id comes after them.
    if (h.total_len > nic->mtu && !(nic->link && nic->link->TakesOffloads())) {
      return Errno(EMSGSIZE);
    }
    ip_id_ = uint16_t(ip_id_ + (payload.size() - 1) / off.gso_size);
  }
  if (h.total_len <= nic->mtu || off.gso_size > 0) {
    h.frag = df ? kIpFlagDF : 0;
    std::string& f = tx_frame_;
    f.assign(kEthHeaderLen, '\0');
    AppendIp4(&f, h);
    f.append(payload);
    off = OffloadFor(nic, &f, kEthHeaderLen + kIp4MinHeaderLen, off);
    SendFramed(nic, route->next_hop, &f, off);
    return {};
  }
  if (off.csum_partial) return Errno(EMSGSIZE);  // TCP's segments fit (DF)
  if (df) return Errno(EMSGSIZE);
  // Fragment (RFC 791 3.2): every piece but the last a multiple of 8.
  size_t step = (nic->mtu - kIp4MinHeaderLen) / 8 * 8;
  for (size_t off = 0; off < payload.size(); off += step) {
    size_t n = std::min(step, payload.size() - off);
    Ip4Header f = h;
    f.total_len = uint16_t(kIp4MinHeaderLen + n);
    f.frag = uint16_t(off / 8) | (off + n < payload.size() ? kIpFlagMF : 0);
    std::string pkt;
    pkt.reserve(f.total_len);
    AppendIp4(&pkt, f);
    pkt.append(payload.substr(off, n));
    SendOnLink(nic, route->next_hop, std::move(pkt));
  }
  ++stats_.ip_fragmented;
  return {};
}

}  // namespace seedvisor::netstack
