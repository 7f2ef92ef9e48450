// Timers: ITIMER_REAL/alarm(2), ITIMER_VIRTUAL and ITIMER_PROF for thread
// groups, and POSIX timers (timer_create(2), posix_timers.cc), on one
// service thread.
//
//   Result<int> id = k.timers().CreatePosixTimer(task, CLOCK_MONOTONIC, nullptr);
//   k.timers().SetPosixTimer(task, *id, 0, {1000000, 1000000});  // 1 ms period
//
// The service thread sleeps until the earliest deadline and sends the
// signal under Kernel::mu(). CPU-time timers are checked against the
// process's guest CPU time every kCpuTick while one is armed (so they fire
// up to a tick late, like a tick-based kernel's). It is a parkable service thread in DESIGN.md's
// sense: Stop() ends it and Start() re-creates it from the armed timers.
// The thread starts with the first armed timer; if the host refuses it (a
// full pids cgroup), the call that arms gets EAGAIN and nothing is armed.
#ifndef SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
#define SEEDVISOR_SENTRY_KERNEL_TIMERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/errno.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/kernel/host_thread.h"

struct sigevent;

namespace seedvisor::sentry {

class Kernel;
class Task;
class ThreadGroup;
struct PosixTimerTable;

class TimerService {
 public:
  explicit TimerService(Kernel& k) : kernel_(k) {}
  ~TimerService();

  struct Setting {
    int64_t value_ns = 0;     // time left, 0 = disarmed
    int64_t interval_ns = 0;
  };
  // Arms (value_ns > 0) or disarms ITIMER_REAL of `tg`; returns the old
  // setting, or EAGAIN/ENOMEM if the host refused the service thread.
  Result<Setting> SetReal(const std::shared_ptr<ThreadGroup>& tg, Setting s);
  Setting GetReal(const ThreadGroup* tg);
  // ITIMER_VIRTUAL or ITIMER_PROF (`which`) of `tg`, whose CPU time is now
  // `cpu_ns`. The platform measures only the guest's time on a CPU, so
  // both count the same time (user and system are not told apart).
  Result<Setting> SetCpu(const std::shared_ptr<ThreadGroup>& tg, int which, Setting s,
                         int64_t cpu_ns);
  Setting GetCpu(const ThreadGroup* tg, int which, int64_t cpu_ns);

  static constexpr int64_t kCpuTick = 4000000;  // ns

  // RLIMIT_CPU (timers_cpu_limit.cc): call when `tg`'s soft limit may have
  // become finite (setrlimit, a new process). While it is, `tg`'s CPU time
  // is checked every kCpuTick: SIGXCPU at the soft limit and every second
  // after (the soft limit moves up one second each time, as Linux's
  // check_process_timers() moves it), SIGKILL at the hard limit. EAGAIN or
  // ENOMEM (and `tg` not watched) if the host refused the service thread.
  Status WatchCpuLimit(const std::shared_ptr<ThreadGroup>& tg);

  // POSIX timers of the caller's process (posix_timers.cc). The callers hold
  // no lock. `ev` null is the default sigevent (SIGEV_SIGNAL, SIGALRM).
  Result<int> CreatePosixTimer(Task& t, int clock, const struct sigevent* ev);
  // timer_settime(2): `s` relative, or absolute on the timer's clock with
  // TIMER_ABSTIME in `flags`; returns the old setting.
  Result<Setting> SetPosixTimer(Task& t, int id, int flags, Setting s);
  Result<Setting> GetPosixTimer(Task& t, int id);
  Result<int> PosixTimerOverrun(Task& t, int id);
  Status DeletePosixTimer(Task& t, int id);
  // execve(2) and exit: every POSIX timer of `tg` goes (Kernel::mu() held).
  void DeletePosixTimers(const ThreadGroup* tg);
  // A POSIX timer's deadline moved: the loop must look again (an armed
  // timer's thread runs already: see SetPosixTimer).
  void Kick();
  // Kernel::Quiesce: ends the service thread (armed timers stay armed and
  // fire late, at Unpark, if they came due meanwhile). Unpark re-creates the
  // thread if anything is armed. After Park no thread of ours exists, so a
  // host fork of the sentry copies no waiter of mu_.
  void Park();
  void Unpark();

 private:
  friend struct PosixTimer;
  struct Timer {
    std::weak_ptr<ThreadGroup> tg;
    int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
    int64_t interval_ns = 0;
    // Which setting this is (SetReal counts them): the loop sends a
    // timer's signal with mu_ unlocked, and a setitimer meanwhile (say,
    // from the handler) replaces the timer; the loop must then leave the
    // new one alone.
    uint64_t setting = 0;
  };
  struct CpuTimer {
    std::weak_ptr<ThreadGroup> tg;
    int64_t deadline_cpu_ns = 0;
    int64_t interval_ns = 0;
  };
  void Loop();
  // Fires the due POSIX timers (takes Kernel::mu(), drops mu_ meanwhile);
  // returns the monotonic time of the next real-clock expiry (INT64_MAX if
  // none) and sets *cpu if a CPU-clock timer is armed.
  int64_t CheckPosixTimers(bool* cpu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fires the CPU timers that are due; drops mu_ while it reads CPU time.
  void CheckCpuTimers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same for RLIMIT_CPU; drops mu_ while it reads CPU time.
  void CheckCpuLimits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The service thread, unless it runs or the service is parked.
  Status StartThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status EnsureThread() ABSL_LOCKS_EXCLUDED(mu_);
  bool WakeLoop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || rearmed_; }
  // Sets stop_ or rearmed_ and wakes the loop.
  void StopLoopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stop_ = true;
    wake_.SignalAll();
  }
  void RearmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    rearmed_ = true;
    wake_.SignalAll();
  }

  Kernel& kernel_;
  absl::Mutex mu_;
  // The loop's timed wait, on the monotonic clock (abseil's timed waits end
  // on the wall clock: a step back would stretch every guest timer).
  MonoCondVar wake_;
  std::map<const ThreadGroup*, Timer> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t real_settings_ ABSL_GUARDED_BY(mu_) = 0;  // Timer::setting
  std::map<std::pair<const ThreadGroup*, int>, CpuTimer> cpu_timers_ ABSL_GUARDED_BY(mu_);
  // Processes whose RLIMIT_CPU was finite when watched (until they die).
  std::map<const ThreadGroup*, std::weak_ptr<ThreadGroup>> cpu_limited_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool parked_ ABSL_GUARDED_BY(mu_) = false;  // Park() until Unpark()
  bool resume_thread_ ABSL_GUARDED_BY(mu_) = false;  // it ran before Park()
  // A timer was armed: the loop must look again before its old wakeup
  // (an ITIMER_REAL of 1 us must not wait for a 1 s re-check).
  bool rearmed_ ABSL_GUARDED_BY(mu_) = false;
  ServiceThread thread_;
  // Guarded by Kernel::mu() (lock order: Kernel::mu() before mu_).
  std::shared_ptr<PosixTimerTable> posix_;
};

int64_t MonotonicNowNs();

// A CPU clock of another thread or process, as clock_getcpuclockid(3) and
// pthread_getcpuclockid(3) make them: pid 0 is the caller; nullopt for a
// clock id that is none.
struct CpuClockId {
  int pid;
  bool thread;
};
std::optional<CpuClockId> DecodeCpuClock(int clock);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_TIMERS_H_
