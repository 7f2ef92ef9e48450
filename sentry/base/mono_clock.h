// The sentry's clock for its own deadlines, timeouts and watchdogs:
// CLOCK_MONOTONIC, as the time since an arbitrary fixed point (the host's
// boot). Compare and subtract its values; never mix them with absl::Time.
//
//   const absl::Duration deadline = MonotonicNow() + absl::Seconds(5);
//   while (!Done()) { if (MonotonicNow() >= deadline) return false; ... }
//
// Not absl::Now(): abseil's clock takes a process-wide SpinLock of its own
// (time_state.lock in absl/time/clock.cc) whenever it resamples the
// kernel's clock (about every 2 s in a busy process, more often after a
// pause). A seed's sentry is host-forked while its control threads run
// (sentry/sfork): a fork taken while one of them held that lock leaves it
// held forever in the forked sentry, whose first resampling absl::Now()
// then waits forever (issue 9). clock_gettime takes no lock in the process.
// //sentry/base:mono_clock_test shows it: a child forked while another
// thread held that lock hangs in absl::Now(). Abseil's timed waits
// (Mutex::AwaitWithTimeout, CondVar::WaitWithTimeout) are safe there: this
// abseil (Debian's 20220623) makes their deadline with gettimeofday, not
// absl::Now() (mutex.cc, DeadlineFromTimeout); the same test pins that.
#ifndef SEEDVISOR_SENTRY_BASE_MONO_CLOCK_H_
#define SEEDVISOR_SENTRY_BASE_MONO_CLOCK_H_

#include <time.h>

#include "absl/time/time.h"

namespace seedvisor::sentry {

inline absl::Duration MonotonicNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::DurationFromTimespec(ts);
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_BASE_MONO_CLOCK_H_
