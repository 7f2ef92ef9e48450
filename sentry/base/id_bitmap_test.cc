#include "sentry/base/id_bitmap.h"

#include <random>
#include <set>

#include "gtest/gtest.h"

namespace seedvisor {
namespace {

int LowestNotIn(const std::set<int>& s, int min) {
  while (s.count(min)) ++min;
  return min;
}

TEST(IdBitmapTest, EmptyReturnsMin) {
  IdBitmap b;
  EXPECT_EQ(b.LowestClear(0), 0);
  EXPECT_EQ(b.LowestClear(12345), 12345);
  EXPECT_FALSE(b.Test(3));
}

TEST(IdBitmapTest, DenseRunCrossesWordsAndLevels) {
  IdBitmap b;
  constexpr int kN = 64 * 64 * 3 + 17;  // three full level-1 words and a bit
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(b.LowestClear(0), i);
    b.Set(i);
  }
  EXPECT_EQ(b.LowestClear(0), kN);
  EXPECT_EQ(b.LowestClear(100), kN);
  b.Clear(4096);
  EXPECT_EQ(b.LowestClear(0), 4096);
  EXPECT_EQ(b.LowestClear(4097), kN);
  b.Set(4096);
  EXPECT_EQ(b.LowestClear(0), kN);
}

TEST(IdBitmapTest, FullCapacityReportsCapacity) {
  IdBitmap b;
  b.Set(0);
  const int cap = b.capacity();
  for (int i = 0; i < cap; ++i) b.Set(i);
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.LowestClear(0), cap);
  EXPECT_EQ(b.LowestClear(cap - 1), cap);
}

TEST(IdBitmapTest, MatchesASetUnderRandomOperations) {
  std::mt19937 rng(16);
  IdBitmap b;
  std::set<int> s;
  for (int step = 0; step < 200000; ++step) {
    const int range = step < 100000 ? 300 : 20000;
    const int id = static_cast<int>(rng() % range);
    switch (rng() % 3) {
      case 0:
        b.Set(id);
        s.insert(id);
        break;
      case 1:
        b.Clear(id);
        s.erase(id);
        break;
      default:
        ASSERT_EQ(b.LowestClear(id), LowestNotIn(s, id)) << "step " << step;
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(b.LowestClear(0), LowestNotIn(s, 0));
    }
  }
  b.ClearAll();
  EXPECT_EQ(b.LowestClear(0), 0);
}

}  // namespace
}  // namespace seedvisor
