#include "sentry/base/deadline.h"

#include <poll.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sentry/base/wall_clock_step.h"

namespace seedvisor::sentry {
namespace {

constexpr absl::Duration kT0 = absl::Seconds(1000);  // a fake MonotonicNow()

TEST(Deadline, CountsDownFromItsStart) {
  const Deadline d = Deadline::In(absl::Milliseconds(1500), kT0);
  EXPECT_FALSE(d.IsNever());
  EXPECT_FALSE(d.Passed(kT0));
  EXPECT_EQ(d.Left(kT0), absl::Milliseconds(1500));
  EXPECT_EQ(d.Left(kT0 + absl::Seconds(1)), absl::Milliseconds(500));
  EXPECT_TRUE(d.Passed(kT0 + absl::Milliseconds(1500)));
  EXPECT_EQ(d.Left(kT0 + absl::Seconds(9)), absl::ZeroDuration());
}

TEST(Deadline, PollMsRoundsUpAndStopsAtZero) {
  const Deadline d = Deadline::In(absl::Milliseconds(10), kT0);
  EXPECT_EQ(d.PollMs(kT0), 10);
  EXPECT_EQ(d.PollMs(kT0 + absl::Microseconds(9500)), 1);  // not 0: no spin
  EXPECT_EQ(d.PollMs(kT0 + absl::Milliseconds(10)), 0);
  EXPECT_EQ(d.PollMs(kT0 + absl::Hours(1)), 0);
  EXPECT_EQ(Deadline::In(absl::Hours(24 * 365), kT0).PollMs(kT0), 1 << 30);
}

TEST(Deadline, NeverNeverPasses) {
  for (const Deadline d : {Deadline::Never(), Deadline::In(absl::InfiniteDuration(), kT0)}) {
    EXPECT_TRUE(d.IsNever());
    EXPECT_FALSE(d.Passed(kT0 + absl::Hours(1e6)));
    EXPECT_EQ(d.Left(kT0), absl::InfiniteDuration());
    EXPECT_EQ(d.PollMs(kT0), -1);
  }
  EXPECT_EQ(Earlier(Deadline::Never(), Deadline::In(absl::Seconds(1), kT0)), Deadline::In(absl::Seconds(1), kT0));
  EXPECT_TRUE(Deadline::In(absl::Seconds(-5), kT0).Passed(kT0));  // a negative timeout has passed
}

// The point of it (issue 10): the wall clock steps an hour either way and a
// deadline 200 ms out is still 200 ms out. absl::Now() + 200 ms, which
// seedd and seedsc used, is an hour away or long past.
TEST(Deadline, IgnoresWallClockSteps) {
  for (const absl::Duration step : {absl::Hours(1), -absl::Hours(1)}) {
    SCOPED_TRACE(absl::FormatDuration(step));
    const Deadline d = Deadline::In(absl::Milliseconds(200));
    const absl::Time wall_deadline = absl::Now() + absl::Milliseconds(200);
    StepWallClock(step);
    // The step took: the wall-clock deadline moved by it.
    EXPECT_GT(absl::AbsDuration(wall_deadline - absl::Now()), absl::Minutes(59));
    EXPECT_FALSE(d.Passed());
    EXPECT_GT(d.Left(), absl::Milliseconds(100));
    EXPECT_LE(d.Left(), absl::Milliseconds(200));
    const absl::Duration t0 = MonotonicNow();
    while (!d.Passed()) poll(nullptr, 0, d.PollMs());
    EXPECT_GE(MonotonicNow() - t0, absl::Milliseconds(100));
    EXPECT_LT(MonotonicNow() - t0, absl::Seconds(5));
    ResetWallClock();
  }
}

}  // namespace
}  // namespace seedvisor::sentry
