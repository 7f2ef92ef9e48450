#include "netstack/shared/udp.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {

// What a queued datagram costs against SO_RCVBUF: Linux charges the skb's
// truesize, a few hundred bytes beyond the payload.
constexpr size_t kDatagramOverhead = 256;

}  // namespace

UdpEndpoint::UdpEndpoint(Stack* stack, uint8_t proto, Kind kind)
    // inet_create(): ping and raw sockets start with SO_REUSEADDR
    // (INET_PROTOSW_REUSE in their inetsw entries).
    : Endpoint(stack), proto_(proto), kind_(kind), reuse_addr_(kind != Kind::kUdp) {}

UdpEndpoint::~UdpEndpoint() {
  // The stack holds no reference to a UDP endpoint, so the last one is
  // always dropped outside its lock.
  if (!closed_) Close();
}

Status UdpEndpoint::BindLocked(SockAddr a) {
  if (ping()) return BindPingLocked(a);
  if (bound_ && !raw()) return Errno(EINVAL);
  // inet_bind(), raw_bind(), inet6_bind(), rawv6_bind(): one of our
  // addresses, or a multicast or broadcast one (to receive what is sent
  // there; what we send then comes from the route's source).
  if (!a.ip.any() && !a.ip.multicast() && !stack_->IsBroadcast(a.ip) &&
      !stack_->IsLocalAddress(a.ip)) {
    return Errno(EADDRNOTAVAIL);
  }
  if (raw()) {  // raw_bind(): the address only, again if need be; the "port" stays
    local_.ip = port_.ip = a.ip;
    return {};
  }
  port_.ip = a.ip;
  port_.reuse = reuse_addr_;
  if (a.port == 0) {
    if (!stack_->udp_ports_.BindEphemeral(stack_->inst_.secrets.PortOffset(a.ip, IpAddr{}, 0), &port_)) {
      return Errno(EAGAIN);  // udp_lib_get_port(): the range is exhausted
    }
  } else if (!stack_->udp_ports_.Bind(a.port, &port_)) {
    return Errno(EADDRINUSE);
  }
  local_ = {a.ip, port_.port};
  bound_ = owns_port_ = true;
  stack_->udp_bound_.emplace(local_.port, this);
  return {};
}

Status UdpEndpoint::Bind(SockAddr a) {
  Stack::Locked l(stack_);
  return BindLocked(a);
}

Status UdpEndpoint::Connect(SockAddr a) {
  Stack::Locked l(stack_);
  if (int e = PeerFamilyError(a.ip)) return Errno(e);
  auto route = stack_->FindRoute(a.ip, bound_nic_);
  if (!route.ok()) return route.error();
  SV_TRY(BroadcastAllowed(a.ip));
  if (!bound_) SV_TRY(BindLocked({Wildcard(), 0}));
  // A connected endpoint's local address is fixed (inet->inet_saddr).
  if (local_.ip.any()) local_.ip = route->src;
  remote_ = a;
  connected_ = true;
  return {};
}

Status UdpEndpoint::Disconnect() {
  Stack::Locked l(stack_);
  connected_ = false;
  remote_ = {};
  // udp_disconnect(): the source address is forgotten unless bind() set it.
  local_.ip = port_.ip;
  return {};
}

