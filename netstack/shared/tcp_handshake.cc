// TCP's three-way handshake on arrival (RFC 9293 3.5, 3.10.7.2-3): a SYN
// at a listener makes a SYN-RCVD child, SYN-SENT takes the peer's
// SYN-ACK (or a simultaneous open's SYN), and SYN-RCVD becomes
// ESTABLISHED in its listener's accept queue.
#include <algorithm>
#include <memory>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

void TcpEndpoint::HandleListen(const TcpHeader& h, const IpAddr& src, const IpAddr& dst) {
  if (h.flags & kTcpRst) return;
  if (h.flags & kTcpAck) {  // no connection for it: reset (RFC 9293 3.10.7.2)
    stack_->SendRstFor(src, dst, h, 0);
    return;
  }
  if (!(h.flags & kTcpSyn) || (h.flags & kTcpFin)) return;
  // A full accept queue drops the SYN (the peer retries), as
  // tcp_conn_request() does without syncookies.
  if (accept_queue_.size() > size_t(backlog_) ||
      syn_pending_ >= std::max<size_t>(size_t(backlog_), 128)) {
    ++stack_->stats_.tcp_listen_overflow;
    return;
  }
  auto route = stack_->FindRoute(src);
  if (!route.ok()) return;
  auto c = std::make_shared<TcpEndpoint>(stack_);
  c->local_ = {dst, local_.port};
  c->remote_ = {src, h.src_port};
  // tcp_v6_init_req(): the listener's device, or for a link-local peer the
  // one the SYN came in on (its address's NIC, as HandleUdp says).
  c->bound_nic_ = bound_nic_;
  if (!c->bound_nic_ && src.link_local()) c->bound_nic_ = stack_->NicOwning(dst);
  c->bound_ = c->owns_port_ = true;
  c->port_.ip = dst;
  c->v6_ = c->port_.v6 = v6_;
  c->v6only_ = c->port_.v6only = v6only_;
  c->port_.reuse = reuse_addr_;
  c->port_.reuseport = port_.reuseport;
  c->port_.uid = port_.uid;
  c->reuse_addr_ = reuse_addr_;
  stack_->tcp_ports_.AddShared(local_.port, &c->port_);
  c->nodelay_ = nodelay_;
  c->keepalive_ = keepalive_;  // sk_clone_lock() copies them
  c->ip_tx_ = ip_tx_;
  c->cc_ = cc_;
  c->rcvbuf_cap_ = rcvbuf_cap_;
  c->sndbuf_cap_ = sndbuf_cap_;
  c->rcvbuf_locked_ = rcvbuf_locked_;
  c->sndbuf_locked_ = sndbuf_locked_;
  c->rcv_wscale_ = c->OurWindowScale();
  c->TakeSynOptions(h);
  c->listener_ = shared_from_this();
  c->passive_ = true;
  c->syn_ack_uncounted_ = true;
  c->irs_ = h.seq;
  c->rcv_nxt_ = h.seq + 1;
  c->rcv_adv_edge_ = c->rcv_nxt_;
  c->iss_ = stack_->inst_.secrets.IsnOffset(dst, local_.port, src, h.src_port) +
            uint32_t(stack_->Now() >> 6);
  c->snd_una_ = c->iss_;
  c->snd_nxt_ = c->snd_max_ = c->iss_ + 1;
  c->recover_ = c->iss_;
  c->snd_wnd_ = h.window;
  c->snd_wl1_ = h.seq;
  c->snd_wl2_ = c->iss_;
  uint16_t ours = MssForMtu(route->nic->mtu, src);
  c->snd_mss_ = std::min(ours, h.mss ? h.mss : kDefaultMss);
  if (c->snd_mss_ < 64) c->snd_mss_ = 64;  // Linux's tcp_min_snd_mss floor (48) rounded
  if (c->ts_ok_) c->snd_mss_ -= kTcpTsAlignedLen;  // the option's room (tcp_current_mss())
  c->InitTsOffset();
  c->cwnd_ = 10 * uint32_t(c->snd_mss_);
  c->state_ = TcpState::kSynRcvd;
  stack_->tcp_conns_.emplace(Stack::ConnKey{dst, local_.port, src, h.src_port}, c);
  ++syn_pending_;
  c->SendSyn();
  c->ArmRto();
}

