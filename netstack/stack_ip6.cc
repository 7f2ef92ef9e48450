// IPv6 input and output (RFC 8200), ICMPv6 (RFC 4443: echo, destination
// unreachable both ways) and neighbour discovery (RFC 4861: answer
// solicitations for our addresses, solicit next hops through the shared
// neighbour cache of stack_link.cc). A host here: no forwarding, no router
// or prefix discovery (the addresses and routes come from the takeover), no
// extension headers (counted and dropped), no fragments.
#include <algorithm>
#include <cerrno>
#include <iterator>

#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {

constexpr uint8_t kNdHopLimit = 255;  // RFC 4861 7.1.1: only on-link senders
constexpr size_t kIcmp6ErrorMax = kIp6MinMtu - kIp6HeaderLen - 8;  // quoted bytes

// A source for a packet about `dst` on `nic`: an IPv6 address of its scope
// if there is one.
const AddrPrefix* Ip6SourceFor(const Nic& nic, const IpAddr& dst) {
  const AddrPrefix* any = nullptr;
  for (const AddrPrefix& p : nic.addrs) {
    if (p.addr.is_v4()) continue;
    if (p.addr.link_local() == dst.link_local()) return &p;
    if (!any) any = &p;
  }
  return any;
}

}  // namespace

void Stack::HandleIp6(Nic* nic, std::string_view pkt) {
  Ip6Header h;
  switch (ParseIp6(pkt, &h)) {
    case Ip6ParseError::kOk: break;
    case Ip6ParseError::kTruncated: ++stats_.ip6_truncated; return;
    case Ip6ParseError::kVersion: ++stats_.ip6_bad_version; return;
    case Ip6ParseError::kPayloadLen: ++stats_.ip6_bad_payload_len; return;
  }
  // Martians: a multicast or IPv4-mapped source, ::1 off loopback
  // (ip6_rcv_core()).
  if (h.src.multicast() || h.src.is_v4() || h.dst.is_v4() ||
      (!nic->loopback && (h.src.loopback() || h.dst.loopback()))) {
    ++stats_.ip6_bad_src;
    return;
  }
  bool to_us = IsLocalAddress(h.dst) || h.dst == kIp6AllNodes;
  for (const AddrPrefix& p : nic->addrs) {
    to_us |= !p.addr.is_v4() && h.dst == SolicitedNode(p.addr);
  }
  if (!to_us) {
    ++stats_.ip6_not_for_us;
    return;
  }
  std::string_view whole = pkt.substr(0, kIp6HeaderLen + h.payload_len);
  std::string_view payload = whole.substr(kIp6HeaderLen);
  // Transport only to a unicast address of ours; the groups hear ICMPv6.
  bool unicast = !h.dst.multicast();
  switch (h.next_header) {
    case kProtoTcp:
      if (unicast) {
        HandleTcp({h.src, h.dst, nullptr, whole, nic->id, h.hop_limit, h.traffic_class}, payload);
      }
      break;
    case kProtoUdp:
      if (unicast) {
        HandleUdp({h.src, h.dst, nullptr, whole, nic->id, h.hop_limit, h.traffic_class}, payload);
      }
      break;
    case kProtoIcmp6: HandleIcmp6(nic, h, payload); break;
    case 0:    // hop-by-hop options (MLD reports carry them)
    case 43:   // routing
    case 44:   // fragment
    case 60:   // destination options
      ++stats_.ip6_ext_header;
      break;
    default: ++stats_.ip_unknown_proto;
  }
}

