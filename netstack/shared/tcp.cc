// TCP: the socket-facing calls and the connection's lifecycle (tables,
// ports, close, abort). Input is in tcp_input.cc, output and timers in
// tcp_output.cc.
#include "netstack/shared/tcp.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "netstack/stack.h"

namespace seedvisor::netstack {

const char* TcpStateName(TcpState s) {
  switch (s) {
    case TcpState::kClosed: return "CLOSED";
    case TcpState::kListen: return "LISTEN";
    case TcpState::kSynSent: return "SYN_SENT";
    case TcpState::kSynRcvd: return "SYN_RECV";
    case TcpState::kEstablished: return "ESTABLISHED";
    case TcpState::kFinWait1: return "FIN_WAIT1";
    case TcpState::kFinWait2: return "FIN_WAIT2";
    case TcpState::kCloseWait: return "CLOSE_WAIT";
    case TcpState::kClosing: return "CLOSING";
    case TcpState::kLastAck: return "LAST_ACK";
    case TcpState::kTimeWait: return "TIME_WAIT";
  }
  return "?";
}

int LinuxTcpState(TcpState s) {
  switch (s) {
    case TcpState::kEstablished: return 1;
    case TcpState::kSynSent: return 2;
    case TcpState::kSynRcvd: return 3;
    case TcpState::kFinWait1: return 4;
    case TcpState::kFinWait2: return 5;
    case TcpState::kTimeWait: return 6;
    case TcpState::kClosed: return 7;
    case TcpState::kCloseWait: return 8;
    case TcpState::kLastAck: return 9;
    case TcpState::kListen: return 10;
    case TcpState::kClosing: return 11;
  }
  return 7;
}

TcpEndpoint::TcpEndpoint(Stack* stack)
    : Endpoint(stack),
      sndq_(&stack->chunk_pool_),
      rcvq_(&stack->chunk_pool_),
      rto_timer_([this] { OnRetransmitTimer(); }),
      wait_timer_([this] {
        auto self = shared_from_this();
        if (state_ == TcpState::kTimeWait || state_ == TcpState::kFinWait2) Finish();
      }),
      keepalive_timer_([this] { OnKeepaliveTimer(); }) {
  rcvbuf_cap_ = kRcvBufDefault;
  sndbuf_cap_ = kSndBufDefault;
}

TcpEndpoint::~TcpEndpoint() {
  // The stack holds a reference while the endpoint is in its tables, and
  // Finish() unbinds before it lets go; so only an endpoint the user bound
  // and dropped without Close() gets here bound, outside the lock.
  if (bound_ && owns_port_) {
    Stack::Locked l(stack_);
    stack_->tcp_ports_.Unbind(&port_);
  }
}

Status TcpEndpoint::BindLocked(SockAddr a) {
  if (bound_ || state_ != TcpState::kClosed) return Errno(EINVAL);
  if (!a.ip.any() && !stack_->IsLocalAddress(a.ip)) return Errno(EADDRNOTAVAIL);
  port_.ip = a.ip;
  port_.reuse = reuse_addr_;
  port_.listening = false;
  if (a.port == 0) {
    if (!stack_->tcp_ports_.BindEphemeral(stack_->inst_.secrets.PortOffset(a.ip, IpAddr{}, 0),
                                          &port_)) {
      return Errno(EADDRINUSE);  // inet_csk_get_port(): no free port
    }
  } else if (!stack_->tcp_ports_.Bind(a.port, &port_)) {
    return Errno(EADDRINUSE);
  }
  local_ = {a.ip, port_.port};
  bound_ = owns_port_ = true;
  return {};
}

Status TcpEndpoint::Bind(SockAddr a) {
  Stack::Locked l(stack_);
  return BindLocked(a);
}

Status TcpEndpoint::Listen(int backlog) {
  Stack::Locked l(stack_);
  // __sys_listen(): a backlog above somaxconn (4096), or negative as
  // unsigned, is somaxconn.
  if (backlog < 0 || backlog > 4096) backlog = 4096;
  if (state_ == TcpState::kListen) {
    backlog_ = backlog;
    return {};
  }
  if (state_ != TcpState::kClosed || user_closed_) return Errno(EINVAL);
  if (!bound_) SV_TRY(BindLocked({Wildcard(), 0}));
  port_.listening = true;
  if (stack_->tcp_ports_.Conflicts(local_.port, port_)) {
    port_.listening = false;
    return Errno(EADDRINUSE);
  }
  backlog_ = backlog;
  state_ = TcpState::kListen;
  stack_->tcp_listeners_.emplace(local_.port, shared_from_this());
  return {};
}

Result<std::shared_ptr<TcpEndpoint>> TcpEndpoint::Accept() {
  Stack::Locked l(stack_);
  if (state_ != TcpState::kListen) return Errno(EINVAL);
  if (accept_queue_.empty()) return Errno(EAGAIN);
  std::shared_ptr<TcpEndpoint> c = std::move(accept_queue_.front());
  accept_queue_.pop_front();
  return c;
}

Status TcpEndpoint::Connect(SockAddr a) {
  Stack::Locked l(stack_);
  switch (state_) {
    case TcpState::kClosed: break;
    case TcpState::kSynSent: return Errno(EALREADY);
    default: return Errno(EISCONN);
  }
  if (user_closed_) return Errno(EBADF);
  if (int e = PeerFamilyError(a.ip)) return Errno(e);
  // As Linux: the unspecified address is this host.
  if (a.ip.any()) a.ip = a.ip.is_v4() ? IpAddr(MakeIp4(127, 0, 0, 1)) : kIp6Loopback;
  if (!local_.ip.any() && local_.ip.is_v4() != a.ip.is_v4()) return Errno(ENETUNREACH);
  if (a.ip.multicast() || a.ip.broadcast()) return Errno(ENETUNREACH);
  if (a.port == 0) return Errno(ECONNREFUSED);
  auto route = stack_->FindRoute(a.ip, bound_nic_);
  if (!route.ok()) return route.error();
  IpAddr src = local_.ip.any() ? route->src : local_.ip;
  if (!bound_) {
    port_.ip = Wildcard();
    port_.reuse = reuse_addr_;
    if (!stack_->tcp_ports_.BindEphemeral(stack_->inst_.secrets.PortOffset(src, a.ip, a.port),
                                          &port_)) {
      return Errno(EADDRNOTAVAIL);
    }
    bound_ = owns_port_ = true;
  }
  local_ = {src, port_.port};
  remote_ = a;
  Stack::ConnKey key{local_.ip, local_.port, remote_.ip, remote_.port};
  if (stack_->tcp_conns_.count(key)) return Errno(EADDRNOTAVAIL);
  stack_->tcp_conns_.emplace(key, shared_from_this());
  snd_mss_ = MssForMtu(route->nic->mtu, remote_.ip);
  rcv_wscale_ = OurWindowScale();  // offered in the SYN
  InitTsOffset();
  wscale_ok_ = false;
  // RFC 6528: a keyed hash of the 4-tuple plus a clock (64 ns ticks, as
  // Linux's secure_tcp_seq()).
  iss_ = stack_->inst_.secrets.IsnOffset(local_.ip, local_.port, remote_.ip, remote_.port) +
         uint32_t(stack_->Now() >> 6);
  snd_una_ = iss_;
  snd_nxt_ = snd_max_ = iss_ + 1;
  // RFC 6582's "recover" starts at the ISS: compared with 0, every ISN in
  // the upper half of the space looked like a recovery in progress.
  recover_ = iss_;
  state_ = TcpState::kSynSent;
  retries_ = 0;
  SendSyn();
  ArmRto();
  return Errno(EINPROGRESS);
}

Result<size_t> TcpEndpoint::Send(std::string_view data) {
  Stack::Locked l(stack_);
  if (error_) return Errno(TakeErrorLocked());
  switch (state_) {
    case TcpState::kEstablished:
    case TcpState::kCloseWait:
      break;
    case TcpState::kSynSent:
    case TcpState::kSynRcvd:
      return Errno(EAGAIN);
    default:  // sk_stream_wait_connect(): anything else is EPIPE
      return Errno(EPIPE);
  }
  if (shut_wr_) return Errno(EPIPE);
  size_t room = sndbuf_cap_ > sndq_.size() ? sndbuf_cap_ - sndq_.size() : 0;
  if (room == 0) return Errno(EAGAIN);
  size_t n = std::min(room, data.size());
  sndq_.Append(data.substr(0, n));
  Output();
  return n;
}

Result<size_t> TcpEndpoint::Recv(char* buf, size_t len, bool peek) {
  Stack::Locked l(stack_);
  if (state_ == TcpState::kListen) return Errno(ENOTCONN);
  if (!rcvq_.empty()) {
    size_t n = rcvq_.CopyOut(0, len, buf);
    if (!peek && n) {
      rcvq_.Consume(n);
      copied_ += n;
      AdjustRcvSpace();
      MaybeSendWindowUpdate();
    }
    return n;
  }
  if (error_) return Errno(TakeErrorLocked());
  if (fin_received_ || shut_rd_) return size_t{0};
  if (state_ == TcpState::kClosed) {
    if (ever_connected_) return size_t{0};
    return Errno(ENOTCONN);
  }
  return Errno(EAGAIN);
}

Status TcpEndpoint::Shutdown(int how) {
  Stack::Locked l(stack_);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return Errno(EINVAL);
  bool rd = how != SHUT_WR, wr = how != SHUT_RD;
  // inet_shutdown(): a listener stops on SHUT_RD; connecting aborts.
  switch (state_) {
    case TcpState::kClosed:
      return Errno(ENOTCONN);
    case TcpState::kListen:
      if (rd) {
        for (auto& c : accept_queue_) c->Abort(0, true);
        accept_queue_.clear();
        Finish();
      }
      return {};
    case TcpState::kSynSent:
      // tcp_disconnect(): the connect in progress fails with ECONNRESET.
      Abort(ECONNRESET, false);
      return {};
    default:
      break;
  }
  if (rd) shut_rd_ = true;
  if (wr && !shut_wr_) {
    shut_wr_ = true;
    if (state_ == TcpState::kEstablished || state_ == TcpState::kSynRcvd) {
      fin_queued_ = true;
      state_ = TcpState::kFinWait1;
    } else if (state_ == TcpState::kCloseWait) {
      fin_queued_ = true;
      state_ = TcpState::kLastAck;
    }
    Output();
  }
  NotifyLocked();
  return {};
}

void TcpEndpoint::Close() {
  Stack::Locked l(stack_);
  if (user_closed_) return;
  user_closed_ = true;
  observer_ = nullptr;
  owner_ino_ = 0;  // an orphan from here on (sock_orphan())
  auto self = shared_from_this();
  switch (state_) {
    case TcpState::kClosed:
      if (bound_ && owns_port_) stack_->tcp_ports_.Unbind(&port_);
      bound_ = false;
      return;
    case TcpState::kListen:
      // inet_csk_listen_stop(): queued connections are reset.
      for (auto& c : accept_queue_) c->Abort(0, true);
      accept_queue_.clear();
      Finish();
      return;
    case TcpState::kSynSent:
      Finish();
      return;
    default:
      break;
  }
  // tcp_close(): unread data means the peer will not get it: reset.
  if (!rcvq_.empty() || !ooo_.empty()) {
    Abort(0, true);
    return;
  }
  shut_rd_ = shut_wr_ = true;
  switch (state_) {
    case TcpState::kSynRcvd:
    case TcpState::kEstablished:
      fin_queued_ = true;
      state_ = TcpState::kFinWait1;
      break;
    case TcpState::kCloseWait:
      fin_queued_ = true;
      state_ = TcpState::kLastAck;
      break;
    case TcpState::kFinWait2:
      stack_->ArmTimer(&wait_timer_, stack_->Now() + kFinWait2Ns);
      break;
    default:
      break;
  }
  Output();
}

void TcpEndpoint::Abort(int err, bool send_rst) {
  auto self = shared_from_this();
  if (send_rst && state_ != TcpState::kClosed && state_ != TcpState::kListen &&
      state_ != TcpState::kSynSent && state_ != TcpState::kTimeWait) {
    SendSegment(snd_nxt_, kTcpRst | kTcpAck, {}, false);
    ++stack_->stats_.tcp_rst_sent;
  }
  if (err) error_ = err;
  sndq_.Consume(sndq_.size());
  ooo_.clear();
  ooo_ranges_.clear();
  ooo_bytes_ = 0;
  ooo_fin_off_.reset();
  Finish();
}

void TcpEndpoint::Finish() {
  auto self = shared_from_this();
  if (state_ == TcpState::kSynRcvd) {
    if (auto l = listener_.lock()) {
      if (l->syn_pending_ > 0) --l->syn_pending_;
    }
  }
  listener_.reset();
  stack_->wheel_.Cancel(&rto_timer_);
  stack_->wheel_.Cancel(&wait_timer_);
  stack_->wheel_.Cancel(&keepalive_timer_);
  if (bound_ && owns_port_) stack_->tcp_ports_.Unbind(&port_);
  bound_ = false;
  if (state_ == TcpState::kListen) {
    port_.listening = false;
    auto [b, e] = stack_->tcp_listeners_.equal_range(local_.port);
    for (auto it = b; it != e; ++it) {
      if (it->second.get() == this) {
        stack_->tcp_listeners_.erase(it);
        break;
      }
    }
  } else {
    auto it = stack_->tcp_conns_.find(
        Stack::ConnKey{local_.ip, local_.port, remote_.ip, remote_.port});
    if (it != stack_->tcp_conns_.end() && it->second.get() == this) stack_->tcp_conns_.erase(it);
  }
  if (state_ != TcpState::kListen && state_ != TcpState::kClosed) ever_connected_ = true;
  state_ = TcpState::kClosed;
  shut_wr_ = true;
  NotifyLocked();
}

uint32_t TcpEndpoint::Readiness() {
  Stack::Locked l(stack_);
  if (state_ == TcpState::kListen) return accept_queue_.empty() ? 0 : POLLIN | POLLRDNORM;
  // tcp_poll().
  uint32_t m = 0;
  if (error_) m |= POLLERR;
  bool rd_shut = fin_received_ || shut_rd_;
  if ((rd_shut && shut_wr_) || state_ == TcpState::kClosed) m |= POLLHUP;
  if (rd_shut) m |= POLLIN | POLLRDNORM | POLLRDHUP;
  if (state_ != TcpState::kSynSent && state_ != TcpState::kSynRcvd) {
    if (!rcvq_.empty()) m |= POLLIN | POLLRDNORM;
    if (!shut_wr_ || state_ == TcpState::kClosed) {
      if (sndq_.size() < sndbuf_cap_) m |= POLLOUT | POLLWRNORM;
    } else {
      m |= POLLOUT | POLLWRNORM;
    }
  }
  return m;
}

Result<SockAddr> TcpEndpoint::remote() {
  Stack::Locked l(stack_);
  if (state_ == TcpState::kListen || state_ == TcpState::kSynSent ||
      (state_ == TcpState::kClosed && !ever_connected_)) {
    return Errno(ENOTCONN);
  }
  return remote_;
}

TcpState TcpEndpoint::state() {
  Stack::Locked l(stack_);
  return state_;
}

bool TcpEndpoint::Unused() {
  Stack::Locked l(stack_);
  return state_ == TcpState::kClosed && !ever_connected_ && !error_;
}

size_t TcpEndpoint::Available() {
  Stack::Locked l(stack_);
  return rcvq_.size();
}

size_t TcpEndpoint::Unsent() {
  Stack::Locked l(stack_);
  return sndq_.size();
}

void TcpEndpoint::SetNoDelay(bool on) {
  Stack::Locked l(stack_);
  nodelay_ = on;
  if (on) Output();  // TCP_NODELAY pushes what Nagle held back
}

void TcpEndpoint::SetReuseAddr(bool on) {
  Stack::Locked l(stack_);
  reuse_addr_ = on;
  port_.reuse = on;
}

void TcpEndpoint::SetBufferSizes(size_t rcvbuf, size_t sndbuf) {
  Stack::Locked l(stack_);
  if (rcvbuf) {
    rcvbuf_cap_ = rcvbuf;
    rcvbuf_locked_ = true;
  }
  if (sndbuf) {
    sndbuf_cap_ = sndbuf;
    sndbuf_locked_ = true;
  }
  NotifyLocked();
}

void TcpEndpoint::InitBufferSpace() {
  // tcp_init_buffer_space(): the first measurement expects an initial
  // congestion window's worth per round trip.
  rcv_space_ = std::min<uint64_t>(RcvSpace(), 10 * uint64_t(snd_mss_));
  rcv_space_from_ = copied_;
  rcv_space_ns_ = stack_->Now();
  // tcp_initialize_rcv_mss(): the peer's segment size until one is seen.
  rcv_mss_ = std::max<uint16_t>(rcv_mss_, std::min(snd_mss_, kDefaultMss));
}

void TcpEndpoint::AdjustRcvSpace() {
  // tcp_rcv_space_adjust(): once a round trip, if the user read more than
  // in the last one, make the buffer hold twice that (plus 16 segments),
  // more if the rate grew, up to tcp_rmem[2]. The round trip is the
  // smoothed RTT, at least the stack's 1 ms timer tick.
  if (rcvbuf_locked_ || rto_.srtt_ns() < 0) return;
  int64_t now = stack_->Now();
  if (now - rcv_space_ns_ < std::max<int64_t>(rto_.srtt_ns(), RtoEstimator::kGranularityNs)) return;
  uint64_t copied = copied_ - rcv_space_from_;
  if (copied > rcv_space_) {
    uint64_t win = 2 * copied + 16 * uint64_t(snd_mss_);
    if (rcv_space_ > 0) win += 2 * (win * (copied - rcv_space_) / rcv_space_);
    rcvbuf_cap_ = std::max<size_t>(rcvbuf_cap_, std::min<uint64_t>(win, kRcvRoomMax));
    rcv_space_ = copied;
  }
  rcv_space_from_ = copied_;
  rcv_space_ns_ = now;
}

uint16_t TcpEndpoint::mss() {
  Stack::Locked l(stack_);
  return snd_mss_;
}

int64_t TcpEndpoint::rto_ns() {
  Stack::Locked l(stack_);
  return rto_.rto_ns();
}

int64_t TcpEndpoint::RtoJitterNs(int64_t rto_ns, int retry) {
  Stack::Locked l(stack_);
  return JitterLocked(rto_ns, retry);
}

}  // namespace seedvisor::netstack
