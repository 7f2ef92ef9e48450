// TCP timestamps (RFC 7323 3-5): the option on every segment of a
// connection that agreed to it, TS.Recent, RTT measurement from TSecr and
// PAWS, as Linux does them (tcp_paws_discard(), tcp_replace_ts_recent(),
// tcp_rtt_tsopt_us()).
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {
constexpr int64_t kMsNs = 1'000'000;
// TS.Recent older than this is no longer valid (RFC 7323 5.5; Linux's
// TCP_PAWS_24DAYS).
constexpr int64_t kPawsIdleNs = 24LL * 24 * 3600 * 1'000'000'000;
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

bool TcpEndpoint::PawsReject(const TcpHeader& h) const {
  if (!ts_ok_ || !h.ts || (h.flags & kTcpRst)) return false;
  return SeqLt(h.tsval, ts_recent_) && stack_->Now() - ts_recent_ns_ <= kPawsIdleNs;
}

void TcpEndpoint::UpdateTsRecent(const TcpHeader& h) {
  if (!ts_ok_ || !h.ts || SeqGt(h.seq, last_ack_sent_)) return;
  if (SeqGeq(h.tsval, ts_recent_) || stack_->Now() - ts_recent_ns_ > kPawsIdleNs) {
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
