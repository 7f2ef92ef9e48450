#include "sentry/base/sweep_schedule.h"

#include <map>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace seedvisor {
namespace {

using Table = std::map<int, std::weak_ptr<int>>;

bool Gone(const Table::value_type& e) { return e.second.expired(); }

TEST(SweepScheduleTest, NothingIsDueBelowTwiceTheFloor) {
  SweepSchedule s(4);
  EXPECT_FALSE(s.Due(0));
  EXPECT_FALSE(s.Due(7));
  EXPECT_TRUE(s.Due(8));
}

TEST(SweepScheduleTest, ASweepIsDueWhenTheTableHasDoubledSinceTheLast) {
  SweepSchedule s(4);
  s.Swept(20);
  EXPECT_FALSE(s.Due(39));
  EXPECT_TRUE(s.Due(40));
  // A sweep that left the table small falls back to the floor.
  s.Swept(1);
  EXPECT_FALSE(s.Due(7));
  EXPECT_TRUE(s.Due(8));
}

TEST(SweepScheduleTest, SweepIfDueErasesOnlyWhatIsGoneAndOnlyWhenDue) {
  SweepSchedule s(2);
  Table table;
  std::vector<std::shared_ptr<int>> alive;
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_shared<int>(i);
    table[i] = p;
    if (i == 0) alive.push_back(p);
  }
  // 3 entries, 2 of them gone: not yet due (floor 2 -> 4 entries).
  EXPECT_FALSE(s.SweepIfDue(table, Gone));
  EXPECT_EQ(table.size(), 3u);
  table[3] = std::weak_ptr<int>();
  EXPECT_TRUE(s.SweepIfDue(table, Gone));
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table.begin()->first, 0);
  // The next sweep waits for 2 * max(1, floor) = 4 entries again.
  table[5] = std::weak_ptr<int>();
  table[6] = std::weak_ptr<int>();
  EXPECT_FALSE(s.SweepIfDue(table, Gone));
  table[7] = std::weak_ptr<int>();
  EXPECT_TRUE(s.SweepIfDue(table, Gone));
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace seedvisor
