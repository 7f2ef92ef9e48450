// TCP selective acknowledgments: the blocks a receiver reports (RFC 2018)
// and the sender's scoreboard with RFC 6675's loss recovery.
#include <algorithm>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {
constexpr uint32_t kDupThresh = 3;
}  // namespace

void TcpEndpoint::AddOooRange(uint64_t a, uint64_t b) {
  auto it = ooo_ranges_.upper_bound(a);
  if (it != ooo_ranges_.begin() && std::prev(it)->second >= a) {
    --it;
    a = it->first;
    b = std::max(b, it->second);
    it = ooo_ranges_.erase(it);
  }
  // Each range is merged away once: amortized O(log n) per segment.
  for (; it != ooo_ranges_.end() && it->first <= b; it = ooo_ranges_.erase(it)) {
    ++stack_->stats_.tcp_sack_scan;
    b = std::max(b, it->second);
  }
  ooo_ranges_.emplace(a, b);
}

void TcpEndpoint::NoteDuplicate(uint32_t seq, uint32_t end) {
  if (!sack_ok_ || !SeqLt(seq, end)) return;
  dsack_ = TcpSackBlock{seq, end};
  ++stack_->stats_.tcp_dsack_sent;
}

bool TcpEndpoint::IsDsack(const TcpHeader& h) {
  if (h.sack_count == 0) return false;
  const TcpSackBlock& b = h.sack[0];
  if (SeqLt(b.left, h.ack)) return true;
  return h.sack_count > 1 && SeqGeq(b.left, h.sack[1].left) && SeqLeq(b.right, h.sack[1].right);
}

void TcpEndpoint::FillSackBlocks(TcpHeader* h) const {
  h->sack_count = 0;
  if (dsack_) h->sack[h->sack_count++] = *dsack_;
  if (ooo_ranges_.empty()) return;
  auto seq = [&](uint64_t off) { return rcv_nxt_ + uint32_t(off - rcv_off_); };
  // The range with the latest segment, else the highest.
  auto first = ooo_ranges_.upper_bound(last_ooo_off_);
  if (first != ooo_ranges_.begin() && last_ooo_off_ < std::prev(first)->second) {
    --first;
  } else {
    first = std::prev(ooo_ranges_.end());
  }
  h->sack[h->sack_count++] = {seq(first->first), seq(first->second)};
  for (auto it = ooo_ranges_.rbegin();
       it != ooo_ranges_.rend() && h->sack_count < kTcpMaxSackBlocks; ++it) {
    ++stack_->stats_.tcp_sack_scan;
    if (it->first != first->first) h->sack[h->sack_count++] = {seq(it->first), seq(it->second)};
  }
}

// The scoreboard against a hostile peer (the class of CVE-2019-11477 and
// -11478, which Linux closed by refusing to cut its queue below a minimum
// and by bounding the work): sacked_ stays sorted, disjoint and at most
// kMaxSackRanges long; an ACK's blocks are merged in by binary search, and
// one recovery pass walks the ranges once. What an ACK costs is
// O(ranges + segments it releases), never O(bytes), and every range
// visited is counted in Stats::tcp_sack_scan.

bool TcpEndpoint::AddSacked(TcpSackBlock b) {
  uint32_t base = snd_una_;
  uint64_t* scan = &stack_->stats_.tcp_sack_scan;
  uint32_t l = b.left - base, r = b.right - base;  // offsets from snd_una_
  // The first range that ends at or after l (touching ranges merge).
  auto first = std::partition_point(sacked_.begin(), sacked_.end(), [&](const TcpSackBlock& x) {
    ++*scan;
    return x.right - base < l;
  });
  auto last = first;
  uint32_t covered = 0;
  for (; last != sacked_.end() && last->left - base <= r; ++last) {
    ++*scan;
    covered += last->right - last->left;
  }
  if (first == last) {  // a new range
    if (sacked_.size() >= kMaxSackRanges) {
      // Full: keep the lowest ranges, the nearest retransmissions.
      if (first == sacked_.end()) return false;
      size_t at = first - sacked_.begin();
      sacked_.pop_back();
      first = sacked_.begin() + at;
    }
    sacked_.insert(first, b);
    return true;
  }
  TcpSackBlock merged{first->left - base < l ? first->left : b.left,
                      (last - 1)->right - base > r ? (last - 1)->right : b.right};
  *first = merged;
  sacked_.erase(first + 1, last);
  return merged.right - merged.left > covered;
}

bool TcpEndpoint::TakeSack(const TcpHeader& h) {
  bool news = false;
  size_t k = 0;
  if (IsDsack(h)) {  // a duplicate the peer got: nothing new SACKed (RFC 2883 4.1)
    ++dsack_dups_;
    ++stack_->stats_.tcp_dsack_received;
    k = 1;
  }
  for (; k < h.sack_count; ++k) {
    TcpSackBlock b = h.sack[k];
    // Only blocks inside what is outstanding; a D-SACK (below the ACK) or
    // a block past what we sent is ignored.
    if (!SeqLt(b.left, b.right) || SeqLt(b.left, snd_una_) || SeqGt(b.right, snd_max_)) continue;
    news |= AddSacked(b);
  }
  return news;
}

