// Tests only: steps this process's wall clock as NTP or a VM restore would,
// without touching the host's. Linking this library interposes libc's
// clock_gettime and gettimeofday so that CLOCK_REALTIME (and _COARSE), and
// so absl::Now(), std::chrono::system_clock and abseil's timed waits, read
// `offset` later than the host's clock. CLOCK_MONOTONIC and the kernel's own
// timers (poll, futex) are untouched, so code that waits on the monotonic
// clock (deadline.h, mono_condvar.h) must not notice.
//
//   StepWallClock(-absl::Hours(1));   // the clock jumps back an hour
//   EXPECT_LT(WaitSomething(Deadline::In(absl::Milliseconds(100))), ...);
//
// The kernel's CLOCK_REALTIME timers do not see the offset: an absolute
// wall-clock deadline computed after StepWallClock(d) (abseil's
// AwaitWithTimeout: gettimeofday() + timeout, a FUTEX_CLOCK_REALTIME futex)
// is off by d for the kernel, which is what a real step by -d does to a
// wait that began just before it.
#ifndef SEEDVISOR_SENTRY_BASE_WALL_CLOCK_STEP_H_
#define SEEDVISOR_SENTRY_BASE_WALL_CLOCK_STEP_H_

#include "absl/time/time.h"

namespace seedvisor::sentry {

// Adds `by` to the offset every later CLOCK_REALTIME read gets.
void StepWallClock(absl::Duration by);
// Back to the host's clock.
void ResetWallClock();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_BASE_WALL_CLOCK_STEP_H_
