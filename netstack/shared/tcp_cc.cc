// TCP congestion control after a loss and in congestion avoidance: Reno
// (RFC 5681) and CUBIC (RFC 8312, with Linux's constants: beta 0.7, C 0.4,
// fast convergence; no HyStart). Slow start and the recoveries themselves
// (NewReno, SACK) are the same for both and live in tcp_input.cc and
// tcp_sack.cc.
#include <algorithm>
#include <cmath>

#include "netstack/shared/tcp.h"
#include "netstack/stack.h"

namespace seedvisor::netstack {
namespace {

constexpr double kCubicBeta = 0.7;  // RFC 8312 4.5 (Linux: 717/1024)
constexpr double kCubicC = 0.4;     // RFC 8312 5

}  // namespace

Status TcpEndpoint::SetCongestionControl(std::string_view name) {
  Cc cc;
  if (name == "cubic") {
    cc = Cc::kCubic;
  } else if (name == "reno") {
    cc = Cc::kReno;
  } else {
    return Errno(ENOENT);
  }
  Stack::Locked l(stack_);
  if (cc != cc_) {
    // tcp_reinit_congestion_control(): the new one starts afresh.
    cc_ = cc;
    cubic_w_max_ = cubic_w_last_max_ = cubic_k_ = cubic_w_est_ = cubic_frac_ = 0;
    cubic_epoch_ns_ = -1;
    reno_acked_ = 0;
  }
  return {};
}

std::string TcpEndpoint::congestion_control() {
  Stack::Locked l(stack_);
  return cc_ == Cc::kCubic ? "cubic" : "reno";
}

uint32_t TcpEndpoint::SsthreshOnLoss(uint32_t flight) {
  uint32_t mss = snd_mss_;
  reno_acked_ = 0;
  if (cc_ == Cc::kReno) return std::max(flight / 2, 2 * mss);  // RFC 5681 (4)
  // RFC 8312 4.5 and 4.6 (bictcp_recalc_ssthresh()): remember where the
  // loss came; a window that stopped short of the last W_max gives way
  // (fast convergence).
  double w = double(cwnd_) / mss;
  if (w < cubic_w_last_max_) {
    cubic_w_last_max_ = w;
    cubic_w_max_ = w * (1 + kCubicBeta) / 2;
  } else {
    cubic_w_last_max_ = w;
    cubic_w_max_ = w;
  }
  cubic_epoch_ns_ = -1;
  cubic_frac_ = 0;
  return std::max(uint32_t(cwnd_ * kCubicBeta), 2 * mss);
}

void TcpEndpoint::CongestionAvoidance(uint32_t acked) {
  uint32_t mss = snd_mss_;
  if (cc_ == Cc::kReno) {
    // RFC 5681 (3) with byte counting (RFC 3465): one segment per window
    // of acknowledged bytes, that is, per round trip.
    reno_acked_ += acked;
    if (reno_acked_ >= cwnd_) {
      reno_acked_ -= cwnd_;
      cwnd_ += mss;
    }
    return;
  }
  int64_t now = stack_->Now();
  double w = double(cwnd_) / mss;
  if (cubic_epoch_ns_ < 0) {
    // A new epoch (RFC 8312 4.1): K is when W_cubic gets back to W_max
    // from where the window starts; a window already past W_max starts
    // the convex part at once (bictcp_update()).
    cubic_epoch_ns_ = now;
    if (cubic_w_max_ <= w) {
      cubic_k_ = 0;
      cubic_w_max_ = w;
    } else {
      cubic_k_ = std::cbrt((cubic_w_max_ - w) / kCubicC);
    }
    cubic_w_est_ = w;
  }
  double rtt = double(std::max<int64_t>(rto_.srtt_ns(), RtoEstimator::kGranularityNs)) / 1e9;
  double t = double(now - cubic_epoch_ns_) / 1e9;
  auto w_cubic = [&](double at) { return kCubicC * std::pow(at - cubic_k_, 3) + cubic_w_max_; };
  double segs = double(acked) / mss;
  // The TCP-friendly estimate grows as Reno with this beta would (4.2).
  cubic_w_est_ += 3 * (1 - kCubicBeta) / (1 + kCubicBeta) * segs / w;
  double next;
  if (w_cubic(t) < cubic_w_est_) {
    next = cubic_w_est_;  // the TCP-friendly region
  } else {
    // Concave and convex regions (4.3, 4.4): toward W_cubic(t + RTT),
    // (target - cwnd) / cwnd per segment acknowledged, at most half
    // again per round trip.
    double target = std::clamp(w_cubic(t + rtt), w, 1.5 * w);
    next = w + (target - w) / w * segs;
  }
  // Growth by fractions of a byte adds up (near W_max it is below one
  // byte an ACK).
  double grow = (next - w) * mss + cubic_frac_;
  if (grow <= 0) return;
  double whole = std::floor(grow);
  cubic_frac_ = grow - whole;
  cwnd_ = uint32_t(std::min<double>(cwnd_ + whole, 0x7fffffff));
}

}  // namespace seedvisor::netstack
