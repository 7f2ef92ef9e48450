// A condition variable for an absl::Mutex whose timed waits end on the
// monotonic clock (a Deadline), whatever the wall clock does.
//
// Why not absl::CondVar::WaitWithTimeout or Mutex::AwaitWithTimeout: this
// abseil (Debian's 20220623) turns the timeout into an absolute
// CLOCK_REALTIME futex deadline (gettimeofday() + timeout, then
// FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME), so a step of the wall clock
// (NTP, a VM restore, `date -s`) stretches such a wait by a step back and
// ends it at once on a step forward (issue 10). Here the futex deadline is
// absolute on CLOCK_MONOTONIC (FUTEX_WAIT_BITSET without the realtime flag):
// nothing reads the wall clock.
//
// Unlike Mutex::Await, a condition is only re-checked when someone calls
// Signal/SignalAll, so whoever changes what a waiter waits for signals
// (with or after the change, under the mutex or after releasing it):
//
//   absl::MutexLock l(&mu_);
//   if (!cv_.Await(&mu_, absl::Condition(&done_), Deadline::In(timeout))) {
//     return absl::DeadlineExceededError(...);
//   }
//   ...
//   { absl::MutexLock l(&mu_); done_ = true; }
//   cv_.SignalAll();
//
// No allocation, no lock of its own and no thread: safe beside a host fork.
#ifndef SEEDVISOR_SENTRY_BASE_MONO_CONDVAR_H_
#define SEEDVISOR_SENTRY_BASE_MONO_CONDVAR_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/deadline.h"

namespace seedvisor::sentry {

class MonoCondVar {
 public:
  MonoCondVar() = default;
  MonoCondVar(const MonoCondVar&) = delete;
  MonoCondVar& operator=(const MonoCondVar&) = delete;

  // Releases *mu, sleeps until a Signal/SignalAll (or a spurious wakeup) or
  // until `by`, then takes *mu again. True if `by` has passed (as
  // absl::CondVar::WaitWithDeadline).
  bool WaitUntil(absl::Mutex* mu, Deadline by) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Wait(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { WaitUntil(mu, Deadline::Never()); }

  // Waits until `cond` holds or `by` passes; returns whether `cond` holds
  // (as Mutex::AwaitWithTimeout). `cond` is evaluated with *mu held.
  bool Await(absl::Mutex* mu, const absl::Condition& cond, Deadline by) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Wakes one waiter / every waiter.
  void Signal() { Wake(1); }
  void SignalAll() { Wake(INT32_MAX); }

 private:
  void Wake(int32_t n);

  std::atomic<uint32_t> seq_{0};      // the futex word: bumped by every signal
  std::atomic<uint32_t> waiters_{0};  // a signal with none makes no syscall
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_BASE_MONO_CONDVAR_H_