void Stack::HandleIcmp6(Nic* nic, const Ip6Header& h, std::string_view msg) {
  if (msg.size() < 4 || (!skip_l4_csum_ &&
                         ChecksumFinish(ChecksumPartial(
                             msg, PseudoHeaderSum(h.src, h.dst, kProtoIcmp6,
                                                  uint32_t(msg.size())))) != 0)) {
    ++stats_.icmp6_malformed;
    return;
  }
  uint8_t type = U8(msg)[0];
  const L3 ip{h.src, h.dst, nullptr, {}, nic->id, h.hop_limit, h.traffic_class};
  DeliverRawIcmp(ip, kProtoIcmp6, {}, msg);  // ip6_input_finish(): raw first
  switch (type) {
    case kIcmp6EchoRequest: {
      if (msg.size() < 8 || h.dst.multicast()) return;
      std::string reply(msg);
      U8(reply)[0] = kIcmp6EchoReply;
      FinishIcmp6(&reply, h.dst, h.src);
      if (SendIp6(h.dst, h.src, kProtoIcmp6, reply, kDefaultTtl, 0).ok()) {
        ++stats_.icmp6_echo_replies;
      }
      return;
    }
    case kIcmp6EchoReply:
      if (msg.size() >= 8) HandleEchoReply(ip, kProtoIcmp6, msg);
      return;
    case kIcmp6NeighborSolicit:
    case kIcmp6NeighborAdvert:
      if (h.hop_limit != kNdHopLimit || nic->loopback) {
        ++stats_.nd_malformed;
        return;
      }
      HandleNd(nic, h, msg);
      return;
    case kIcmp6DestUnreach:
    case kIcmp6PacketTooBig:
    case kIcmp6TimeExceeded:
    case kIcmp6ParamProblem:
      Icmp6Error(h, msg);
      return;
    default: return;  // router advertisements, MLD, ...: a host with fixed addresses
  }
}

void Stack::HandleNd(Nic* nic, const Ip6Header& h, std::string_view msg) {
  NdMessage m;
  if (!ParseNd(msg, &m)) {
    ++stats_.nd_malformed;
    return;
  }
  bool target_ours = false;
  for (const AddrPrefix& p : nic->addrs) target_ours |= p.addr == m.target;
  if (m.type == kIcmp6NeighborAdvert) {
    // RFC 4861 7.2.5: only an entry we have is updated.
    if (m.has_lladdr) ConfirmNeighbor(nic, m.target, m.lladdr, false);
    return;
  }
  // A solicitation. From :: it is duplicate address detection by someone
  // else; a host with assigned addresses does not defend them here.
  if (!target_ours || h.src.any()) return;
  if (m.has_lladdr) ConfirmNeighbor(nic, h.src, m.lladdr, true);
  NdMessage na{kIcmp6NeighborAdvert, kNaSolicited | kNaOverride, m.target, true, nic->mac};
  std::string reply = BuildNd(na);
  FinishIcmp6(&reply, m.target, h.src);
  std::string pkt;
  AppendIp6(&pkt, {0, 0, uint16_t(reply.size()), kProtoIcmp6, kNdHopLimit, m.target, h.src});
  pkt += reply;
  ++stats_.nd_adverts_sent;
  if (m.has_lladdr) {
    WriteEth(nic, m.lladdr, kEtherTypeIp6, pkt);
  } else {
    SendOnLink(nic, h.src, std::move(pkt));
  }
}

void Stack::SendNeighborSolicit(Nic* nic, const IpAddr& target) {
  const AddrPrefix* src = Ip6SourceFor(*nic, target);
  if (!src) return;
  IpAddr dst = SolicitedNode(target);
  std::string msg = BuildNd({kIcmp6NeighborSolicit, 0, target, true, nic->mac});
  FinishIcmp6(&msg, src->addr, dst);
  std::string pkt;
  AppendIp6(&pkt, {0, 0, uint16_t(msg.size()), kProtoIcmp6, kNdHopLimit, src->addr, dst});
  pkt += msg;
  ++stats_.nd_solicits_sent;
  WriteEth(nic, MulticastMac(dst), kEtherTypeIp6, pkt);
}

