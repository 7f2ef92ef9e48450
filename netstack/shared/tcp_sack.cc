// TCP selective acknowledgments: the blocks a receiver reports (RFC 2018)
// and the sender's scoreboard with RFC 6675's loss recovery.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {
constexpr uint32_t kDupThresh = 3;
}  // namespace

void TcpEndpoint::FillSackBlocks(TcpHeader* h) const {
  // The out-of-order queue as contiguous ranges of stream offsets.
  std::vector<std::pair<uint64_t, uint64_t>> rs;
  for (const auto& [off, d] : ooo_) {
    uint64_t end = off + d.size();
    if (!rs.empty() && off <= rs.back().second) {
      rs.back().second = std::max(rs.back().second, end);
    } else {
      rs.emplace_back(off, end);
    }
  }
  if (rs.empty()) return;
  auto seq = [&](uint64_t off) { return rcv_nxt_ + uint32_t(off - rcv_off_); };
  size_t first = rs.size() - 1;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].first <= last_ooo_off_ && last_ooo_off_ < rs[i].second) first = i;
  }
  h->sack_count = 0;
  h->sack[h->sack_count++] = {seq(rs[first].first), seq(rs[first].second)};
  for (size_t i = rs.size(); i-- > 0 && h->sack_count < kTcpMaxSackBlocks;) {
    if (i != first) h->sack[h->sack_count++] = {seq(rs[i].first), seq(rs[i].second)};
  }
}

bool TcpEndpoint::TakeSack(const TcpHeader& h) {
  auto bytes = [&] {
    uint64_t n = 0;
    for (const TcpSackBlock& b : sacked_) n += b.right - b.left;
    return n;
  };
  uint64_t before = bytes();
  bool added = false;
  for (size_t k = 0; k < h.sack_count; ++k) {
    TcpSackBlock b = h.sack[k];
    // Only blocks inside what is outstanding; a D-SACK (below the ACK) or
    // a block past what we sent is ignored.
    if (!SeqLt(b.left, b.right) || SeqLt(b.left, snd_una_) || SeqGt(b.right, snd_max_)) continue;
    sacked_.push_back(b);
    added = true;
  }
  if (!added) return false;
  uint32_t base = snd_una_;
  std::sort(sacked_.begin(), sacked_.end(), [base](const TcpSackBlock& x, const TcpSackBlock& y) {
    return x.left - base < y.left - base;
  });
  std::vector<TcpSackBlock> merged;
  for (const TcpSackBlock& b : sacked_) {
    if (!merged.empty() && SeqLeq(b.left, merged.back().right)) {
      if (SeqGt(b.right, merged.back().right)) merged.back().right = b.right;
    } else {
      merged.push_back(b);
    }
  }
  if (merged.size() > kMaxSackRanges) merged.resize(kMaxSackRanges);
  sacked_ = std::move(merged);
  return bytes() > before;
}

void TcpEndpoint::TrimSacked() {
  size_t keep = 0;
  for (TcpSackBlock b : sacked_) {
    if (SeqLeq(b.right, snd_una_)) continue;
    if (SeqLt(b.left, snd_una_)) b.left = snd_una_;
    sacked_[keep++] = b;
  }
  sacked_.resize(keep);
}

uint32_t TcpEndpoint::LostBoundary() const {
  uint32_t bytes = 0, blocks = 0;
  for (auto it = sacked_.rbegin(); it != sacked_.rend(); ++it) {
    bytes += it->right - it->left;
    if (++blocks >= kDupThresh || bytes > (kDupThresh - 1) * snd_mss_) return it->left;
  }
  return snd_una_;
}

