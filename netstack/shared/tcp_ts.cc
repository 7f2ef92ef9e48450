// TCP timestamps (RFC 7323 3-5): the option on every segment of a
// connection that agreed to it, TS.Recent, RTT measurement from TSecr and
// PAWS, as Linux does them (tcp_paws_check(), tcp_paws_discard(),
// tcp_disordered_ack(), tcp_replace_ts_recent(), tcp_rtt_tsopt_us()).
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {
constexpr int64_t kMsNs = 1'000'000;
// TS.Recent this old no longer rejects anything (RFC 7323 5.5). Linux
// 6.8 and later take INT_MAX / USEC_PER_SEC seconds (TCP_PAWS_WRAP, for
// its microsecond clock option), no longer TCP_PAWS_24DAYS.
constexpr int64_t kPawsIdleNs = 2147LL * 1'000'000'000;
// How far a TSval may lag TS.Recent and pass (TCP_PAWS_WINDOW).
constexpr uint32_t kPawsWindow = 1;
// Peer TSval ticks per second assumed for the replay window of a
// reordered ACK: RFC 7323 allows 1 to 1000; some stacks run at 1200 Hz.
constexpr int64_t kPeerTsHz = 1200;
}  // namespace

uint32_t TcpEndpoint::TsNow() const { return uint32_t(stack_->Now() / kMsNs) + ts_offset_; }

void TcpEndpoint::InitTsOffset() {
  ts_offset_ = stack_->inst_.secrets.TsOffset(local_.ip, local_.port, remote_.ip, remote_.port);
}

void TcpEndpoint::PutTimestamps(TcpHeader* h) {
  // A SYN offers the option; everything after carries it once agreed.
  bool offer = (h->flags & kTcpSyn) && state_ == TcpState::kSynSent && stack_->tcp_timestamps_;
  if (!offer && !ts_ok_) return;
  h->ts = true;
  h->tsval = TsNow();
  h->tsecr = offer ? 0 : ts_recent_;
}

bool TcpEndpoint::PawsOk(const TcpHeader& h, uint32_t window) const {
  if (int32_t(ts_recent_ - h.tsval) <= int32_t(window)) return true;
  if (stack_->Now() - ts_recent_ns_ >= kPawsIdleNs) return true;
  // Some stacks send TSval 0 in the SYN and real values after it: a
  // TS.Recent of 0 says nothing about which TSvals are old.
  return ts_recent_ == 0;
}

bool TcpEndpoint::DisorderedAck(const TcpHeader& h, size_t payload_len) const {
  // A pure duplicate ACK at RCV.NXT that would not move the send window,
  // whose TSval lags by less than an RTO of the peer's clock: an ACK
  // overtaken by a later one, harmless to take.
  if (!(h.flags & kTcpAck) || (h.flags & (kTcpSyn | kTcpFin)) || payload_len != 0) return false;
  if (h.seq != rcv_nxt_ || h.ack != snd_una_) return false;
  uint32_t wnd = uint32_t(h.window) << snd_wscale_;
  bool may_update_wnd = SeqGt(h.seq, snd_wl1_) || (h.seq == snd_wl1_ && (wnd > snd_wnd_ || !wnd));
  if (may_update_wnd) return false;
  int64_t replay = rto_.rto_ns() * kPeerTsHz / 1'000'000'000;
  return int32_t(ts_recent_ - h.tsval) <= replay;
}

bool TcpEndpoint::PawsReject(const TcpHeader& h, size_t payload_len) const {
  if (!ts_ok_ || !h.ts || (h.flags & kTcpRst)) return false;
  // A listener's child still in SYN-RECEIVED is checked as Linux checks a
  // request (tcp_check_req()): no window, no reordered ACKs.
  if (passive_ && state_ == TcpState::kSynRcvd) return !PawsOk(h, 0);
  return !PawsOk(h, kPawsWindow) && !DisorderedAck(h, payload_len);
}

void TcpEndpoint::UpdateTsRecent(const TcpHeader& h) {
  if (!ts_ok_ || !h.ts || SeqGt(h.seq, last_ack_sent_)) return;
  if (PawsOk(h, 0)) {
    ts_recent_ = h.tsval;
    ts_recent_ns_ = stack_->Now();
  }
}

void TcpEndpoint::SampleRttFromTsecr(const TcpHeader& h) {
  if (!ts_ok_ || !h.ts || h.tsecr == 0) return;
  int32_t ticks = int32_t(TsNow() - h.tsecr);
  // A TSecr from the future or from before a day ago says nothing.
  if (ticks < 0 || ticks > 86'400'000) return;
  SampleRtt(int64_t(std::max(ticks, 1)) * kMsNs);  // at least one tick
}

}  // namespace seedvisor::netstack
