#include "seedd/seed_budget.h"

#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

absl::Duration T(int s) { return absl::Seconds(s); }  // MonotonicNow() values

TEST(EvictionOrder, LeastRecentlyUsedFirst) {
  EXPECT_EQ(EvictionOrder({T(5), T(9), T(1)}), (std::vector<size_t>{2, 0, 1}));
  EXPECT_EQ(EvictionOrder({T(3), T(3), T(2)}), (std::vector<size_t>{2, 0, 1})) << "ties keep their order";
  EXPECT_TRUE(EvictionOrder({}).empty());
}

}  // namespace
}  // namespace seedvisor::seedd
