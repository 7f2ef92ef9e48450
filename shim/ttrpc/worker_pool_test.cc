#include "shim/ttrpc/worker_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace seedvisor::ttrpc {
namespace {

// Waits up to 5 s for `cond`.
template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 5000 && !cond(); ++i) absl::SleepFor(absl::Milliseconds(1));
  return cond();
}

TEST(WorkerPool, ReusesIdleThreads) {
  WorkerPool pool;
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    pool.Run([&] { done++; });
    ASSERT_TRUE(Eventually([&] { return done == i + 1 && pool.idle_threads() == 1; }));
  }
  // One item at a time: one thread did them all, none started per item.
  EXPECT_EQ(pool.threads(), 1);
}

TEST(WorkerPool, BlockedItemsDoNotHoldUpOthers) {
  WorkerPool pool;
  absl::Notification release;
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) pool.Run([&] { release.WaitForNotification(); done++; });
  pool.Run([&] { done += 10; });
  EXPECT_TRUE(Eventually([&] { return done == 10; }));
  EXPECT_EQ(pool.threads(), 4);
  release.Notify();
  EXPECT_TRUE(Eventually([&] { return done == 13; }));
  EXPECT_EQ(pool.threads(), 4);  // done items' threads stay
}

TEST(WorkerPool, NoThreadStartsWhileHeld) {
  WorkerPool pool;
  absl::Notification release;
  std::atomic<int> done{0};
  std::atomic<bool> released{false};
  pool.Run([&] { release.WaitForNotification(); released = true; });
  ASSERT_TRUE(Eventually([&] { return pool.threads() == 1; }));
  {
    WorkerPool::NoThreadStarts hold(pool);
    pool.Run([&] { done++; });  // needs a new thread: waits
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_EQ(pool.threads(), 1);
    EXPECT_EQ(done, 0);
  }
  EXPECT_TRUE(Eventually([&] { return done == 1; }));
  EXPECT_EQ(pool.threads(), 2);
  // While held, a free thread still takes items.
  {
    WorkerPool::NoThreadStarts hold(pool);
    pool.Run([&] { done++; });
    EXPECT_TRUE(Eventually([&] { return done == 2; }));
    EXPECT_EQ(pool.threads(), 2);
  }
  release.Notify();
  // The item still touches `release` once woken (it takes its mutex again):
  // it must be done before this frame, and `release` with it, goes.
  ASSERT_TRUE(Eventually([&] { return released.load(); }));
}

TEST(WorkerPool, StopEndsThreads) {
  WorkerPool pool;
  std::atomic<int> done{0};
  pool.Run([&] { done++; });
  ASSERT_TRUE(Eventually([&] { return done == 1; }));
  pool.Stop();
  EXPECT_TRUE(Eventually([&] { return pool.threads() == 0; }));
  pool.Run([&] { done++; });  // dropped
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(done, 1);
}

}  // namespace
}  // namespace seedvisor::ttrpc