Result<size_t> UdpEndpoint::SendTo(std::string_view data, std::optional<SockAddr> to,
                                   uint32_t scope, const SendInfo& info) {
  Stack::Locked l(stack_);
  if (shut_wr_) return Errno(EPIPE);
  if (error_) return Errno(TakeErrorLocked());
  if (!to) {
    if (!connected_) return Errno(EDESTADDRREQ);
    to = remote_;
  }
  // ip6_datagram_send_ctl(), ip_cmsg_send(): a pktinfo's interface must
  // exist (ENODEV) and its source address be one of ours of the
  // destination's family: EINVAL, but for IPv4 a unicast address that is
  // not ours fails the route lookup (ip_route_output_key_hash_rcu()).
  if (info.oif && !stack_->GetNic(int(info.oif))) return Errno(ENODEV);
  if (!info.src.any()) {
    if (info.src.is_v4() != to->ip.is_v4()) return Errno(EINVAL);
    if (!stack_->IsLocalAddress(info.src)) {
      const bool unicast4 = info.src.is_v4() && !info.src.multicast() && !info.src.broadcast();
      return Errno(unicast4 ? ENETUNREACH : EINVAL);
    }
  }
  if (ping()) return SendEchoLocked(data, *to, info);
  if (raw()) return SendRawLocked(data, *to, info);
  if (to->port == 0) return Errno(EINVAL);
  if (data.size() > kMaxPayload) return Errno(EMSGSIZE);
  if (int e = PeerFamilyError(to->ip)) return Errno(e);
  // udpv6_sendmsg(): the destination's scope, else the pktinfo's, else
  // the socket's.
  auto route = stack_->FindRoute(to->ip, scope ? scope : info.oif ? info.oif : bound_nic_);
  if (!route.ok()) return route.error();
  SV_TRY(BroadcastAllowed(to->ip));
  if (!bound_) SV_TRY(BindLocked({Wildcard(), 0}));
  if (SourceIsOurs() && local_.ip.is_v4() != to->ip.is_v4()) return Errno(ENETUNREACH);
  IpAddr src = !info.src.any() ? info.src : SourceIsOurs() ? local_.ip : route->src;
  std::string seg(kUdpHeaderLen, '\0');
  uint8_t* p = U8(seg);
  Put16(p, local_.port);
  Put16(p + 2, to->port);
  Put16(p + 4, uint16_t(kUdpHeaderLen + data.size()));
  seg.append(data);
  uint16_t sum = ChecksumFinish(ChecksumPartial(
      seg, PseudoHeaderSum(src, to->ip, kProtoUdp, uint16_t(seg.size()))));
  Put16(U8(seg) + 6, sum == 0 ? 0xffff : sum);
  SV_TRY(stack_->SendIp(src, to->ip, kProtoUdp, seg, false, TtlOf(info, to->ip), 0, {},
                        TosOf(info, to->ip)));
  return data.size();
}

uint8_t UdpEndpoint::TtlOf(const SendInfo& info, const IpAddr& to) const {
  return info.ttl >= 0 ? uint8_t(info.ttl) : ip_tx_.TtlFor(to);
}

uint8_t UdpEndpoint::TosOf(const SendInfo& info, const IpAddr& to) const {
  return info.tos >= 0 ? uint8_t(info.tos) : ip_tx_.TosFor(to);
}

Status UdpEndpoint::BroadcastAllowed(const IpAddr& to) const {
  // udp_sendmsg(), ping_v4_sendmsg(), raw_sendmsg() and
  // __ip4_datagram_connect(): a route to a broadcast address needs
  // SO_BROADCAST.
  if (!broadcast_ && stack_->IsBroadcast(to)) return Errno(EACCES);
  return {};
}

bool UdpEndpoint::SourceIsOurs() const {
  return !local_.ip.any() && !local_.ip.multicast() && !stack_->IsBroadcast(local_.ip);
}

void UdpEndpoint::SetBroadcast(bool on) {
  Stack::Locked l(stack_);
  broadcast_ = on;
}

void UdpEndpoint::Deliver(SockAddr from, std::string_view data, uint32_t scope,
                          const RecvInfo& info) {
  if (shut_rd_ || closed_) return;
  // Whatever waits in either queue counts (sk_rmem_alloc), but one
  // datagram always fits an empty receive queue.
  if (rcvq_bytes_ + data.size() + kDatagramOverhead > rcvbuf_cap_ && !rcvq_.empty()) {
    ++stack_->stats_.udp_rcvbuf_full;
    return;
  }
  rcvq_.push_back({from, std::string(data), scope, info});
  rcvq_bytes_ += data.size() + kDatagramOverhead;
  NotifyLocked();
}

Result<size_t> UdpEndpoint::RecvFrom(char* buf, size_t len, bool peek, SockAddr* from,
                                     bool may_wait, uint32_t* scope, RecvInfo* info) {
  Stack::Locked l(stack_);
  if (error_) return Errno(TakeErrorLocked());  // __skb_recv_udp(): sock_error() first
  if (rcvq_.empty()) {
    if (shut_rd_ && may_wait) return size_t{0};
    return Errno(EAGAIN);
  }
  Datagram& d = rcvq_.front();
  memcpy(buf, d.data.data(), std::min(len, d.data.size()));
  if (from) *from = d.from;
  if (scope) *scope = d.scope;
  if (info) *info = d.info;
  size_t n = d.data.size();
  if (!peek) {
    rcvq_bytes_ -= n + kDatagramOverhead;
    rcvq_.pop_front();
    NotifyLocked();
  }
  return n;
}

