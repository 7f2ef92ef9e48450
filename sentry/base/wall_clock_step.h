// Tests only: steps this process's wall clock as NTP or a VM restore would,
// without touching the host's. Linking this library interposes libc's
// clock_gettime so that CLOCK_REALTIME (and _COARSE), and so absl::Now() and
// std::chrono::system_clock, read `offset` later than the host's clock.
// CLOCK_MONOTONIC and the kernel's own timers (poll, futex) are untouched, so
// code that waits on the monotonic clock (deadline.h) must not notice.
//
//   StepWallClock(-absl::Hours(1));   // the clock jumps back an hour
//   EXPECT_LT(WaitSomething(Deadline::In(absl::Milliseconds(100))), ...);
//
// gettimeofday(2) is not interposed: abseil's timed waits compute their
// absolute CLOCK_REALTIME futex deadline from it, and a fake offset there
// would misreport what a real step does to them.
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
