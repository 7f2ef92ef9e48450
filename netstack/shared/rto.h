// The TCP retransmission timer's estimator, RFC 6298: SRTT and RTTVAR from
// RTT samples (Karn's rule is the caller's: never sample a retransmitted
// segment), RTO = SRTT + max(G, 4 * RTTVAR), doubled on every timeout and
// clamped. Bounds are Linux's (TCP_RTO_MIN 200 ms, TCP_RTO_MAX 120 s,
// TCP_TIMEOUT_INIT 1 s), not the RFC's 1 s floor, so that a guest sees the
// retransmission timing it would see on Linux.
//
//   RtoEstimator rto;
//   rto.Sample(rtt_ns);        // on an ACK of a timed, never-resent segment
//   timer.Arm(now + rto.rto_ns());
//   rto.Backoff();             // on a timeout
#ifndef SEEDVISOR_NETSTACK_SHARED_RTO_H_
#define SEEDVISOR_NETSTACK_SHARED_RTO_H_

#include <algorithm>
#include <cstdint>

namespace seedvisor::netstack {

class RtoEstimator {
 public:
  static constexpr int64_t kMinNs = 200'000'000;
  static constexpr int64_t kMaxNs = 120'000'000'000;
  static constexpr int64_t kInitialNs = 1'000'000'000;
  static constexpr int64_t kGranularityNs = 1'000'000;

  void Sample(int64_t rtt_ns) {
    rtt_ns = std::max<int64_t>(rtt_ns, 0);
    if (srtt_ns_ < 0) {  // the first measurement (RFC 6298 2.2)
      srtt_ns_ = rtt_ns;
      rttvar_ns_ = rtt_ns / 2;
    } else {  // 2.3, alpha = 1/8, beta = 1/4
      int64_t err = srtt_ns_ > rtt_ns ? srtt_ns_ - rtt_ns : rtt_ns - srtt_ns_;
      rttvar_ns_ = (3 * rttvar_ns_ + err) / 4;
      srtt_ns_ = (7 * srtt_ns_ + rtt_ns) / 8;
    }
    base_ns_ = Clamp(srtt_ns_ + std::max(kGranularityNs, 4 * rttvar_ns_));
    backoff_ = 0;  // 5.7: a new sample after backoff resets the timer value
  }
  void Backoff() { backoff_ = std::min(backoff_ + 1, 30); }  // 5.5
  void ResetBackoff() { backoff_ = 0; }
  int64_t rto_ns() const {
    int64_t r = base_ns_;
    for (int i = 0; i < backoff_ && r < kMaxNs; ++i) r *= 2;
    return Clamp(r);
  }
  int64_t srtt_ns() const { return srtt_ns_; }
  int64_t rttvar_ns() const { return rttvar_ns_; }
  int backoff() const { return backoff_; }

 private:
  static int64_t Clamp(int64_t v) { return std::clamp(v, kMinNs, kMaxNs); }
  int64_t srtt_ns_ = -1;
  int64_t rttvar_ns_ = 0;
  int64_t base_ns_ = kInitialNs;
  int backoff_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_RTO_H_
