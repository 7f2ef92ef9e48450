// TCP segment arrival (RFC 9293 3.10.7), with RFC 5961's blind-attack
// checks for RST and SYN, and NewReno's ACK processing (RFC 6582). The
// handshake's segments are in tcp_handshake.cc.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {

bool TcpEndpoint::AcceptableSeq(const TcpHeader& h, size_t seg_len) const {
  uint32_t wnd = SeqGt(rcv_adv_edge_, rcv_nxt_) ? rcv_adv_edge_ - rcv_nxt_ : 0;
  // The segment that starts exactly at RCV.NXT is always looked at: a zero
  // window must still let ACKs, RSTs and FINs in (RFC 9293 3.10.7.4).
  if (h.seq == rcv_nxt_) return true;
  if (seg_len == 0) return wnd > 0 && SeqLeq(rcv_nxt_, h.seq) && SeqLt(h.seq, rcv_nxt_ + wnd);
  if (wnd == 0) return false;
  uint32_t last = h.seq + uint32_t(seg_len) - 1;
  return (SeqLeq(rcv_nxt_, h.seq) && SeqLt(h.seq, rcv_nxt_ + wnd)) ||
         (SeqLeq(rcv_nxt_, last) && SeqLt(last, rcv_nxt_ + wnd));
}

void TcpEndpoint::HandleRst(const TcpHeader& h) {
  // RFC 5961 3.2: only an exact match resets; an in-window one gets a
  // challenge ACK, which a genuine peer answers with the right sequence.
  if (h.seq != rcv_nxt_) {
    SendAck();
    return;
  }
  switch (state_) {
    case TcpState::kSynRcvd:
      if (passive_) {
        Finish();  // a passive open the peer gave up: silently gone
      } else {
        Abort(ECONNREFUSED, false);
      }
      return;
    case TcpState::kCloseWait:
      Abort(EPIPE, false);  // tcp_reset()
      return;
    case TcpState::kClosing:
    case TcpState::kLastAck:
    case TcpState::kTimeWait:
      Finish();
      return;
    default:
      Abort(ECONNRESET, false);
  }
}

void TcpEndpoint::HandleSegment(const TcpHeader& h, std::string_view payload) {
  auto self = shared_from_this();
  if (state_ == TcpState::kSynSent) {
    CountIn(payload.size());
    HandleSynSent(h);
    return;
  }
  if (state_ == TcpState::kClosed || state_ == TcpState::kListen) return;
  CountIn(payload.size());
  bool syn = h.flags & kTcpSyn, fin = h.flags & kTcpFin;
  // Our SYN-ACK was lost: the peer sent its SYN again.
  if (state_ == TcpState::kSynRcvd && syn && !(h.flags & kTcpAck) && h.seq == irs_) {
    SendSyn();
    return;
  }
  if (PawsReject(h, payload.size())) {  // RFC 7323 5.3 R1: an old duplicate; say where we are
    ++stack_->stats_.tcp_paws_drops;
    SendAck();
    return;
  }
  size_t seg_len = payload.size() + (syn ? 1 : 0) + (fin ? 1 : 0);
  if (!AcceptableSeq(h, seg_len)) {
    ++stack_->stats_.tcp_bad_seq;
    // Data we already have: a duplicate, reported as D-SACK up to RCV.NXT
    // (tcp_send_dupack()).
    if (!payload.empty() && SeqLt(h.seq, rcv_nxt_)) {
      uint32_t end = h.seq + uint32_t(payload.size());
      NoteDuplicate(h.seq, SeqLt(end, rcv_nxt_) ? end : rcv_nxt_);
    }
    if (!(h.flags & kTcpRst)) SendAck();
    return;
  }
  if (h.flags & kTcpRst) {
    HandleRst(h);
    return;
  }
  UpdateTsRecent(h);
  // The peer is alive (tcp_ack(): rcv_tstamp, icsk_probes_out = 0).
  last_rcv_ns_ = stack_->Now();
  keepalive_probes_ = 0;
  if (syn) {  // RFC 5961 4: a SYN on a synchronized connection
    SendAck();
    return;
  }
  if (!(h.flags & kTcpAck)) return;
  if (state_ == TcpState::kSynRcvd) {
    if (!SeqGt(h.ack, snd_una_) || SeqGt(h.ack, snd_max_)) {
      SendSegment(h.ack, kTcpRst, {}, false);
      ++stack_->stats_.tcp_rst_sent;
      return;
    }
    EnterEstablishedFromSynRcvd();
    if (state_ != TcpState::kEstablished) return;
  }
  HandleAck(h, payload.size());
  if (state_ == TcpState::kClosed) return;
  if (!payload.empty() || fin) {
    switch (state_) {
      case TcpState::kEstablished:
      case TcpState::kFinWait1:
      case TcpState::kFinWait2:
        if (user_closed_ && !payload.empty()) {
          // tcp_rcv_state_process(): data for a socket the user closed.
          Abort(0, true);
          return;
        }
        HandleData(h.seq, payload, fin);
        break;
      case TcpState::kTimeWait:
        if (fin) stack_->ArmTimer(&wait_timer_, stack_->Now() + kTimeWaitNs);
        [[fallthrough]];
      default:  // a retransmitted FIN (or data past the peer's FIN)
        SendAck();
    }
  }
  Output();
}