void TcpEndpoint::HandleSynSent(const TcpHeader& h) {
  bool ack_ok = false;
  if (h.flags & kTcpAck) {
    if (SeqLeq(h.ack, iss_) || SeqGt(h.ack, snd_max_)) {
      if (!(h.flags & kTcpRst)) SendSegment(h.ack, kTcpRst, {}, false);
      return;
    }
    ack_ok = true;
  }
  if (h.flags & kTcpRst) {
    if (ack_ok) Abort(ECONNREFUSED, false);
    return;
  }
  if (!(h.flags & kTcpSyn)) return;
  TakeSynOptions(h);
  irs_ = h.seq;
  rcv_nxt_ = h.seq + 1;
  rcv_adv_edge_ = rcv_nxt_;
  snd_mss_ = std::min(snd_mss_, h.mss ? h.mss : kDefaultMss);
  if (snd_mss_ < 64) snd_mss_ = 64;
  if (ts_ok_) snd_mss_ -= kTcpTsAlignedLen;
  cwnd_ = 10 * uint32_t(snd_mss_);
  if (!ack_ok) {  // simultaneous open (RFC 9293 3.5, figure 8)
    state_ = TcpState::kSynRcvd;
    snd_wnd_ = h.window;
    snd_wl1_ = h.seq;
    SendSyn();
    return;
  }
  if (rtt_timing_) {
    SampleRtt(stack_->Now() - rtt_start_ns_);
  } else if (rtt_karn_) {
    SampleRttFromTsecr(h);  // the SYN was resent
  }
  rtt_timing_ = false;
  bytes_acked_ += h.ack - snd_una_;
  snd_una_ = h.ack;
  snd_wnd_ = h.window;
  snd_wl1_ = h.seq;
  snd_wl2_ = h.ack;
  state_ = TcpState::kEstablished;
  ever_connected_ = true;
  InitBufferSpace();
  retries_ = 0;
  stack_->wheel_.Cancel(&rto_timer_);
  last_rcv_ns_ = last_data_sent_ns_ = last_data_rcv_ns_ = stack_->Now();  // tcp_finish_connect()
  ArmKeepalive();  // tcp_finish_connect()
  SendAck();
  NotifyLocked();
  Output();
}

void TcpEndpoint::EnterEstablishedFromSynRcvd() {
  std::shared_ptr<TcpEndpoint> l = listener_.lock();
  if (passive_) {
    // A child of a listener: it must still be listening, with room.
    if (!l || l->state_ != TcpState::kListen) {
      Abort(0, true);
      return;
    }
    if (l->accept_queue_.size() > size_t(l->backlog_)) {
      ++stack_->stats_.tcp_listen_overflow;
      return;  // drop the ACK; our SYN-ACK retransmission asks again
    }
    if (l->syn_pending_ > 0) --l->syn_pending_;
    listener_.reset();
    state_ = TcpState::kEstablished;
    ever_connected_ = true;
    InitBufferSpace();
    last_rcv_ns_ = last_data_sent_ns_ = last_data_rcv_ns_ = stack_->Now();
    ArmKeepalive();  // tcp_create_openreq_child()
    l->accept_queue_.push_back(shared_from_this());
    l->NotifyLocked();
    return;
  }
  state_ = TcpState::kEstablished;  // simultaneous open
  ever_connected_ = true;
  InitBufferSpace();
  last_data_sent_ns_ = last_data_rcv_ns_ = stack_->Now();
  NotifyLocked();
}

}  // namespace seedvisor::netstack
