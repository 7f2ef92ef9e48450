// Timers: ITIMER_REAL/alarm(2), ITIMER_VIRTUAL and ITIMER_PROF for thread
// groups, on one service thread.
//
// The service thread sleeps until the earliest deadline and sends the
// signal under Kernel::mu(). CPU-time timers are checked against the
// process's guest CPU time every kCpuTick while one is armed (so they fire
// up to a tick late, like a tick-based kernel's). It is a parkable service thread in DESIGN.md's
// sense: Stop() ends it and Start() re-creates it from the armed timers.
#ifndef SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
#define SEEDVISOR_SENTRY_KERNEL_TIMERS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {

class Kernel;
class ThreadGroup;

class TimerService {
 public:
  explicit TimerService(Kernel& k) : kernel_(k) {}
  ~TimerService();

  struct Setting {
    int64_t value_ns = 0;     // time left, 0 = disarmed
    int64_t interval_ns = 0;
  };
  // Arms (value_ns > 0) or disarms ITIMER_REAL of `tg`; returns the old setting.
  Setting SetReal(const std::shared_ptr<ThreadGroup>& tg, Setting s);
  Setting GetReal(const ThreadGroup* tg);
  // ITIMER_VIRTUAL or ITIMER_PROF (`which`) of `tg`, whose CPU time is now
  // `cpu_ns`. The platform measures only the guest's time on a CPU, so
  // both count the same time (user and system are not told apart).
  Setting SetCpu(const std::shared_ptr<ThreadGroup>& tg, int which, Setting s, int64_t cpu_ns);
  Setting GetCpu(const ThreadGroup* tg, int which, int64_t cpu_ns);

  static constexpr int64_t kCpuTick = 4000000;  // ns

 private:
  struct Timer {
    std::weak_ptr<ThreadGroup> tg;
    int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
    int64_t interval_ns = 0;
  };
  struct CpuTimer {
    std::weak_ptr<ThreadGroup> tg;
    int64_t deadline_cpu_ns = 0;
    int64_t interval_ns = 0;
  };
  void Loop();
  // Fires the CPU timers that are due; drops mu_ while it reads CPU time.
  void CheckCpuTimers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WakeLoop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || rearmed_; }

  Kernel& kernel_;
  absl::Mutex mu_;
  std::map<const ThreadGroup*, Timer> timers_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<const ThreadGroup*, int>, CpuTimer> cpu_timers_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // A timer was armed: the loop must look again before its old wakeup
  // (an ITIMER_REAL of 1 us must not wait for a 1 s re-check).
  bool rearmed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

int64_t MonotonicNowNs();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
