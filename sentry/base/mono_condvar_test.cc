#include "sentry/base/mono_condvar.h"

#include <atomic>
#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/wall_clock_step.h"

namespace seedvisor::sentry {
namespace {

TEST(MonoCondVar, SignalEndsTheWaitOnceTheConditionHolds) {
  absl::Mutex mu;
  MonoCondVar cv;
  bool ready = false;
  std::thread t([&] {
    for (int i = 0; i < 3; ++i) {  // two wakeups with nothing ready: it waits on
      absl::SleepFor(absl::Milliseconds(20));
      absl::MutexLock l(&mu);
      ready = i == 2;
      cv.SignalAll();
    }
  });
  const absl::Duration t0 = MonotonicNow();
  {
    absl::MutexLock l(&mu);
    EXPECT_TRUE(cv.Await(&mu, absl::Condition(&ready), Deadline::In(absl::Seconds(60))));
    EXPECT_TRUE(ready);
  }
  EXPECT_LT(MonotonicNow() - t0, absl::Seconds(30));
  t.join();
}

TEST(MonoCondVar, SignalWakesOneAndSignalAllWakesEvery) {
  absl::Mutex mu;
  MonoCondVar cv;
  int go = 0;  // how many may leave
  int left = 0;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      absl::MutexLock l(&mu);
      auto mine = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return go > left; };
      ASSERT_TRUE(cv.Await(&mu, absl::Condition(&mine), Deadline::In(absl::Seconds(60))));
      ++left;
    });
  }
  {
    absl::MutexLock l(&mu);
    go = 1;
  }
  cv.Signal();
  {
    absl::MutexLock l(&mu);
    auto one = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return left == 1; };
    mu.Await(absl::Condition(&one));
    go = 3;
  }
  cv.SignalAll();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(left, 3);
}

TEST(MonoCondVar, AwaitTimesOutAtItsDeadline) {
  absl::Mutex mu;
  MonoCondVar cv;
  bool never = false;
  absl::MutexLock l(&mu);
  const absl::Duration t0 = MonotonicNow();
  EXPECT_FALSE(cv.Await(&mu, absl::Condition(&never), Deadline::In(absl::Milliseconds(100))));
  EXPECT_GE(MonotonicNow() - t0, absl::Milliseconds(100));
  EXPECT_TRUE(cv.WaitUntil(&mu, Deadline::In(absl::Milliseconds(-1))));  // passed: no wait
}

// How a timed wait for a condition that never comes ended, with the wall
// clock stepped by `step` as it began.
struct Ended {
  bool held;             // what the wait returned
  absl::Duration took;   // on the monotonic clock
  bool by_fallback;      // still waiting `fallback` after it began
};
using TimedAwait = std::function<bool(absl::Mutex*, bool* cond, absl::Duration timeout)>;
Ended AwaitWithWallClockStep(const TimedAwait& await, absl::Duration step, absl::Duration timeout,
                             absl::Duration fallback, MonoCondVar* cv) {
  absl::Mutex mu;
  bool cond = false;
  std::atomic<bool> done{false};
  std::atomic<bool> fell_back{false};
  const absl::Duration t0 = MonotonicNow();
  // Sleeps relative to the monotonic clock (nanosleep): not abseil's timed
  // waits, which the step would move.
  std::thread stopper([&] {
    while (!done && MonotonicNow() - t0 < fallback) absl::SleepFor(absl::Milliseconds(10));
    if (done) return;
    fell_back = true;
    absl::MutexLock l(&mu);
    cond = true;
    cv->SignalAll();
  });
  StepWallClock(step);
  bool held;
  {
    absl::MutexLock l(&mu);
    held = await(&mu, &cond, timeout);
  }
  const absl::Duration took = MonotonicNow() - t0;
  done = true;
  stopper.join();
  ResetWallClock();
  return {held, took, fell_back};
}

// The point of it (issue 10). The fake step is seen by every clock read
// after it but not by the kernel's timers, so a deadline computed after it
// lies to the kernel by the step: what a real step the other way does to a
// wait that began just before it. A wait of 300 ms must take 300 ms.
TEST(MonoCondVar, AwaitEndsOnTimeWhenTheWallClockSteps) {
  MonoCondVar cv;
  const TimedAwait mono = [&cv](absl::Mutex* mu, bool* cond, absl::Duration timeout) {
    mu->AssertHeld();
    return cv.Await(mu, absl::Condition(cond), Deadline::In(timeout));
  };
  for (const absl::Duration step : {absl::Hours(1), -absl::Hours(1)}) {
    SCOPED_TRACE(absl::FormatDuration(step));
    const Ended e = AwaitWithWallClockStep(mono, step, absl::Milliseconds(300), absl::Seconds(20), &cv);
    EXPECT_FALSE(e.held);
    EXPECT_FALSE(e.by_fallback) << "still waiting after 20 s";
    EXPECT_GE(e.took, absl::Milliseconds(300));
  }
}

// Why MonoCondVar exists, and that the test above would catch the old wait:
// abseil's timed wait (here Mutex::AwaitWithTimeout; CondVar::WaitWithTimeout
// shares its deadline) waits an hour on a clock an hour ahead, and not at
// all on one an hour behind. A newer abseil on the monotonic clock fails
// this test: then MonoCondVar can go.
TEST(MonoCondVar, AbseilTimedWaitsFollowTheWallClock) {
  MonoCondVar cv;  // the stopper's signal; abseil's Await re-checks on unlock
  const TimedAwait absl_await = [](absl::Mutex* mu, bool* cond, absl::Duration timeout) {
    return mu->AwaitWithTimeout(absl::Condition(cond), timeout);
  };
  const Ended ahead = AwaitWithWallClockStep(absl_await, absl::Hours(1), absl::Milliseconds(300),
                                             absl::Seconds(2), &cv);
  EXPECT_TRUE(ahead.by_fallback) << "ended after " << ahead.took;
  const Ended behind = AwaitWithWallClockStep(absl_await, -absl::Hours(1), absl::Seconds(5),
                                              absl::Seconds(20), &cv);
  EXPECT_FALSE(behind.held);
  EXPECT_LT(behind.took, absl::Seconds(5));
}

}  // namespace
}  // namespace seedvisor::sentry
