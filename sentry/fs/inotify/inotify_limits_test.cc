// InotifyCharge: per-user counts against fs.inotify.max_user_*.
#include "sentry/fs/inotify/inotify_limits.h"

#include <vector>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

TEST(InotifyLimitsTest, InstancesPerUserUpToTheLimit) {
  ASSERT_TRUE(SetInotifyMaxInstances("3\n").ok());
  EXPECT_EQ(InotifyMaxInstancesText(), "3\n");
  std::vector<InotifyCharge> held;
  for (int i = 0; i < 3; ++i) {
    Result<InotifyCharge> c = InotifyCharge::Instance(1000);
    ASSERT_TRUE(c.ok()) << i;
    held.push_back(std::move(*c));
  }
  Result<InotifyCharge> over = InotifyCharge::Instance(1000);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error(), Errno(EMFILE));
  EXPECT_EQ(InotifyCharge::InstancesOf(1000), 3);
  // Another user has its own count.
  EXPECT_TRUE(InotifyCharge::Instance(1001).ok());
  held.pop_back();
  EXPECT_EQ(InotifyCharge::InstancesOf(1000), 2);
  EXPECT_TRUE(InotifyCharge::Instance(1000).ok());
  held.clear();
  EXPECT_EQ(InotifyCharge::InstancesOf(1000), 0);
  ASSERT_TRUE(SetInotifyMaxInstances("128").ok());
}

TEST(InotifyLimitsTest, WatchesPerUserUpToTheLimit) {
  ASSERT_TRUE(SetInotifyMaxWatches("2").ok());
  Result<InotifyCharge> a = InotifyCharge::Watch(7);
  Result<InotifyCharge> b = InotifyCharge::Watch(7);
  ASSERT_TRUE(a.ok() && b.ok());
  Result<InotifyCharge> c = InotifyCharge::Watch(7);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), Errno(ENOSPC));
  InotifyCharge moved = std::move(*a);
  EXPECT_EQ(InotifyCharge::WatchesOf(7), 2);  // moved, not given back
  moved = InotifyCharge();
  EXPECT_EQ(InotifyCharge::WatchesOf(7), 1);
  // A lower limit holds new charges only.
  ASSERT_TRUE(SetInotifyMaxWatches("0").ok());
  EXPECT_FALSE(InotifyCharge::Watch(8).ok());
  ASSERT_TRUE(SetInotifyMaxWatches("1048576").ok());
}

TEST(InotifyLimitsTest, WritesAreIntegersFromZeroToIntMax) {
  EXPECT_EQ(SetInotifyMaxInstances("-1").error(), Errno(EINVAL));
  EXPECT_EQ(SetInotifyMaxInstances("abc").error(), Errno(EINVAL));
  EXPECT_EQ(SetInotifyMaxInstances("").error(), Errno(EINVAL));
  EXPECT_EQ(SetInotifyMaxWatches("2147483648").error(), Errno(EINVAL));
  EXPECT_TRUE(SetInotifyMaxWatches("2147483647").ok());
  EXPECT_EQ(InotifyMaxWatchesText(), "2147483647\n");
  // Still the sandbox's cap, whatever the limit says.
  std::vector<InotifyCharge> held;
  for (int64_t i = 0; i < InotifyCharge::kSandboxMaxInstances; ++i) {
    Result<InotifyCharge> c = InotifyCharge::Instance(static_cast<uid_t>(i));
    ASSERT_TRUE(c.ok()) << i;
    held.push_back(std::move(*c));
  }
  EXPECT_EQ(InotifyCharge::Instance(99999).error(), Errno(EMFILE));
  ASSERT_TRUE(SetInotifyMaxWatches("1048576").ok());
}

}  // namespace
}  // namespace seedvisor::sentry