Status UdpEndpoint::Shutdown(int how) {
  Stack::Locked l(stack_);
  // inet_shutdown(): an unconnected socket is shut down all the same ("to
  // wake up other listeners"), and the answer is ENOTCONN.
  if (how == SHUT_RD || how == SHUT_RDWR) shut_rd_ = true;
  if (how == SHUT_WR || how == SHUT_RDWR) shut_wr_ = true;
  NotifyLocked();
  if (!connected_) return Errno(ENOTCONN);
  return {};
}

void UdpEndpoint::IcmpErrorLocked(IcmpError e, bool hard) {
  if (closed_) return;
  // __udp4_lib_err(): without IP_RECVERR only a hard error, and only to a
  // connected socket; with it every error, queued and pending. The IPv4
  // flag covers ICMP errors (an AF_INET6 socket's IPv4 peers too),
  // IPV6_RECVERR ICMPv6 ones.
  if (!(e.icmp6 ? recverr6_ : recverr4_)) {
    if (!hard || !connected_) return;
  } else {
    // sock_queue_err_skb(): no room, no queued copy (the error stays).
    size_t cost = e.payload.size() + kDatagramOverhead;
    if (rcvq_bytes_ + cost < rcvbuf_cap_) {
      rcvq_bytes_ += cost;
      errq_.push_back(e);
    } else {
      ++stack_->stats_.udp_errqueue_full;
    }
  }
  error_ = e.err;
  NotifyLocked();
}

Result<IcmpError> UdpEndpoint::TakeQueuedError() {
  Stack::Locked l(stack_);
  if (errq_.empty()) return Errno(EAGAIN);
  IcmpError e = std::move(errq_.front());
  errq_.pop_front();
  rcvq_bytes_ -= e.payload.size() + kDatagramOverhead;
  error_ = errq_.empty() ? 0 : errq_.front().err;
  NotifyLocked();
  return e;
}

void UdpEndpoint::SetRecvErr(bool ipv6, bool on) {
  Stack::Locked l(stack_);
  (ipv6 ? recverr6_ : recverr4_) = on;
  if (on || errq_.empty()) return;
  for (const IcmpError& e : errq_) rcvq_bytes_ -= e.payload.size() + kDatagramOverhead;
  errq_.clear();
  NotifyLocked();
}

bool UdpEndpoint::RecvErr(bool ipv6) {
  Stack::Locked l(stack_);
  return ipv6 ? recverr6_ : recverr4_;
}

void UdpEndpoint::Close() {
  Stack::Locked l(stack_);
  if (closed_) return;
  closed_ = true;
  if (bound_ && (ping() || raw())) {
    UnbindPingLocked();
  } else if (bound_) {
    auto [b, e] = stack_->udp_bound_.equal_range(local_.port);
    for (auto it = b; it != e; ++it) {
      if (it->second == this) {
        stack_->udp_bound_.erase(it);
        break;
      }
    }
    stack_->udp_ports_.Unbind(&port_);
    bound_ = false;
  }
  rcvq_.clear();
  errq_.clear();
  rcvq_bytes_ = 0;
}

uint32_t UdpEndpoint::Readiness() {
  Stack::Locked l(stack_);
  uint32_t m = POLLOUT | POLLWRNORM;
  if (!rcvq_.empty()) m |= POLLIN | POLLRDNORM;
  if (error_ || !errq_.empty()) m |= POLLERR;  // datagram_poll()
  if (shut_rd_) m |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (shut_rd_ && shut_wr_) m |= POLLHUP;
  return m;
}

Result<SockAddr> UdpEndpoint::remote() {
  Stack::Locked l(stack_);
  if (!connected_) return Errno(ENOTCONN);
  return remote_;
}

size_t UdpEndpoint::Available() {
  Stack::Locked l(stack_);
  return rcvq_.empty() ? 0 : rcvq_.front().data.size();
}

void UdpEndpoint::SetReuseAddr(bool on) {
  Stack::Locked l(stack_);
  reuse_addr_ = on;
}

void UdpEndpoint::SetBufferSizes(size_t rcvbuf, size_t sndbuf) {
  Stack::Locked l(stack_);
  if (rcvbuf) rcvbuf_cap_ = rcvbuf;
  if (sndbuf) sndbuf_cap_ = sndbuf;
}

}  // namespace seedvisor::netstack
