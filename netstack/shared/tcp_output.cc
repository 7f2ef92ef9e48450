// TCP output: segments, the send loop (receiver window, congestion window,
// Nagle, sender-side silly window avoidance), retransmission and the
// persist timer.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

size_t TcpEndpoint::RcvSpace() const {
  return rcvbuf_cap_ > rcvq_.size() ? rcvbuf_cap_ - rcvq_.size() : 0;
}

uint16_t TcpEndpoint::AdvertiseWindow(bool syn) {
  uint8_t shift = syn ? 0 : rcv_wscale_;
  uint32_t unit = 1u << shift;
  uint32_t wnd = uint32_t(std::min<size_t>(RcvSpace(), size_t(65535) << shift));
  wnd &= ~(unit - 1);  // what the field can say
  // Never move the right edge back (RFC 9293 3.8.6.2.2: shrinking is
  // "strongly discouraged"); with a scale, round the old window up as
  // tcp_select_window() does.
  uint32_t cur = SeqGt(rcv_adv_edge_, rcv_nxt_) ? rcv_adv_edge_ - rcv_nxt_ : 0;
  if (wnd < cur) wnd = std::min<uint64_t>((uint64_t(cur) + unit - 1) & ~uint64_t(unit - 1),
                                          uint64_t(65535) << shift);
  rcv_adv_edge_ = rcv_nxt_ + wnd;
  return uint16_t(wnd >> shift);
}

uint8_t TcpEndpoint::OurWindowScale() const {
  // tcp_select_initial_window(): the shift that lets the field cover the
  // largest buffer (tcp_rmem[2] unless SO_RCVBUF fixed it), at most 14.
  size_t space = rcvbuf_locked_ ? rcvbuf_cap_ : kRmemMax;
  int shift = 0;
  while (shift < kTcpMaxWindowScale && (space >> shift) > 65535) ++shift;
  return uint8_t(shift);
}

void TcpEndpoint::TakeSynOptions(const TcpHeader& h) {
  wscale_ok_ = h.wscale >= 0;
  // RFC 7323 2.3: a shift above 14 is taken as 14.
  snd_wscale_ = wscale_ok_ ? uint8_t(std::min<int>(h.wscale, kTcpMaxWindowScale)) : 0;
  if (!wscale_ok_) rcv_wscale_ = 0;  // no scaling either way (RFC 7323 2.2)
  sack_ok_ = stack_->tcp_sack_ && h.sack_permitted;
  ts_ok_ = stack_->tcp_timestamps_ && h.ts;
  if (ts_ok_) {
    ts_recent_ = h.tsval;
    ts_recent_ns_ = stack_->Now();
  }
}

void TcpEndpoint::SendSegment(uint32_t seq, uint8_t flags, std::string_view payload,
                              bool with_mss) {
  TcpHeader h;
  h.src_port = local_.port;
  h.dst_port = remote_.port;
  h.seq = seq;
  h.flags = flags;
  if (flags & kTcpAck) h.ack = last_ack_sent_ = rcv_nxt_;
  bool syn = flags & kTcpSyn;
  h.window = (flags & kTcpRst) ? 0 : AdvertiseWindow(syn);
  if (with_mss) {
    auto route = stack_->FindRoute(remote_.ip);
    h.mss = route.ok() ? MssForMtu(route->nic->mtu, remote_.ip) : kDefaultMss;
  }
  // A SYN offers window scaling; a SYN-ACK answers an offer (RFC 7323 1.3).
  if (syn && (state_ == TcpState::kSynSent || wscale_ok_)) {
    h.wscale = int8_t(rcv_wscale_);
  }
  if (syn) h.sack_permitted = state_ == TcpState::kSynSent ? stack_->tcp_sack_ : sack_ok_;
  PutTimestamps(&h);
  // Out-of-order data held: say which (RFC 2018 4).
  if ((flags & kTcpAck) && !syn && !(flags & kTcpRst) && sack_ok_ &&
      (!ooo_.empty() || dsack_)) {
    FillSackBlocks(&h);
    dsack_.reset();  // reported once
  }
  // More than a segment's payload: SendNew's TSO frame, for the NIC to cut
  // into snd_mss_ pieces (they count as segments, as tcp_skb_pcount()).
  PacketOffload off{true, 0};
  uint32_t segs = 1;
  if (payload.size() > snd_mss_) {
    off.gso_size = snd_mss_;
    segs = uint32_t((payload.size() + snd_mss_ - 1) / snd_mss_);
  }
  CountOut(payload, segs);
  std::string& seg = stack_->tx_segment_;
  seg.clear();
  // The checksum is left to the device if it takes that, else SendIp
  // completes it (one pass over the bytes either way).
  AppendTcp(&seg, h, local_.ip, remote_.ip, payload, /*csum_partial=*/true);
  // A failed send (no route any more) is a lost segment: the timers retry.
  uint32_t flow = remote_.ip.is_v4() ? 0
                  : stack_->inst_.secrets.FlowLabel(local_.ip, local_.port, remote_.ip, remote_.port);
  (void)stack_->SendIp(local_.ip, remote_.ip, kProtoTcp, seg, true, ip_tx_.TtlFor(remote_.ip),
                       flow, off, ip_tx_.TosFor(remote_.ip));
}

