#include "sentry/control/fork_cgroup.h"

#include "gtest/gtest.h"

namespace seedvisor::control {
namespace {

TEST(GuestPidsLimit, TheRoomLeftAfterTheReserveInGuestTasks) {
  // 64 allowed, 20 used, 16 reserved: 28 host tasks, 9 guest tasks more.
  EXPECT_EQ(GuestPidsLimit(64, 20, 3), 3 + 9);
  EXPECT_EQ(GuestPidsLimit(20 + kHostTasksReserved + 2, 20, 5), 5);  // less than one task's room
}

TEST(GuestPidsLimit, NeverBelowWhatTheGuestHas) {
  EXPECT_EQ(GuestPidsLimit(10, 30, 4), 4);  // over the limit already (a migration)
  EXPECT_EQ(GuestPidsLimit(0, 0, 1), 1);
}

TEST(GuestPidsLimitFromCgroup, NoPidsControllerMeansNoLimit) {
  absl::StatusOr<int64_t> limit = GuestPidsLimitFromCgroup("no-such-cgroup-for-this-test", 3);
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_EQ(*limit, 0);
}

}  // namespace
}  // namespace seedvisor::control
