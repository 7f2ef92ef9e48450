// How long each side of the systrap handoff spins before it sleeps.
//
// A trapped guest syscall is two handoffs through the slot's comm page: the
// stub posts the event and waits for the reply, the sentry thread replies
// and waits for the next event. A waiter that spins sees the answer within
// nanoseconds of its post; one that sleeps in FUTEX_WAIT costs its peer a
// FUTEX_WAKE and itself a wakeup, which on an idle vCPU of this VM (halted,
// woken by an IPI through the hypervisor) is tens of microseconds. So on an
// idle host spinning wins by several times.
//
// On a busy host it loses badly: a spinner that is on a CPU takes it from
// the peer it waits for, and a spinner that was preempted sits in the run
// queue without any wakeup to bring it back early (its peer saw that it was
// not sleeping and skipped FUTEX_WAKE), until the scheduler gets round to
// it. Measured with `stress-ng --cpu 2` beside the benchmark on 2 CPUs:
// a fixed 1000-pause spin with sched_yield() every 64 made a stress-ng pipe
// round trip ~500 us (0.2 % of native), where sleeping at once gave 6.7 %.
// A woken sleeper, in contrast, is placed ahead of the CPU hog (it has
// lag to spend), so sleeping degrades gracefully.
//
// SpinPolicy decides each wait's spin from what recent waits showed:
//  - spin about twice as long as the answer usually takes (an EWMA of the
//    waits that a spin caught), never more than `max_ticks`;
//  - a wait that outlasts its spin but whose answer came within
//    `max_ticks` (a longer spin would have caught it: the peer was
//    delayed by a timer tick or a VM exit) teaches the average like a
//    caught one; only an answer later than that halves the budget, down
//    to none. Before, every late answer halved it, and from a budget near
//    the floor one halving was none: on an idle host a tick's delay now
//    and then cost the next probe interval's 16 waits an idle vCPU's
//    wakeup each (~35 us; 0.3 % of getppid calls in runs of 16-17, the
//    idle p99 of ~32 us, bench/RESULTS.md);
//  - with no budget, every `probe_every` waits spin the full `max_ticks`
//    once; a probe that catches the answer re-enables spinning, one that
//    does not doubles the interval (up to kMaxProbeInterval);
//  - Preempted() (the spinner saw itself descheduled mid-spin: the host's
//    CPUs are contended) drops the budget and doubles the probe interval.
// sched_yield() is never used: under a CPU hog it hands the CPU away for a
// whole slice while the peer's answer cannot wake us.
//
// Those per-wait signals alone cannot see a busy host: when both sides
// sleep, a probe on one side waits out the other side's wakeup and fails
// even where spinning on both would pay, and a short spin is rarely
// preempted. So the host's CPU pressure decides first (CpuContention: the
// share of time some runnable thread waited for a CPU, from
// /proc/pressure/cpu): while it is high neither side spins at all.
//
// How long the longest spin may be follows what a sleep costs (WakeCost):
// it must outlast one wakeup, or once both sides sleep nothing brings them
// back to spinning. And when the sentry had to wake the stub for its reply,
// its wait for the next event includes that wakeup: it spins the wakeup's
// cost longer than its budget, and such a wait that outlasts the spin by
// less than another wakeup is not held against spinning (nor is the stub's
// wait that included the sentry's own wakeup; PeerWokenWaitCounts).
// Without that, each side's short spin missed the other's late answer,
// neither budget fell to zero to let a probe run, and a thread stayed in
// two wakeups per syscall for good: 40 us per getppid on an idle host
// (bench/RESULTS.md).
//
//   SpinPolicy p(MaxSpinTicks());
//   const uint64_t budget = p.NextBudget();
//   ... spin up to `budget` ticks, then FUTEX_WAIT ...
//   p.Record(budget, waited_ticks);
//
// Not thread-safe: each SystrapContext keeps its own, used by the thread
// that drives it. Times are TSC ticks (ReadTsc).
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_HANDOFF_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_HANDOFF_H_

#include <x86intrin.h>

#include <cstdint>

namespace seedvisor::platform::systrap {

inline uint64_t ReadTsc() { return __rdtsc(); }

// TSC ticks per nanosecond, measured once per process against
// CLOCK_MONOTONIC (a ~200 us busy loop on first use).
double TscTicksPerNs();

// The longest spin either side makes, in ticks: at least MaxSpinTicks()
// (SEEDVISOR_SYSTRAP_SPIN_US if set, 0 turning spinning off, for
// benchmarks; else kDefaultMaxSpinNs), at most CeilingSpinTicks() (the
// same as MaxSpinTicks() when the variable is set, else kCeilingSpinNs),
// and in between what a sleep costs here (WakeCost).
uint64_t MaxSpinTicks();
uint64_t CeilingSpinTicks();
inline constexpr int64_t kDefaultMaxSpinNs = 20'000;
inline constexpr int64_t kCeilingSpinNs = 200'000;

// What a FUTEX_WAIT costs the sleeper on this host: the ticks from the
// peer's post (its FUTEX_WAKE follows at once) to the sleeper running
// again, an EWMA (1/8) of the waits that slept. On a busy host a wakeup is
// a few microseconds; on an idle vCPU of a nested VM it is an IPI through
// the hypervisor to a halted CPU, measured at ~40 us on the CI machines
// (getppid: 40 us p50 idle, 4.7 us beside stress-ng, bench/RESULTS.md).
//
// The spin cap follows it: a spin shorter than one wakeup can never catch
// an answer that needs the peer woken first, so once both sides sleep
// (after a long guest computation, say) no probe could succeed and the
// thread stayed on the slow path for good: 40 us per getppid on an idle
// host with a fixed 20 us cap. SpinCap() is kWakesPerSpin wakeups, within
// [floor, ceiling]: enough for a probe to cover one wakeup and the answer.
class WakeCost {
 public:
  static constexpr uint64_t kWakesPerSpin = 3;

