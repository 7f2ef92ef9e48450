// ICMP echo "ping sockets" (Linux's net/ipv4/ping.c) and raw ICMP sockets
// (net/ipv4/raw.c, net/ipv6/raw.c): the UdpEndpoint parts that differ from
// UDP. The identifier is the socket's port: bind() picks
// it (0: the stack does), every echo request sent carries it whatever the
// caller wrote there, and the stack hands an echo reply to the socket bound
// to the reply's identifier (Stack::HandleEchoReply, stack_demux.cc).
#include <cerrno>

#include "netstack/shared/udp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

Status UdpEndpoint::BindPingLocked(SockAddr a) {
  // ping_check_bind_addr(): IPv4 never a multicast or broadcast address
  // (EADDRNOTAVAIL), IPv6 a unicast one only (EINVAL); one of ours.
  if (!a.ip.any()) {
    if (a.ip.multicast()) return Errno(a.ip.is_v4() ? EADDRNOTAVAIL : EINVAL);
    if (stack_->IsBroadcast(a.ip) || !stack_->IsLocalAddress(a.ip)) return Errno(EADDRNOTAVAIL);
  }
  if (bound_) return Errno(EINVAL);
  auto& table = stack_->ping_bound_;
  uint16_t id = a.port;
  if (id == 0) {
    // ping_get_port(): the first identifier after the rover that no
    // socket holds (ours starts at a keyed offset, so that two forks of a
    // seed do not repeat each other's identifiers).
    const uint16_t base =
        uint16_t(stack_->inst_.secrets.PortOffset(IpAddr{}, IpAddr{}, proto_));
    for (uint32_t i = 1; i <= 0x10000 && id == 0; ++i) {
      uint16_t c = uint16_t(base + stack_->ping_rover_ + i);
      if (c == 0 || table.count(c)) continue;
      stack_->ping_rover_ = uint16_t(stack_->ping_rover_ + i);
      id = c;
    }
    if (id == 0) return Errno(EADDRINUSE);
  } else {
    // Held by another socket: EADDRINUSE unless both have SO_REUSEADDR
    // (ping sockets start with it: the kernel lets sockets share).
    auto [b, e] = table.equal_range(id);
    for (auto it = b; it != e; ++it) {
      if (!it->second->reuse_addr_ || !reuse_addr_) return Errno(EADDRINUSE);
    }
  }
  local_ = {a.ip, id};
  port_.ip = a.ip;
  port_.port = id;
  bound_ = true;
  // Before the others of this identifier: the last bound gets the replies.
  table.emplace_hint(table.lower_bound(id), id, this);
  return {};
}

void UdpEndpoint::UnbindPingLocked() {
  auto drop = [this](auto& table, auto key) {
    auto [b, e] = table.equal_range(key);
    for (auto it = b; it != e; ++it) {
      if (it->second == this) {
        table.erase(it);
        return;
      }
    }
  };
  if (raw()) {
    drop(stack_->raw_icmp_, proto_);
  } else {
    drop(stack_->ping_bound_, local_.port);
  }
  bound_ = false;
}

Result<size_t> UdpEndpoint::SendRawLocked(std::string_view msg, const SockAddr& to,
                                          const SendInfo& info) {
  // raw_sendmsg()/rawv6_sendmsg(): the message as written (the caller's
  // IPv4 checksum; ICMPv6's is the kernel's, at offset 2).
  const bool six = proto_ == kProtoIcmp6;
  if (msg.size() > 0xffff - kIp4MinHeaderLen) return Errno(EMSGSIZE);
  if (six == to.ip.is_v4()) return Errno(six ? EINVAL : EAFNOSUPPORT);
  auto route = stack_->FindRoute(to.ip);
  if (!route.ok()) return route.error();
  SV_TRY(BroadcastAllowed(to.ip));
  // raw_bind(): bound to a multicast or broadcast address, the source is
  // the route's ("use device").
  IpAddr src = !info.src.any() ? info.src : SourceIsOurs() ? local_.ip : route->src;
  std::string m(msg);
  if (six) {
    if (m.size() < 4) return Errno(EINVAL);  // no room for the checksum
    FinishIcmp6(&m, src, to.ip);
  }
  SV_TRY(stack_->SendIp(src, to.ip, proto_, m, false, TtlOf(info, to.ip), 0, {},
                        TosOf(info, to.ip)));
  return msg.size();
}

bool UdpEndpoint::RawAccepts(const IpAddr& src, const IpAddr& dst, uint8_t type) const {
  if (closed_ || (!local_.ip.any() && local_.ip != dst)) return false;
  if (connected_ && remote_.ip != src) return false;
  if (proto_ == kProtoIcmp && type >= 32) return true;  // ICMP_FILTER covers 0..31
  return !(icmp_filter_[type / 32] >> (type % 32) & 1);
}

void UdpEndpoint::SetIcmpFilter(const std::array<uint32_t, 8>& blocked) {
  Stack::Locked l(stack_);
  icmp_filter_ = blocked;
}

std::array<uint32_t, 8> UdpEndpoint::IcmpFilter() {
  Stack::Locked l(stack_);
  return icmp_filter_;
}