std::string_view TcpEndpoint::SendQueueBytes(size_t off, size_t n) {
  sndq_.ReadInto(off, n, &stack_->tx_payload_);
  return stack_->tx_payload_;
}

size_t TcpEndpoint::MaxSendBurst() {
  // A NIC that cuts TCP segments (TSO) takes up to a 64 KiB IP packet
  // of whole segments (Linux: the device's gso_max_size, 64 KiB); any
  // other one segment.
  if (!stack_->OffloadsTo(remote_.ip)) return snd_mss_;
  size_t room = 65535 - IpHeaderLen(remote_.ip) - kTcpMaxHeaderLen;
  return std::max<size_t>(room / snd_mss_, 1) * snd_mss_;
}

void TcpEndpoint::SendSyn() {
  if (retries_ == 0) {  // Karn: a retransmitted SYN is not timed
    rtt_timing_ = true;
    rtt_seq_ = iss_ + 1;
    rtt_start_ns_ = stack_->Now();
  }
  uint8_t flags = state_ == TcpState::kSynSent ? kTcpSyn : kTcpSyn | kTcpAck;
  SendSegment(iss_, flags, {}, true);
}

// Linux arms the timer at exactly RTO (inet_csk_reset_xmit_timer()). A
// handshake's timers and every timer after a timeout get a jitter of less
// than an eighth of RTO on top: forks of one seed start together, and
// without it their SYNs (and retransmissions) would be resent together at
// 1, 3, 7 ... s, each round a burst at the peer. A flowing connection's
// first timer stays Linux's.
void TcpEndpoint::ArmRto() {
  int64_t t = rto_.rto_ns();
  const bool jitter =
      retries_ > 0 || state_ == TcpState::kSynSent || state_ == TcpState::kSynRcvd;
  if (jitter) t += JitterLocked(t, retries_);
  stack_->ArmTimer(&rto_timer_, stack_->Now() + t);
}

int64_t TcpEndpoint::JitterLocked(int64_t rto_ns, int retry) const {
  const uint32_t h = stack_->inst_.secrets.RetryJitter(local_.ip, local_.port, remote_.ip,
                                                      remote_.port, uint32_t(retry));
  return int64_t((unsigned __int128)(rto_ns / 8) * h >> 32);
}