void TcpEndpoint::HandleAck(const TcpHeader& h, size_t payload_len) {
  if (SeqGt(h.ack, snd_max_)) {  // acknowledges what we never sent
    SendAck();
    return;
  }
  uint32_t mss = snd_mss_;
  bool window_changed = false;
  if (SeqLt(snd_wl1_, h.seq) || (snd_wl1_ == h.seq && SeqLeq(snd_wl2_, h.ack))) {
    uint32_t wnd = uint32_t(h.window) << snd_wscale_;  // never a SYN here (RFC 7323 2.2)
    window_changed = snd_wnd_ != wnd;
    snd_wnd_ = wnd;
    snd_wl1_ = h.seq;
    snd_wl2_ = h.ack;
  }
  uint32_t flight = snd_max_ - snd_una_;
  bool sack_news = sack_ok_ && h.sack_count > 0 && TakeSack(h);
  if (SeqGt(h.ack, snd_una_)) {
    uint32_t acked = h.ack - snd_una_;
    if (rtt_timing_ && SeqGeq(h.ack, rtt_seq_)) {  // Karn: only never-resent data is timed
      SampleRtt(stack_->Now() - rtt_start_ns_);
      rtt_timing_ = false;
    } else if (rtt_karn_) {
      SampleRttFromTsecr(h);
    }
    sndq_.Consume(std::min<size_t>(acked, sndq_.size()));
    // A passive connection starts with its SYN-ACK acknowledged, as
    // tcp_create_openreq_child() makes it: TCP_INFO counts from there
    // (once: snd_una_ comes back to iss_ after every 4 GiB).
    bytes_acked_ += acked - (syn_ack_uncounted_ ? 1 : 0);
    syn_ack_uncounted_ = false;
    snd_una_ = h.ack;
    if (loss_ && SeqGeq(snd_una_, recover_)) loss_ = false;  // the RTO's losses are repaired
    if (SeqLt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
    TrimSacked();
    if (in_recovery_ && sack_recovery_) {
      // RFC 6675: recovery ends at RecoveryPoint; a partial ACK only
      // frees pipe, SackRecoverySend() (from Output()) fills it.
      if (SeqGeq(h.ack, recover_)) {
        in_recovery_ = false;
        cwnd_ = ssthresh_;
      }
    } else if (in_recovery_) {
      if (SeqGeq(h.ack, recover_)) {  // full ACK: leave recovery (RFC 6582 3.2 step 3)
        in_recovery_ = false;
        cwnd_ = std::min(ssthresh_, std::max(flight - acked, mss) + mss);
      } else {  // partial ACK: the next hole is lost too
        RetransmitFirst();
        cwnd_ = cwnd_ > acked ? cwnd_ - acked : 0;
        cwnd_ += mss;
      }
    } else if (cwnd_ < ssthresh_) {
      // Slow start (RFC 5681 3.1) by what the ACK covers, up to ssthresh,
      // as tcp_slow_start() counts segments: a peer that acknowledges a
      // TSO frame, or every other segment, with one ACK still doubles the
      // window each round trip (RFC 3465's L = 1 segment would not).
      cwnd_ = uint32_t(std::min<uint64_t>(uint64_t(cwnd_) + acked, ssthresh_));
    } else {
      CongestionAvoidance(acked);
    }
    if (!in_recovery_) dupacks_ = 0;
    // tcp_sndbuf_expand(): room for two congestion windows, so that the
    // window never waits for the user.
    if (!sndbuf_locked_) sndbuf_cap_ = std::max(sndbuf_cap_, std::min(2 * size_t(cwnd_), kWmemMax));
    retries_ = 0;
    rto_.ResetBackoff();
    if (snd_una_ == snd_max_) {
      stack_->wheel_.Cancel(&rto_timer_);
    } else {
      ArmRto();  // RFC 6298 5.3
    }
    NotifyLocked();
  } else if (h.ack == snd_una_ && flight > 0 &&
             ((sack_ok_ && sack_news) ||
              ((!sack_ok_ || h.sack_count == 0) && payload_len == 0 &&
               !(h.flags & kTcpFin) && !window_changed))) {
    // A duplicate ACK: one that SACKs new data (RFC 6675 2), or one
    // without blocks as RFC 5681 2 defines it, also on a SACK connection
    // (a peer or middlebox that never sends blocks must not leave the
    // loss to the RTO).
    ++dupacks_;
    if (in_recovery_ && sack_recovery_) {
      // The scoreboard's pipe says what goes (SackRecoverySend()).
    } else if (in_recovery_) {
      cwnd_ += mss;  // each further duplicate: a segment left the network
    } else if (dupacks_ == 3 && SeqGeq(h.ack, recover_) && sacked_.empty()) {
      // Fast retransmit (RFC 5681 3.2, RFC 6582 3.2 step 2); with SACK
      // and blocks on the scoreboard RFC 6675's recovery starts below.
      ++stack_->stats_.tcp_fast_retransmits;
      ssthresh_ = SsthreshOnLoss(flight);
      recover_ = snd_max_;
      in_recovery_ = true;
      sack_recovery_ = false;
      RetransmitFirst();
      cwnd_ = ssthresh_ + 3 * mss;
    }
  } else if (window_changed) {
    NotifyLocked();
  }
  // RFC 6675 5: DupThresh duplicates, or the scoreboard says the first
  // unacknowledged segment is lost; not again before RecoveryPoint.
  if (sack_ok_ && !in_recovery_ && snd_max_ != snd_una_ && SeqGeq(snd_una_, recover_) &&
      (dupacks_ >= 3 || SeqGt(LostBoundary(), snd_una_))) {
    EnterSackRecovery();
  }
  if (FinAcked()) {
    switch (state_) {
      case TcpState::kFinWait1:
        state_ = TcpState::kFinWait2;
        if (user_closed_) stack_->ArmTimer(&wait_timer_, stack_->Now() + kFinWait2Ns);
        NotifyLocked();
        break;
      case TcpState::kClosing:
        EnterTimeWait();
        break;
      case TcpState::kLastAck:
        Finish();
        break;
      default:
        break;
    }
  }
}

void TcpEndpoint::HandleData(uint32_t seq, std::string_view payload, bool fin) {
  if (fin_received_) {
    SendAck();
    return;
  }
  uint64_t window = SeqGt(rcv_adv_edge_, rcv_nxt_) ? rcv_adv_edge_ - rcv_nxt_ : 0;
  int64_t rel = int32_t(seq - rcv_nxt_);
  // Trim what we already have, then what lies past the window.
  if (rel < 0) {
    uint64_t cut = uint64_t(-rel);
    NoteDuplicate(seq, seq + uint32_t(std::min<uint64_t>(cut, payload.size())));
    if (cut >= payload.size()) {
      if (cut > payload.size()) fin = false;  // that FIN came before RCV.NXT: a duplicate
      payload = {};
    } else {
      payload.remove_prefix(cut);
    }
    rel = 0;
  }
  uint64_t off = rcv_off_ + uint64_t(rel);
  uint64_t win_end = rcv_off_ + window;
  if (off + payload.size() > win_end) {
    payload = payload.substr(0, off < win_end ? win_end - off : 0);
    fin = false;
  }
  if (!payload.empty()) {
    if (off == rcv_off_) {
      rcvq_.Append(payload);
      rcv_off_ += payload.size();
      rcv_nxt_ += uint32_t(payload.size());
      bytes_received_ += payload.size();
      while (!ooo_.empty() && ooo_.begin()->first <= rcv_off_) {
        auto it = ooo_.begin();
        uint64_t end = it->first + it->second.size();
        if (end > rcv_off_) {
          std::string_view tail(it->second);
          tail.remove_prefix(rcv_off_ - it->first);
          rcvq_.Append(tail);
          rcv_nxt_ += uint32_t(tail.size());
          bytes_received_ += tail.size();
          rcv_off_ = end;
        }
        ooo_bytes_ -= it->second.size();
        ooo_.erase(it);
      }
      // Every range that starts at or below RCV.NXT was taken whole.
      while (!ooo_ranges_.empty() && ooo_ranges_.begin()->first <= rcv_off_) {
        ooo_ranges_.erase(ooo_ranges_.begin());
      }
    } else if (ooo_.size() >= kMaxOooSegments && !ooo_.count(off)) {
      ++stack_->stats_.tcp_ooo_overflow;
    } else if (ooo_bytes_ + payload.size() <= rcvbuf_cap_) {
      // Out-of-order data we hold already: its start is a duplicate
      // (tcp_data_queue_ofo()).
      if (auto r = ooo_ranges_.upper_bound(off); r != ooo_ranges_.begin() &&
                                                 std::prev(r)->second > off) {
        uint64_t end = std::min<uint64_t>(std::prev(r)->second, off + payload.size());
        NoteDuplicate(rcv_nxt_ + uint32_t(off - rcv_off_), rcv_nxt_ + uint32_t(end - rcv_off_));
      }
      ++stack_->stats_.tcp_ooo_segments;
      ++rcv_ooopack_;
      last_ooo_off_ = off;
      auto [it, inserted] = ooo_.try_emplace(off, payload);
      AddOooRange(off, off + payload.size());
      if (inserted) {
        ooo_bytes_ += payload.size();
      } else if (it->second.size() < payload.size()) {
        ooo_bytes_ += payload.size() - it->second.size();
        it->second.assign(payload);
      }
    }
    NotifyLocked();
  }
  if (fin) ooo_fin_off_ = off + payload.size();
  if (ooo_fin_off_ && *ooo_fin_off_ == rcv_off_) {
    ooo_fin_off_.reset();
    ReceiveFin();
    return;  // ReceiveFin acknowledged
  }
  SendAck();  // at once; out of order, this is the duplicate ACK fast retransmit needs
}

void TcpEndpoint::ReceiveFin() {
  fin_received_ = true;
  ++rcv_nxt_;
  ++bytes_received_;  // tcp_rcv_nxt_update() to the FIN's end
  switch (state_) {
    case TcpState::kEstablished:
      state_ = TcpState::kCloseWait;
      break;
    case TcpState::kFinWait1:
      if (FinAcked()) {
        EnterTimeWait();
      } else {
        state_ = TcpState::kClosing;
      }
      break;
    case TcpState::kFinWait2:
      EnterTimeWait();
      break;
    default:
      break;
  }
  SendAck();
  NotifyLocked();
}

void TcpEndpoint::EnterTimeWait() {
  state_ = TcpState::kTimeWait;
  stack_->wheel_.Cancel(&rto_timer_);
  stack_->ArmTimer(&wait_timer_, stack_->Now() + kTimeWaitNs);
  NotifyLocked();
}

}  // namespace seedvisor::netstack