void Stack::DeliverRawIcmp(const L3& ip, uint8_t proto, std::string_view ip_header,
                           std::string_view msg) {
  auto [b, e] = raw_icmp_.equal_range(proto);
  if (b == e || msg.empty()) return;
  std::string copy;
  for (auto it = b; it != e; ++it) {
    UdpEndpoint* ep = it->second;
    if (!ep->RawAccepts(ip.src, ip.dst, U8(msg)[0])) continue;
    if (copy.empty()) copy = std::string(ip_header) + std::string(msg);
    ++stats_.raw_delivered;
    ep->Deliver({ip.src, 0}, copy, 0, RecvInfoOf(ip));
  }
}

Result<size_t> UdpEndpoint::SendEchoLocked(std::string_view msg, const SockAddr& to,
                                           const SendInfo& info) {
  const bool six = proto_ == kProtoIcmp6;
  // ping_v4_sendmsg()/ping_v6_sendmsg() and ping_common_sendmsg(): at most
  // 64 KiB, at least an ICMP header, an echo request of the socket's
  // family with code 0, never an IPv4-mapped destination for ICMPv6.
  if (msg.size() > 0xffff) return Errno(EMSGSIZE);
  if (msg.size() < kIcmpHeaderLen) return Errno(EINVAL);
  if (U8(msg)[0] != (six ? kIcmp6EchoRequest : kIcmpEchoRequest) || U8(msg)[1] != 0) {
    return Errno(EINVAL);
  }
  if (six == to.ip.is_v4()) return Errno(six ? EINVAL : EAFNOSUPPORT);
  auto route = stack_->FindRoute(to.ip);
  if (!route.ok()) return route.error();
  SV_TRY(BroadcastAllowed(to.ip));
  if (!bound_) SV_TRY(BindLocked({Wildcard(), 0}));
  IpAddr src = !info.src.any() ? info.src : local_.ip.any() ? route->src : local_.ip;
  std::string echo(msg);
  Put16(U8(echo) + 2, 0);
  Put16(U8(echo) + 4, local_.port);
  if (six) {
    FinishIcmp6(&echo, src, to.ip);
  } else {
    Put16(U8(echo) + 2, ChecksumFinish(ChecksumPartial(echo)));
  }
  SV_TRY(stack_->SendIp(src, to.ip, proto_, echo, false, TtlOf(info, to.ip), 0, {},
                        TosOf(info, to.ip)));
  return msg.size();
}

void Stack::HandleEchoReply(const L3& ip, uint8_t proto, std::string_view msg) {
  if (msg.size() < kIcmpHeaderLen) return;
  // ping_lookup(): the identifier, and the bound address if there is one;
  // the first that fits, the last bound (ping_bound_'s order).
  auto [b, e] = ping_bound_.equal_range(Get16(U8(msg) + 4));
  for (auto it = b; it != e; ++it) {
    UdpEndpoint* ep = it->second;
    if (ep->proto_ != proto || (!ep->local_.ip.any() && ep->local_.ip != ip.dst)) continue;
    ++stats_.ping_delivered;
    ep->Deliver({ip.src, 0}, msg, 0, RecvInfoOf(ip));
    return;
  }
  ++stats_.ping_no_socket;
}

void Stack::PingIcmpError(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                          std::string_view quoted, IcmpError e, bool hard) {
  // ping_err(): about an echo request of ours (its identifier says whose).
  if (quoted.size() < kIcmpHeaderLen) return;
  uint8_t request = proto == kProtoIcmp6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
  if (U8(quoted)[0] != request) return;
  auto [b, end] = ping_bound_.equal_range(Get16(U8(quoted) + 4));
  for (auto it = b; it != end; ++it) {
    UdpEndpoint* ep = it->second;
    if (ep->proto_ != proto || (!ep->local_.ip.any() && ep->local_.ip != src)) continue;
    e.dest = {dst, 0};
    e.payload.assign(quoted);  // ip_icmp_error() with the quoted ICMP header
    ep->IcmpErrorLocked(std::move(e), hard);
    return;
  }
}

std::shared_ptr<UdpEndpoint> Stack::NewRawIcmp(bool v6) {
  using Kind = UdpEndpoint::Kind;
  auto ep = std::make_shared<UdpEndpoint>(this, v6 ? kProtoIcmp6 : kProtoIcmp, Kind::kRaw);
  if (v6) (void)ep->SetFamily6(true);
  // inet_create(): a raw socket is hashed at once, its "port" the protocol.
  Locked l(this);
  ep->local_.port = ep->port_.port = ep->proto_;
  ep->bound_ = true;
  raw_icmp_.emplace(ep->proto_, ep.get());
  return ep;
}

std::shared_ptr<UdpEndpoint> Stack::NewPing(bool v6) {
  using Kind = UdpEndpoint::Kind;
  auto ep = std::make_shared<UdpEndpoint>(this, v6 ? kProtoIcmp6 : kProtoIcmp, Kind::kPing);
  // ping_init_sock(): an ICMPv6 socket is IPv6 only.
  if (v6) (void)ep->SetFamily6(true);
  return ep;
}

}  // namespace seedvisor::netstack
