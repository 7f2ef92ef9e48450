#include "platform/systrap/systrap_handoff.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

namespace seedvisor::platform::systrap {
namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// One (ns, tsc) pair read close together: the TSC between two clock reads
// less than 2 us apart (a preemption in between would skew the pair).
void ReadPair(int64_t* ns, uint64_t* tsc) {
  for (;;) {
    const int64_t a = MonotonicNs();
    const uint64_t t = ReadTsc();
    const int64_t b = MonotonicNs();
    if (b - a < 2'000) {
      *ns = a + (b - a) / 2;
      *tsc = t;
      return;
    }
  }
}

double MeasureTscTicksPerNs() {
  int64_t ns0, ns1;
  uint64_t tsc0, tsc1;
  ReadPair(&ns0, &tsc0);
  do {
    ReadPair(&ns1, &tsc1);
  } while (ns1 - ns0 < 200'000);
  const double r = static_cast<double>(tsc1 - tsc0) / static_cast<double>(ns1 - ns0);
  // A TSC that does not tick (or a broken reading): treat a tick as 1 ns.
  return r > 0.05 ? r : 1.0;
}

}  // namespace

double TscTicksPerNs() {
  static const double ratio = MeasureTscTicksPerNs();
  return ratio;
}

namespace {

// SEEDVISOR_SYSTRAP_SPIN_US in ns, or -1 when unset or invalid.
int64_t SpinOverrideNs() {
  static const int64_t ns = [] {
    if (const char* s = std::getenv("SEEDVISOR_SYSTRAP_SPIN_US"); s != nullptr && *s != '\0') {
      char* end = nullptr;
      const long us = std::strtol(s, &end, 10);
      if (*end == '\0' && us >= 0 && us <= 1000) return static_cast<int64_t>(us) * 1000;
    }
    return int64_t{-1};
  }();
  return ns;
}

uint64_t NsToTicks(int64_t ns) {
  return static_cast<uint64_t>(static_cast<double>(ns) * TscTicksPerNs());
}

}  // namespace

uint64_t MaxSpinTicks() {
  static const uint64_t ticks =
      NsToTicks(SpinOverrideNs() >= 0 ? SpinOverrideNs() : kDefaultMaxSpinNs);
  return ticks;
}

uint64_t CeilingSpinTicks() {
  static const uint64_t ticks =
      NsToTicks(SpinOverrideNs() >= 0 ? SpinOverrideNs() : kCeilingSpinNs);
  return ticks;
}

void WakeCost::Record(uint64_t ticks, uint64_t ceiling) {
  if (ticks > ceiling) return;
  if (avg_ == 0) {
    avg_ = ticks;
  } else if (ticks >= avg_) {
    avg_ += (ticks - avg_) / 8;
  } else {
    avg_ -= (avg_ - ticks) / 8;
  }
}

uint64_t WakeCost::SpinCap(uint64_t floor, uint64_t ceiling) const {
  return std::clamp(kWakesPerSpin * avg_, floor, std::max(floor, ceiling));
}

int64_t ParsePsiSomeTotal(const char* text) {
  if (std::strncmp(text, "some ", 5) != 0) return -1;
  const char* nl = std::strchr(text, '\n');
  const char* t = std::strstr(text, " total=");
  if (t == nullptr || (nl != nullptr && t > nl)) return -1;
  char* end = nullptr;
  const long long v = std::strtoll(t + 7, &end, 10);
  if (end == t + 7 || v < 0) return -1;
  return v;
}

bool ContentionGauge::Update(int64_t now_ns, uint64_t stall_us) {
  if (last_ns_ < 0 || now_ns <= last_ns_ || stall_us < last_stall_us_) {
    last_ns_ = now_ns;
    last_stall_us_ = stall_us;
    return contended_;
  }
  const double share = static_cast<double>(stall_us - last_stall_us_) * 1000.0 /
                       static_cast<double>(now_ns - last_ns_);
  last_ns_ = now_ns;
  last_stall_us_ = stall_us;
  if (contended_) {
    ++held_;
    if (share < kLow && held_ >= hold_) {
      contended_ = false;
      clear_for_ = 0;
    }
  } else {
    ++clear_for_;
    if (share > kHigh) {
      // Contended right after a spell ended: likely our own spinning.
      hold_ = clear_for_ <= 1 ? std::min(kMaxHold, hold_ * 2) : std::max(1u, hold_ / 2);
      contended_ = true;
      held_ = 0;
    }
  }
  return contended_;
}

bool CpuContended() {
  static std::atomic<uint64_t> next_tsc{0};
  static std::atomic<bool> contended{false};
  static ContentionGauge gauge;  // touched only by the caller that won next_tsc
  static const uint64_t period = static_cast<uint64_t>(kContentionPeriodNs * TscTicksPerNs());
  const uint64_t now = ReadTsc();
  uint64_t due = next_tsc.load(std::memory_order_relaxed);
  if (now < due || !next_tsc.compare_exchange_strong(due, now + period)) {
    return contended.load(std::memory_order_relaxed);
  }
  // This caller reads; the others go on with the last answer meanwhile.
  char buf[256];
  ssize_t n = -1;
  if (int fd = open("/proc/pressure/cpu", O_RDONLY | O_CLOEXEC); fd >= 0) {
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
  }
  if (n <= 0) {
    next_tsc.store(UINT64_MAX, std::memory_order_relaxed);  // no PSI: never ask again
    return false;
  }
  buf[n] = '\0';
  const int64_t stall = ParsePsiSomeTotal(buf);
  if (stall < 0) return contended.load(std::memory_order_relaxed);
  const bool c = gauge.Update(MonotonicNs(), static_cast<uint64_t>(stall));
  contended.store(c, std::memory_order_relaxed);
  return c;
}

uint64_t SpinPolicy::NextBudget() {
  if (budget_ > 0 || max_ == 0) return budget_;
  if (++since_probe_ < probe_every_) return 0;
  since_probe_ = 0;
  return max_;  // a probe
}

void SpinPolicy::Record(uint64_t budget, uint64_t waited) {
  if (budget == 0) return;  // it slept at once: says nothing about spinning
  const bool probe = budget_ == 0;
  const uint64_t floor = max_ / 32;  // below this a spin is not worth it
  if (waited <= budget || waited <= max_) {
    // Caught while spinning, or late by less than the longest spin:
    // spin about twice the usual answer time.
    if (avg_ == 0) {
      avg_ = waited;
    } else if (waited >= avg_) {
      avg_ += (waited - avg_) / 8;
    } else {
      avg_ -= (avg_ - waited) / 8;
    }
    budget_ = std::min(max_, 2 * avg_ + floor);
    if (probe) probe_every_ = std::max(kMinProbeInterval, probe_every_ / 2);
  } else {
    // No spin could have caught it: the answer needed a sleep anyway.
    budget_ /= 2;
    if (budget_ < floor) budget_ = 0;
    if (probe) probe_every_ = std::min(kMaxProbeInterval, probe_every_ * 2);
  }
}

void SpinPolicy::SetMax(uint64_t max_ticks) {
  max_ = max_ticks;
  budget_ = std::min(budget_, max_);
}

void SpinPolicy::Preempted() {
  budget_ = 0;
  since_probe_ = 0;
  probe_every_ = std::min(kMaxProbeInterval, probe_every_ * 2);
}

}  // namespace seedvisor::platform::systrap
