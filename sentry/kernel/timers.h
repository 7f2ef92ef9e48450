// Timers: ITIMER_REAL/alarm(2) for thread groups, on one service thread.
//
// The service thread sleeps until the earliest deadline and sends the
// signal under Kernel::mu(). It is a parkable service thread in DESIGN.md's
// sense: Stop() ends it and Start() re-creates it from the armed timers.
#ifndef SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
#define SEEDVISOR_SENTRY_KERNEL_TIMERS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <thread>

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

 private:
  struct Timer {
    std::weak_ptr<ThreadGroup> tg;
    int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
    int64_t interval_ns = 0;
  };
  void Loop();

  Kernel& kernel_;
  absl::Mutex mu_;
  std::map<const ThreadGroup*, Timer> timers_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

int64_t MonotonicNowNs();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