  // One sleep that lasted `ticks` from the peer's post; samples above
  // `ceiling` (a guest-written post time, or a sleep for a long guest
  // computation) are ignored.
  void Record(uint64_t ticks, uint64_t ceiling);
  uint64_t SpinCap(uint64_t floor, uint64_t ceiling) const;
  uint64_t average() const { return avg_; }

 private:
  uint64_t avg_ = 0;
};

// A spinner that sees the TSC jump by this much between two polls was
// descheduled (a vCPU exit costs a few microseconds; a preemption at least
// a scheduler slice).
inline constexpr int64_t kPreemptGapNs = 50'000;

// Whether the host's CPUs are contended: the "some" line of
// /proc/pressure/cpu (PSI), the time in which at least one runnable thread
// waited for a CPU, as a share of wall time since the previous reading.
// Above kHigh the host is contended (no spinning) until it falls below
// kLow. If turning spinning back on makes it contended again at the next
// reading, the next contended spell is held twice as long (up to kMaxHold
// readings); our own spinners are then what the others wait for.
//
// ContentionGauge is the decision (deterministic, tested); Contended() is
// the process-wide instance fed every kPeriodNs by whichever caller finds
// it stale. Without PSI (no file) the host never counts as contended.
class ContentionGauge {
 public:
  static constexpr double kHigh = 0.20, kLow = 0.05;
  static constexpr uint32_t kMaxHold = 64;

  // A reading: the PSI "some" total (us) at `now_ns`. Returns contended().
  bool Update(int64_t now_ns, uint64_t stall_us);
  bool contended() const { return contended_; }

 private:
  int64_t last_ns_ = -1;
  uint64_t last_stall_us_ = 0;
  bool contended_ = false;
  uint32_t hold_ = 1;       // readings a contended spell lasts at least
  uint32_t held_ = 0;       // readings of the current spell so far
  uint32_t clear_for_ = 0;  // readings since the last spell ended
};

// The process-wide gauge: true while the host's CPUs are contended.
// Cheap (a TSC read) except once per kContentionPeriodNs, when the caller
// reads /proc/pressure/cpu (~10 us).
bool CpuContended();
inline constexpr int64_t kContentionPeriodNs = 4'000'000;
// The "some ... total=N" of a /proc/pressure/cpu text, or -1.
int64_t ParsePsiSomeTotal(const char* text);

// A wait whose peer had to be woken first (the sentry's reply found the
// stub asleep; the stub's post found the sentry asleep): its answer comes
// a wakeup (`wake`, WakeCost::average()) later than the peer alone would
// make it. The sentry spins that much longer for it (PeerWokenBudget), and
// the wait counts for its SpinPolicy (PeerWokenWaitCounts) when a spin
// caught it, or when it outlasted the spin by more than another wakeup
// (the peer's own work was long: a guest that computes, a slow syscall).
// A miss within that is the wakeup's variance and says nothing either way.
inline uint64_t PeerWokenBudget(uint64_t budget, uint64_t wake, uint64_t max) {
  return budget == 0 ? 0 : (budget + wake < max ? budget + wake : max);
}
inline bool PeerWokenWaitCounts(uint64_t budget, uint64_t waited, uint64_t wake) {
  return waited <= budget || waited > budget + wake;
}

class SpinPolicy {
 public:
  static constexpr uint32_t kMinProbeInterval = 16;
  static constexpr uint32_t kMaxProbeInterval = 4096;

  explicit SpinPolicy(uint64_t max_ticks)
      : max_(max_ticks), budget_(max_ticks), probe_every_(kMinProbeInterval) {}

  // A new longest spin (WakeCost::SpinCap); the budget stays within it.
  void SetMax(uint64_t max_ticks);
  uint64_t max() const { return max_; }

  // Ticks to spin in the next wait (0: sleep at once).
  uint64_t NextBudget();
  // That wait was given `budget` ticks and its answer came after `waited`
  // ticks (so a spin caught it iff waited <= budget). `waited` is when the
  // answer was posted, not when a sleeper woke to it.
  void Record(uint64_t budget, uint64_t waited);
  // The spinner was descheduled while it spun.
  void Preempted();

  uint64_t budget() const { return budget_; }
  uint32_t probe_interval() const { return probe_every_; }

 private:
  uint64_t max_;
  uint64_t budget_;
  uint64_t avg_ = 0;  // EWMA (1/8) of the waits a spin caught
  uint32_t probe_every_;
  uint32_t since_probe_ = 0;
};

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_HANDOFF_H_
