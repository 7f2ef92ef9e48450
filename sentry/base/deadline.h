// A point by which a wait must end, on the monotonic clock (mono_clock.h).
// Every deadline and timeout of seedd, seedsc, FRI and the shim is one of
// these, never absl::Now() + timeout: absl::Now() is the wall clock, and a
// wall-clock step (NTP, a VM restore, `date -s`) would end such a wait at
// once (a step forward) or never (a step back) (issue 10). Wall time is for
// what a user reads (a process's start time, a log line's date).
//
//   const Deadline by = Deadline::In(timeout);
//   while (poll(&p, 1, by.PollMs()) == 0) {
//     if (by.Passed()) return absl::DeadlineExceededError(...);
//   }
//
// Every query takes `now` (MonotonicNow() unless a test passes its own).
#ifndef SEEDVISOR_SENTRY_BASE_DEADLINE_H_
#define SEEDVISOR_SENTRY_BASE_DEADLINE_H_

#include <algorithm>
#include <cstdint>

#include "absl/time/time.h"
#include "sentry/base/mono_clock.h"

namespace seedvisor::sentry {

class Deadline {
 public:
  // `timeout` from `now`; absl::InfiniteDuration() is Never().
  static Deadline In(absl::Duration timeout, absl::Duration now = MonotonicNow()) {
    return Deadline(now + std::max(timeout, absl::ZeroDuration()));
  }
  static Deadline Never() { return Deadline(absl::InfiniteDuration()); }
  // At `at` on MonotonicNow()'s clock.
  static Deadline At(absl::Duration at) { return Deadline(at); }

  bool IsNever() const { return at_ == absl::InfiniteDuration(); }
  absl::Duration at() const { return at_; }
  bool Passed(absl::Duration now = MonotonicNow()) const { return now >= at_; }
  // Zero once passed; absl::InfiniteDuration() for Never().
  absl::Duration Left(absl::Duration now = MonotonicNow()) const {
    return IsNever() ? absl::InfiniteDuration() : std::max(at_ - now, absl::ZeroDuration());
  }
  // For poll(2)/epoll_wait(2): -1 for Never(), 0 once passed, else the
  // milliseconds left rounded up (a poll never wakes just before the
  // deadline and spins), at most 2^30.
  int PollMs(absl::Duration now = MonotonicNow()) const {
    if (IsNever()) return -1;
    const absl::Duration left = Left(now);
    const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
    return static_cast<int>(std::min<int64_t>(ms, int64_t{1} << 30));
  }

  friend bool operator==(Deadline a, Deadline b) { return a.at_ == b.at_; }
  friend bool operator<(Deadline a, Deadline b) { return a.at_ < b.at_; }
  friend Deadline Earlier(Deadline a, Deadline b) { return a.at_ <= b.at_ ? a : b; }

 private:
  explicit Deadline(absl::Duration at) : at_(at) {}
  absl::Duration at_;  // on MonotonicNow()'s clock
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_BASE_DEADLINE_H_