uint32_t TcpEndpoint::Pipe(uint32_t lost) const {
  uint32_t pipe = 0;
  auto hole = [&](uint32_t a, uint32_t b) {
    if (!SeqLt(a, b)) return;
    uint32_t not_lost = SeqGt(lost, a) ? lost : a;
    if (SeqLt(not_lost, b)) pipe += b - not_lost;  // presumed still in flight
    uint32_t resent = SeqLt(high_rxt_, b) ? high_rxt_ : b;
    if (SeqGt(resent, a)) pipe += resent - a;  // its retransmission is
  };
  uint32_t a = snd_una_;
  for (const TcpSackBlock& b : sacked_) {
    hole(a, b.left);
    a = b.right;
  }
  hole(a, snd_max_);
  return pipe;
}

uint32_t TcpEndpoint::NextUnsacked(uint32_t seq) const {
  for (const TcpSackBlock& b : sacked_) {
    if (SeqLeq(b.left, seq) && SeqLt(seq, b.right)) seq = b.right;
  }
  return seq;
}

uint32_t TcpEndpoint::HoleEnd(uint32_t seq) const {
  for (const TcpSackBlock& b : sacked_) {
    if (SeqGt(b.left, seq)) return b.left;
  }
  return snd_max_;
}

uint32_t TcpEndpoint::RetransmitRange(uint32_t seq, uint32_t n) {
  size_t off = seq - snd_una_;
  size_t data = off < sndq_.size() ? std::min<size_t>(n, sndq_.size() - off) : 0;
  // The FIN rides on the last byte if the range reaches it.
  bool fin = fin_sent_ && off + data == sndq_.size() && SeqGt(snd_max_, fin_seq_) &&
             SeqGt(seq + n, fin_seq_);
  if (data == 0 && !fin) return 0;
  SendSegment(seq, kTcpAck | kTcpPsh | (fin ? kTcpFin : 0), sndq_.Read(off, data), false);
  ++stack_->stats_.tcp_retransmits;
  rtt_timing_ = false;  // Karn
  return uint32_t(data) + (fin ? 1 : 0);
}

void TcpEndpoint::EnterSackRecovery() {
  // RFC 6675 5 step (4): RecoveryPoint = HighData, cwnd = ssthresh (Reno:
  // FlightSize / 2; CUBIC: 0.7 cwnd), and the first hole goes out at once.
  ++stack_->stats_.tcp_fast_retransmits;
  ++stack_->stats_.tcp_sack_recoveries;
  uint32_t mss = snd_mss_;
  ssthresh_ = SsthreshOnLoss(snd_max_ - snd_una_);
  cwnd_ = ssthresh_;
  recover_ = snd_max_;
  in_recovery_ = true;
  high_rxt_ = snd_una_;
  uint32_t n = RetransmitRange(snd_una_, std::min(mss, HoleEnd(snd_una_) - snd_una_));
  high_rxt_ = snd_una_ + std::max<uint32_t>(n, 1);
  ArmRto();
}

void TcpEndpoint::SackRecoverySend() {
  uint32_t mss = snd_mss_;
  uint32_t lost = LostBoundary();
  if (SeqLt(high_rxt_, snd_una_)) high_rxt_ = snd_una_;
  // Bounded: every turn sends a segment or moves HighRxt forward.
  for (int turn = 0; turn < 4096; ++turn) {
    uint32_t pipe = Pipe(lost);
    if (pipe + mss > cwnd_) return;
    uint32_t s = NextUnsacked(high_rxt_);
    if (SeqLt(s, lost)) {  // rule 1: a lost hole not yet resent
      uint32_t n = std::min(mss, HoleEnd(s) - s);
      RetransmitRange(s, n);
      ++stack_->stats_.tcp_sack_retransmits;
      high_rxt_ = s + n;
      continue;
    }
    // Rule 2: new data, within the receiver's window.
    uint32_t wnd_end = snd_una_ + snd_wnd_;
    uint32_t room = SeqGt(wnd_end, snd_nxt_) ? wnd_end - snd_nxt_ : 0;
    if (!SendNew(std::min(cwnd_ - pipe, room))) return;
  }
}

}  // namespace seedvisor::netstack
