// Ethernet output, the neighbour cache of both families, and ARP (RFC
// 826; IPv6's neighbour discovery is in stack_ip6.cc): answer requests for our addresses,
// learn senders that ask us, resolve next hops with up to 3 requests one
// second apart (Linux's mcast_solicit, retrans_time), hold a few packets
// per unresolved neighbour (unres_qlen_bytes), and forget a neighbour 60 s after
// it was last confirmed.
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {

constexpr int kArpTries = 3;
constexpr int64_t kArpRetryNs = 1'000'000'000;
constexpr int64_t kArpLifetimeNs = 60'000'000'000;
constexpr size_t kArpQueueBytes = 212992;  // unres_qlen_bytes (SK_WMEM_MAX)

}  // namespace

void Stack::SendArp(Nic* nic, uint16_t op, const MacAddr& dst_mac, const MacAddr& tha, Ip4 tpa) {
  Ip4 spa;
  bool found = false;
  for (const AddrPrefix& p : nic->addrs) {
    if (!p.addr.is_v4()) continue;
    if (!found || p.Contains(tpa)) spa = p.addr.v4();
    found = true;
    if (p.Contains(tpa)) break;
  }
  if (!found) return;
  std::string f;
  f.reserve(kEthHeaderLen + kArpLen);
  AppendEth(&f, {dst_mac, nic->mac, kEtherTypeArp});
  AppendArp(&f, {op, nic->mac, tha, spa, tpa});
  ++stats_.frames_out;
  ++nic->tx_frames;
  nic->tx_bytes += f.size();
  nic->link->WriteFrame(f);
}

void Stack::HandleArp(Nic* nic, std::string_view pkt) {
  ArpPacket a;
  if (!ParseArp(pkt, &a)) {
    ++stats_.arp_malformed;
    return;
  }
  bool for_us = false;
  for (const AddrPrefix& p : nic->addrs) for_us |= p.addr == a.tpa;
  // A sender with a broadcast, multicast or zero MAC poisons nothing here.
  bool sender_ok = !a.spa.any() && !a.spa.multicast() && !a.spa.broadcast() &&
                   a.sha != kBroadcastMac && (a.sha[0] & 1) == 0;
  // RFC 826 "merge": update an entry we already have; add one if the packet
  // is addressed to us.
  if (sender_ok) ConfirmNeighbor(nic, a.spa, a.sha, for_us);
  if (for_us && a.op == kArpRequest && sender_ok) {
    ++stats_.arp_replies_sent;
    SendArp(nic, kArpReply, a.sha, a.sha, a.spa);
  }
}

void Stack::ConfirmNeighbor(Nic* nic, const IpAddr& ip, const MacAddr& mac, bool create) {
  auto it = nic->arp.find(ip);
  if (it == nic->arp.end()) {
    if (!create) return;
    auto e = std::make_unique<ArpEntry>([this, nic, ip] { ArpTimer(nic, ip); });
    it = nic->arp.emplace(ip, std::move(e)).first;
  }
  ArpEntry& e = *it->second;
  e.resolved = true;
  e.mac = mac;
  e.confirmed_ns = now_ns_();
  e.requests_sent = 0;
  ArmTimer(&e.timer, e.confirmed_ns + kArpLifetimeNs);
  uint16_t type = ip.is_v4() ? kEtherTypeIp4 : kEtherTypeIp6;
  while (!e.pending.empty()) {
    PendingPacket p = std::move(e.pending.front());
    e.pending.pop_front();
    WriteEth(nic, e.mac, type, p.packet, p.off);
  }
}

void Stack::ArpTimer(Nic* nic, IpAddr ip) {
  auto it = nic->arp.find(ip);
  if (it == nic->arp.end()) return;
  ArpEntry& e = *it->second;
  if (e.resolved) {  // lifetime over: forget it; the next packet asks again
    nic->arp.erase(it);
    return;
  }
  if (e.requests_sent >= kArpTries) {
    ++stats_.arp_failed;
    nic->arp.erase(it);  // drops the waiting packets (Linux: EHOSTUNREACH to no one)
    return;
  }
  ++e.requests_sent;
  if (ip.is_v4()) {
    ++stats_.arp_requests_sent;
    SendArp(nic, kArpRequest, kBroadcastMac, MacAddr{}, ip.v4());
  } else {
    SendNeighborSolicit(nic, ip);  // RFC 4861 7.2.2, as often and as far apart
  }
  ArmTimer(&e.timer, now_ns_() + kArpRetryNs);
}

