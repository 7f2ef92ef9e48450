#include "sentry/mm/vma_map.h"

#include <sys/mman.h>

#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kLo = 0x10000, kHi = 0x7f0000000000;

Vma Anon(uint64_t start, uint64_t end, int prot = PROT_READ) {
  Vma v;
  v.start = start;
  v.end = end;
  v.prot = prot;
  v.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  return v;
}

// What HighestFree must answer, by walking every VMA.
std::optional<uint64_t> SlowHighestFree(const VmaMap& m, uint64_t len, uint64_t below) {
  uint64_t end = below;
  for (auto it = m.lower_bound(below);;) {
    uint64_t gap_start = kLo;
    if (it != m.begin()) gap_start = std::max(kLo, std::prev(it)->second.end);
    if (end > gap_start && end - gap_start >= len) return end - len;
    if (it == m.begin()) return std::nullopt;
    --it;
    end = std::min(end, it->first);
  }
}

TEST(GapTreeTest, HighestFitClipsAtTheBoundAndSkipsSmallGaps) {
  GapTree g;
  g.Insert(0x1000, 0x2000);
  g.Insert(0x3000, 0x8000);
  g.Insert(0x9000, 0xa000);
  EXPECT_EQ(g.HighestFit(0x1000, 0x10000), 0x9000u);
  EXPECT_EQ(g.HighestFit(0x2000, 0x10000), 0x6000u);
  EXPECT_EQ(g.HighestFit(0x2000, 0x5000), 0x3000u);
  EXPECT_EQ(g.HighestFit(0x3000, 0x5000), std::nullopt);
  EXPECT_EQ(g.HighestFit(0x1000, 0x2800), 0x1000u);
  g.Erase(0x3000);
  EXPECT_EQ(g.HighestFit(0x2000, 0x10000), std::nullopt);
  EXPECT_EQ(g.size(), 2u);
}

TEST(VmaMapTest, AdjacentAnonymousMappingsMerge) {
  VmaMap m(kLo, kHi);
  m.Insert(Anon(0x100000, 0x101000));
  m.Insert(Anon(0x101000, 0x102000));
  m.Insert(Anon(0x0ff000, 0x100000));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.begin()->second.start, 0x0ff000u);
  EXPECT_EQ(m.begin()->second.end, 0x102000u);
  // A different protection splits, and restoring it merges again.
  m.SetProt(0x100000, 0x101000, PROT_READ | PROT_WRITE);
  EXPECT_EQ(m.size(), 3u);
  m.SetProt(0x100000, 0x101000, PROT_READ);
  EXPECT_EQ(m.size(), 1u);
  // Shared anonymous mappings are separate objects: never merged.
  Vma s = Anon(0x200000, 0x201000);
  s.flags = MAP_SHARED | MAP_ANONYMOUS;
  m.Insert(s);
  s.start = 0x201000;
  s.end = 0x202000;
  m.Insert(s);
  EXPECT_EQ(m.size(), 3u);
}

TEST(VmaMapTest, AlternatingProtectionsStaySeparateAndPlacementIsTopDown) {
  VmaMap m(kLo, kHi);
  uint64_t below = 0x40000000;
  for (int i = 0; i < 1000; ++i) {
    std::optional<uint64_t> a = m.HighestFree(kPage, below);
    ASSERT_TRUE(a);
    ASSERT_EQ(*a, below - (i + 1) * kPage);
    m.Insert(Anon(*a, *a + kPage, i % 2 ? PROT_READ : PROT_NONE));
  }
  EXPECT_EQ(m.size(), 1000u);
  // Unmapping one in the middle leaves the only hole that fits there.
  m.RemoveRange(below - 500 * kPage, below - 499 * kPage);
  EXPECT_EQ(m.HighestFree(kPage, below), below - 500 * kPage);
  EXPECT_EQ(m.HighestFree(2 * kPage, below), below - 1002 * kPage);
}

TEST(VmaMapTest, MatchesAWalkUnderRandomOperations) {
  std::mt19937_64 rng(16);
  VmaMap m(kLo, kHi);
  const uint64_t base = 0x10000000;
  for (int step = 0; step < 20000; ++step) {
    const uint64_t start = base + (rng() % 2048) * kPage;
    const uint64_t len = (1 + rng() % 8) * kPage;
    switch (rng() % 4) {
      case 0:
        m.RemoveRange(start, start + len);
        m.Insert(Anon(start, start + len, static_cast<int>(rng() % 2)));
        break;
      case 1:
        m.RemoveRange(start, start + len);
        break;
      case 2:
        if (!m.RangeFree(start, start + len) && m.find(start) != m.end()) {
          const Vma& v = m.find(start)->second;
          m.SetProt(v.start, v.end, static_cast<int>(rng() % 2));
        }
        break;
      default: {
        const uint64_t below = base + (rng() % 2200) * kPage;
        ASSERT_EQ(m.HighestFree(len, below), SlowHighestFree(m, len, below)) << "step " << step;
      }
    }
    // Never two mergeable neighbours; never an overlap.
    if (step % 500 == 0) {
      for (auto it = m.begin(); it != m.end(); ++it) {
        auto next = std::next(it);
        if (next == m.end()) break;
        ASSERT_LE(it->second.end, next->first);
        ASSERT_FALSE(it->second.end == next->first && it->second.prot == next->second.prot);
      }
    }
  }
}

// locked_bytes() (VmLck) against a walk, under inserts, removals, lock
// changes of part of a VMA and growth in place.
TEST(VmaMapTest, LockedBytesMatchesAWalk) {
  std::mt19937_64 rng(13);
  VmaMap m(kLo, kHi);
  const uint64_t base = 0x10000000;
  for (int step = 0; step < 20000; ++step) {
    const uint64_t start = base + (rng() % 512) * kPage;
    const uint64_t len = (1 + rng() % 8) * kPage;
    switch (rng() % 4) {
      case 0: {
        m.RemoveRange(start, start + len);
        Vma v = Anon(start, start + len, 1);
        v.lock = static_cast<uint8_t>(rng() % 2);
        m.Insert(v);
        break;
      }
      case 1:
        m.RemoveRange(start, start + len);
        break;
      case 2: {
        auto it = m.upper_bound(start);
        if (it == m.begin()) break;
        const Vma& v = std::prev(it)->second;
        if (v.end <= start) break;
        const uint8_t lock = static_cast<uint8_t>(rng() % 4 == 0 ? 0 : 1 + 2 * (rng() % 2));
        m.Modify(start, std::min(v.end, start + len), [lock](Vma& w) { w.lock = lock; });
        break;
      }
      default: {
        auto it = m.find(start);
        if (it != m.end() && m.RangeFree(it->second.end, it->second.end + kPage)) {
          m.SetEnd(it, it->second.end + kPage);
        }
      }
    }
    uint64_t walk = 0;
    for (const auto& [a, v] : m) walk += (v.lock & Vma::kLocked) ? v.end - v.start : 0;
    ASSERT_EQ(m.locked_bytes(), walk) << "step " << step;
  }
}

}  // namespace
}  // namespace seedvisor::sentry