void Stack::Icmp6Error(const Ip6Header& h, std::string_view msg) {
  // The quoted packet: its IPv6 header, then UDP or an echo request (no
  // extension headers).
  if (msg.size() < 8 + kIp6HeaderLen + 4) return;
  const uint8_t* p = U8(msg) + 8;
  if ((p[0] >> 4) != 6 || (p[6] != kProtoUdp && p[6] != kProtoIcmp6)) return;
  uint8_t type = U8(msg)[0], code = U8(msg)[1];
  // icmpv6_err_convert() and __udp6_lib_err(): the errno, whether a socket
  // without IPV6_RECVERR hears of it, and ee_info (the 32 bits after the
  // checksum: a "too big"'s MTU, a parameter problem's pointer).
  static constexpr struct {
    int err;
    bool hard;
  } kUnreach[] = {{ENETUNREACH, false}, {EACCES, true},       {EHOSTUNREACH, false},
                  {EHOSTUNREACH, false}, {ECONNREFUSED, true}, {EACCES, true},
                  {EACCES, true}};
  IcmpError e;
  e.icmp6 = true;
  e.type = type;
  e.code = code;
  e.info = Get32(U8(msg) + 4);
  e.offender = h.src;
  bool hard = false;
  switch (type) {
    case kIcmp6DestUnreach:
      e.err = EPROTO;
      hard = true;
      if (code < std::size(kUnreach)) {
        e.err = kUnreach[code].err;
        hard = kUnreach[code].hard;
      }
      break;
    case kIcmp6PacketTooBig:  // hard with path MTU discovery on (the default)
      e.err = EMSGSIZE;
      hard = true;
      break;
    case kIcmp6TimeExceeded: e.err = EHOSTUNREACH; break;
    default:  // kIcmp6ParamProblem
      e.err = EPROTO;
      hard = true;
  }
  IpAddr src = IpAddr::FromBytes(p + 8), dst = IpAddr::FromBytes(p + 24);
  std::string_view quoted = msg.substr(8 + kIp6HeaderLen);
  if (p[6] == kProtoIcmp6) {
    PingIcmpError(src, dst, kProtoIcmp6, quoted, std::move(e), hard);  // pingv6_err()
  } else {
    UdpIcmpError(src, dst, quoted, std::move(e), hard);
  }
}

void Stack::SendIcmp6Unreachable(const Ip6Header& h, std::string_view pkt, uint8_t code) {
  // Never about multicast destinations or unspecified sources (RFC 4443 2.4).
  if (h.dst.multicast() || h.src.any() || !IsLocalAddress(h.dst)) return;
  std::string msg(8, '\0');
  U8(msg)[0] = kIcmp6DestUnreach;
  U8(msg)[1] = code;
  msg.append(pkt.substr(0, std::min(pkt.size(), kIcmp6ErrorMax)));
  FinishIcmp6(&msg, h.dst, h.src);
  if (SendIp6(h.dst, h.src, kProtoIcmp6, msg, kDefaultTtl, 0).ok()) ++stats_.icmp6_unreach_sent;
}

Status Stack::SendIp6(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                      std::string_view payload, uint8_t hop_limit, uint32_t flow_label,
                      PacketOffload off, uint8_t tclass) {
  if (!src.any() && src.is_v4()) return Errno(EAFNOSUPPORT);
  if (payload.size() > 65535) return Errno(EMSGSIZE);
  // A link-local destination goes out of the NIC of its link-local
  // source (the socket's scope picked that source).
  auto route = FindRoute(dst, dst.link_local() ? NicOwning(src) : 0);
  if (!route.ok()) {
    ++stats_.ip_no_route;
    return route.error();
  }
  Nic* nic = route->nic;
  bool cut_by_nic = off.gso_size > 0 && nic->link && nic->link->TakesOffloads();
  if (kIp6HeaderLen + payload.size() > nic->mtu && !cut_by_nic) {
    ++stats_.ip6_too_big;
    return Errno(EMSGSIZE);
  }
  Ip6Header h;
  h.traffic_class = tclass;
  h.flow_label = flow_label;
  h.payload_len = uint16_t(payload.size());
  h.next_header = proto;
  h.hop_limit = hop_limit;
  h.src = src.any() ? route->src : src;
  h.dst = dst;
  std::string& f = tx_frame_;
  f.assign(kEthHeaderLen, '\0');
  AppendIp6(&f, h);
  f.append(payload);
  off = OffloadFor(nic, &f, kEthHeaderLen + kIp6HeaderLen, off);
  SendFramed(nic, route->next_hop, &f, off);
  return {};
}

}  // namespace seedvisor::netstack