bool Stack::NextHopMac(Nic* nic, const IpAddr& next_hop, std::string_view packet,
                       PacketOffload off, MacAddr* dst) {
  if (nic->loopback) {
    ++nic->tx_frames;
    nic->tx_bytes += packet.size();
    loopback_queue_.emplace_back(packet);
    return false;
  }
  bool bcast = next_hop.broadcast();
  for (const AddrPrefix& p : nic->addrs) {
    bcast |= p.addr.is_v4() && p.prefix_len < 31 && next_hop == IpAddr(p.broadcast());
  }
  if (bcast) {
    *dst = kBroadcastMac;
    return true;
  }
  if (next_hop.multicast() && !next_hop.is_v4()) {
    *dst = MulticastMac(next_hop);
    return true;
  }
  auto it = nic->arp.find(next_hop);
  if (it == nic->arp.end()) {
    IpAddr ip = next_hop;
    auto e = std::make_unique<ArpEntry>([this, nic, ip] { ArpTimer(nic, ip); });
    it = nic->arp.emplace(ip, std::move(e)).first;
    it->second->pending.push_back({std::string(packet), off});
    ArpTimer(nic, ip);  // the first request, now
    return false;
  }
  ArpEntry& e = *it->second;
  if (!e.resolved) {
    size_t bytes = packet.size();
    for (const PendingPacket& q : e.pending) bytes += q.packet.size();
    while (bytes > kArpQueueBytes && !e.pending.empty()) {
      bytes -= e.pending.front().packet.size();
      e.pending.pop_front();
      ++stats_.arp_queue_overflow;
    }
    e.pending.push_back({std::string(packet), off});
    return false;
  }
  *dst = e.mac;
  return true;
}

void Stack::SendOnLink(Nic* nic, const IpAddr& next_hop, std::string packet, PacketOffload off) {
  MacAddr dst{};
  if (!NextHopMac(nic, next_hop, packet, off, &dst)) return;
  WriteEth(nic, dst, next_hop.is_v4() ? kEtherTypeIp4 : kEtherTypeIp6, packet, off);
}

void Stack::SendFramed(Nic* nic, const IpAddr& next_hop, std::string* frame, PacketOffload off) {
  MacAddr dst{};
  if (!NextHopMac(nic, next_hop, std::string_view(*frame).substr(kEthHeaderLen), off, &dst)) {
    return;
  }
  std::string eth;
  AppendEth(&eth, {dst, nic->mac, next_hop.is_v4() ? kEtherTypeIp4 : kEtherTypeIp6});
  frame->replace(0, kEthHeaderLen, eth);
  WriteLink(nic, *frame, off);
}

bool Stack::OffloadsTo(const IpAddr& dst) {
  auto route = FindRoute(dst);
  return route.ok() && route->nic->link && route->nic->link->TakesOffloads();
}

PacketOffload Stack::OffloadFor(Nic* nic, std::string* pkt, size_t l4, PacketOffload off) {
  if (!off.csum_partial || (nic->link && nic->link->TakesOffloads())) return off;
  // What the device would have done: sum from the transport header on (its
  // checksum field holds the pseudo-header's sum) and store the result.
  uint8_t* check = U8(*pkt) + l4 + 16;
  Put16(check, ChecksumFinish(ChecksumPartial(std::string_view(*pkt).substr(l4))));
  return {};
}

void Stack::WriteEth(Nic* nic, const MacAddr& dst, uint16_t type, std::string_view packet,
                     PacketOffload off) {
  std::string f;
  f.reserve(kEthHeaderLen + packet.size());
  AppendEth(&f, {dst, nic->mac, type});
  f += packet;
  WriteLink(nic, f, off);
}

void Stack::WriteLink(Nic* nic, std::string_view f, PacketOffload off) {
  ++stats_.frames_out;
  ++nic->tx_frames;
  nic->tx_bytes += f.size();
  if (!off.csum_partial) {
    nic->link->WriteFrame(f);
    return;
  }
  // SendIp left the checksum (and the cutting) to this NIC only if it
  // takes offloads; the packet is TCP in IPv4 without options or IPv6.
  TxOffload o;
  o.csum_partial = true;
  std::string_view packet = f.substr(kEthHeaderLen);
  bool v6 = (U8(packet)[0] >> 4) == 6;
  size_t ip_len = v6 ? kIp6HeaderLen : size_t(U8(packet)[0] & 0xf) * 4;
  o.csum_start = uint16_t(kEthHeaderLen + ip_len);
  o.csum_offset = 16;
  if (off.gso_size > 0) {
    o.gso_size = off.gso_size;
    o.gso_v6 = v6;
    o.hdr_len = uint16_t(o.csum_start + (U8(packet)[ip_len + 12] >> 4) * 4);
    ++stats_.tcp_tso_frames;
  }
  nic->link->WriteOffloadedFrame(f, o);
}

}  // namespace seedvisor::netstack