void TcpEndpoint::Output() {
  switch (state_) {
    case TcpState::kEstablished:
    case TcpState::kCloseWait:
    case TcpState::kFinWait1:
    case TcpState::kClosing:
    case TcpState::kLastAck:
      break;
    default:
      return;
  }
  // In SACK recovery the pipe, not snd_nxt_ - snd_una_, says what may go.
  bool sack_recovery = in_recovery_ && sack_recovery_;
  if (sack_recovery) SackRecoverySend();
  size_t unsent = 0;
  for (;;) {
    uint32_t in_flight = snd_nxt_ - snd_una_;
    unsent = sndq_.size() - std::min<size_t>(in_flight, sndq_.size());
    if (unsent > 0) {
      if (sack_recovery) break;
      uint32_t wnd = std::min(snd_wnd_, cwnd_);
      if (!SendNew(wnd > in_flight ? wnd - in_flight : 0)) break;
      continue;
    }
    if (fin_queued_ && snd_nxt_ == snd_una_ + uint32_t(sndq_.size())) {
      SendSegment(snd_nxt_, kTcpAck | kTcpFin, {}, false);
      fin_sent_ = true;
      fin_seq_ = snd_nxt_++;
      if (SeqGt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
      if (!rto_timer_.armed()) ArmRto();
    }
    break;
  }
  // A zero window with data waiting and nothing in flight: the persist
  // timer (RFC 9293 3.8.6.1) probes until the window opens.
  if (snd_wnd_ == 0 && unsent > 0 && snd_max_ == snd_una_ && !rto_timer_.armed()) ArmRto();
}

bool TcpEndpoint::SendNew(uint32_t usable) {
  uint32_t in_flight = snd_nxt_ - snd_una_;
  size_t sent_data = std::min<size_t>(in_flight, sndq_.size());
  size_t unsent = sndq_.size() - sent_data;
  size_t n = std::min({unsent, size_t(snd_mss_), size_t(usable)});
  if (n == 0) return false;
  if (n == snd_mss_ && unsent > n && usable > n) {
    // Several whole segments in one frame for a NIC that cuts them; a
    // short tail goes alone after it, under Nagle's and SWS avoidance's
    // rules, as it would after single segments.
    n = std::min({unsent, MaxSendBurst(), size_t(usable)});
    n -= n % snd_mss_;
  }
  // Sender SWS avoidance (RFC 9293 3.8.6.2.1) and Nagle (RFC 896):
  // with data in flight, a short segment waits for the ACK.
  if (n < snd_mss_ && in_flight > 0) {
    if (n < unsent) return false;
    if (!nodelay_ && !fin_queued_) return false;
  }
  bool fin = fin_queued_ && n == unsent;
  uint8_t flags = kTcpAck | (n == unsent ? kTcpPsh : 0) | (fin ? kTcpFin : 0);
  SendSegment(snd_nxt_, flags, SendQueueBytes(sent_data, n), false);
  if (!rtt_timing_ && snd_nxt_ == snd_max_) {
    rtt_timing_ = true;
    rtt_seq_ = snd_nxt_ + uint32_t(n);
    rtt_start_ns_ = stack_->Now();
  }
  snd_nxt_ += uint32_t(n);
  if (fin) {
    fin_sent_ = true;
    fin_seq_ = snd_nxt_++;
  }
  if (SeqGt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  if (!rto_timer_.armed()) ArmRto();
  return true;
}

void TcpEndpoint::RetransmitFirst() {
  uint32_t outstanding = snd_max_ - snd_una_;
  size_t n = std::min({size_t(snd_mss_), sndq_.size(), size_t(outstanding)});
  bool fin = fin_sent_ && n == sndq_.size() && SeqGt(snd_max_, fin_seq_);
  if (n == 0 && !fin) return;
  uint8_t flags = kTcpAck | kTcpPsh | (fin ? kTcpFin : 0);
  SendSegment(snd_una_, flags, SendQueueBytes(0, n), false);
  ++stack_->stats_.tcp_retransmits;
  CountRetransmit(n);
  rtt_timing_ = false;  // Karn
  rtt_karn_ = true;
  uint32_t end = snd_una_ + uint32_t(n) + (fin ? 1 : 0);
  if (SeqLt(snd_nxt_, end)) snd_nxt_ = end;
}

void TcpEndpoint::OnRetransmitTimer() {
  auto self = shared_from_this();
  switch (state_) {
    case TcpState::kSynSent:
    case TcpState::kSynRcvd: {
      int limit = state_ == TcpState::kSynSent ? kSynRetries : kSynAckRetries;
      if (++retries_ > limit) {
        if (state_ == TcpState::kSynSent) {
          Abort(ETIMEDOUT, false);
        } else {
          Finish();
        }
        return;
      }
      ++stack_->stats_.tcp_retransmits;
      CountRetransmit(0);
      rtt_timing_ = false;
      rtt_karn_ = true;
      rto_.Backoff();
      SendSyn();
      ArmRto();
      return;
    }
    case TcpState::kClosed:
    case TcpState::kListen:
    case TcpState::kTimeWait:
      return;
    default:
      break;
  }
  uint32_t flight = snd_max_ - snd_una_;
  if (flight == 0) {
    // The persist timer: a zero-window probe (an ACK below the window,
    // which the peer must answer with its window, as tcp_xmit_probe_skb()).
    if (snd_wnd_ == 0 && !sndq_.empty()) {
      if (++retries_ > kDataRetries) {
        Abort(ETIMEDOUT, false);
        return;
      }
      SendSegment(snd_una_ - 1, kTcpAck, {}, false);
      rto_.Backoff();
      ArmRto();
    }
    return;
  }
  if (++retries_ > kDataRetries) {
    Abort(ETIMEDOUT, false);
    return;
  }
  // RFC 5681 3.1 (equation 4) and RFC 6298 5.4-5.6: halve, restart from one
  // segment, back the timer off, resend the first unacknowledged segment;
  // the rest follows as ACKs open the window (go-back-N).
  ++stack_->stats_.tcp_timeouts;
  uint32_t mss = snd_mss_;
  ssthresh_ = SsthreshOnLoss(flight);
  cwnd_ = mss;
  in_recovery_ = false;
  loss_ = true;
  sacked_.clear();  // RFC 2018 8: the receiver may have dropped what it SACKed
  dupacks_ = 0;
  recover_ = snd_max_;
  snd_nxt_ = snd_una_;
  rto_.Backoff();
  RetransmitFirst();
  ArmRto();
}

void TcpEndpoint::MaybeSendWindowUpdate() {
  if (state_ != TcpState::kEstablished && state_ != TcpState::kFinWait1 &&
      state_ != TcpState::kFinWait2) {
    return;
  }
  uint32_t cur = SeqGt(rcv_adv_edge_, rcv_nxt_) ? rcv_adv_edge_ - rcv_nxt_ : 0;
  size_t max_wnd = size_t(65535) << rcv_wscale_;
  size_t space = std::min(RcvSpace(), max_wnd);
  // Announce a window that grew by a good share (receiver SWS avoidance,
  // RFC 9293 3.8.6.2.2: at least min(half the buffer, one MSS)) and at
  // least doubled, as tcp_cleanup_rbuf() does: while the peer still has
  // half the window, the ACKs of its data carry the rest. Before, every
  // read of a segment or more sent one: a 64 MiB receive sent 1,000 window
  // updates of 64 KiB into a 2.5 MiB window, each a host send that also
  // ran the peer's TCP (on a veth, in the sender's context).
  size_t step = std::min<size_t>(std::min(rcvbuf_cap_ / 2, max_wnd / 2), snd_mss_);
  if (space >= cur + step && space >= 2 * size_t(cur)) SendAck();
}

}  // namespace seedvisor::netstack