void TcpEndpoint::TrimSacked() {
  // Sorted: what snd_una_ passed is at the front.
  auto keep = sacked_.begin();
  while (keep != sacked_.end() && SeqLeq(keep->right, snd_una_)) {
    ++stack_->stats_.tcp_sack_scan;
    ++keep;
  }
  sacked_.erase(sacked_.begin(), keep);
  if (!sacked_.empty() && SeqLt(sacked_.front().left, snd_una_)) sacked_.front().left = snd_una_;
}

uint32_t TcpEndpoint::LostBoundary() const {
  uint32_t bytes = 0, blocks = 0;
  for (auto it = sacked_.rbegin(); it != sacked_.rend(); ++it) {
    ++stack_->stats_.tcp_sack_scan;
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
    ++stack_->stats_.tcp_sack_scan;
    hole(a, b.left);
    a = b.right;
  }
  hole(a, snd_max_);
  return pipe;
}

uint32_t TcpEndpoint::RetransmitRange(uint32_t seq, uint32_t n) {
  size_t off = seq - snd_una_;
  size_t data = off < sndq_.size() ? std::min<size_t>(n, sndq_.size() - off) : 0;
  // Only what was sent before: the queue also holds bytes not yet sent
  // (Nagle, the window), and a "retransmission" of those would move
  // neither snd_nxt nor snd_max, so the peer's ACK of them would be
  // dropped as acking unsent data.
  data = std::min<size_t>(data, SeqGt(snd_max_, seq) ? snd_max_ - seq : 0);
  // The FIN rides on the last byte if the range reaches it.
  bool fin = fin_sent_ && off + data == sndq_.size() && SeqGt(snd_max_, fin_seq_) &&
             SeqGt(seq + n, fin_seq_);
  if (data == 0 && !fin) return 0;
  SendSegment(seq, kTcpAck | kTcpPsh | (fin ? kTcpFin : 0), SendQueueBytes(off, data), false);
  ++stack_->stats_.tcp_retransmits;
  CountRetransmit(data);
  rtt_timing_ = false;  // Karn
  rtt_karn_ = true;
  return uint32_t(data) + (fin ? 1 : 0);
}

void TcpEndpoint::EnterSackRecovery() {
  // RFC 6675 5 step (4): RecoveryPoint = HighData, cwnd = ssthresh (Reno:
  // FlightSize / 2; CUBIC: 0.7 cwnd), and the first segment goes out at
  // once, whole.
  ++stack_->stats_.tcp_fast_retransmits;
  ++stack_->stats_.tcp_sack_recoveries;
  ssthresh_ = SsthreshOnLoss(snd_max_ - snd_una_);
  cwnd_ = ssthresh_;
  recover_ = snd_max_;
  in_recovery_ = true;
  sack_recovery_ = true;
  uint32_t n = RetransmitRange(snd_una_, snd_mss_);
  high_rxt_ = snd_una_ + std::max<uint32_t>(n, 1);
  ArmRto();
}

void TcpEndpoint::SackRecoverySend() {
  uint32_t mss = snd_mss_;
  if (SeqLt(high_rxt_, snd_una_)) high_rxt_ = snd_una_;
  uint32_t lost = LostBoundary();
  uint32_t pipe = Pipe(lost);
  uint64_t* scan = &stack_->stats_.tcp_sack_scan;
  // The first range that ends above HighRxt; HighRxt only grows below, so
  // the walk goes forward only.
  size_t i = std::partition_point(sacked_.begin(), sacked_.end(),
                                  [&](const TcpSackBlock& x) {
                                    ++*scan;
                                    return SeqLeq(x.right, high_rxt_);
                                  }) -
             sacked_.begin();
  // RFC 6675's pipe rule counts bytes, and a whole segment resent over a
  // hole cut small counts only the hole's bytes: also at most a
  // congestion window of segments per call (per ACK).
  uint32_t budget = std::max<uint32_t>(cwnd_ / mss, 1);
  for (uint32_t sent = 0; sent < budget && pipe + mss <= cwnd_; ++sent) {
    // NextUnsacked(HighRxt): past a range that covers it.
    uint32_t s = high_rxt_;
    if (i < sacked_.size() && SeqLeq(sacked_[i].left, s)) {
      ++*scan;
      s = sacked_[i++].right;
    }
    if (SeqLt(s, lost)) {
      // Rule 1: a lost hole not yet resent, as a whole segment from the
      // hole's start whatever the blocks above cut (tcp_match_skb_to_sack()
      // too never splits below an MSS), so that tiny holes cost one
      // segment per MSS of sequence space, not one per hole.
      uint32_t n = RetransmitRange(s, mss);
      if (n == 0) return;
      ++stack_->stats_.tcp_sack_retransmits;
      // Its unSACKed bytes are in flight again.
      uint32_t end = s + n, a = s;
      for (; i < sacked_.size() && SeqLt(sacked_[i].left, end); ++i) {
        ++*scan;
        pipe += sacked_[i].left - a;
        a = sacked_[i].right;
        if (SeqGt(a, end)) break;  // it reaches past: the next turn starts in it
      }
      if (SeqLt(a, end)) pipe += end - a;
      high_rxt_ = end;
      continue;
    }
    // Rule 2: new data, within the receiver's window.
    uint32_t wnd_end = snd_una_ + snd_wnd_;
    uint32_t room = SeqGt(wnd_end, snd_nxt_) ? wnd_end - snd_nxt_ : 0;
    uint32_t before = snd_nxt_;
    if (!SendNew(std::min(cwnd_ - pipe, room))) return;
    pipe += snd_nxt_ - before;
  }
}

}  // namespace seedvisor::netstack
