#include "sentry/fs/overlay/inode_numbers.h"

#include <set>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

TEST(InodeNumbersTest, TheRootDevicesNumbersShowUnchanged) {
  InodeNumbers n(0xfe00);
  EXPECT_EQ(n.Fold(0xfe00, 2), 2u);
  EXPECT_EQ(n.Fold(0xfe00, 123456789), 123456789u);
}

TEST(InodeNumbersTest, OneNumberPerObjectAcrossDevices) {
  InodeNumbers n(0xfe00);
  std::set<ino_t> seen;
  // Every file system's root and first files: the same host numbers.
  for (dev_t dev : {dev_t{0xfe00}, dev_t{0x19}, dev_t{0x1a}, dev_t{0x800001}, dev_t{0x801}}) {
    for (ino_t ino : {1, 2, 3, 128}) {
      EXPECT_TRUE(seen.insert(n.Fold(dev, ino)).second) << dev << " " << ino;
    }
  }
  // Upper-only objects are apart from all of them.
  for (ino_t ino : {1, 2, 3, 128}) {
    EXPECT_TRUE(seen.insert(InodeNumbers::Upper(ino)).second) << ino;
  }
}

TEST(InodeNumbersTest, StableAndTheSameInAnotherOverlay) {
  InodeNumbers a(0xfe00);
  InodeNumbers b(0xfe00);
  const ino_t first = a.Fold(0x19, 1);
  (void)a.Fold(0x1a, 1);
  EXPECT_EQ(a.Fold(0x19, 1), first);
  // Seen in another order elsewhere: the same number (no collision here).
  (void)b.Fold(0x1a, 7);
  EXPECT_EQ(b.Fold(0x19, 1), first);
}

TEST(InodeNumbersTest, NumbersThatDoNotFitAreNumberedApart) {
  InodeNumbers n(0xfe00);
  const ino_t big = ino_t{1} << 50;
  std::set<ino_t> seen;
  for (dev_t dev : {dev_t{0xfe00}, dev_t{0x19}}) {
    for (ino_t ino : {big, big + 1, big | 1}) {
      seen.insert(n.Fold(dev, ino));
    }
  }
  EXPECT_EQ(seen.size(), 4u);  // big | 1 == big + 1
  EXPECT_EQ(n.Fold(0x19, big + 1), n.Fold(0x19, big | 1));
  EXPECT_EQ(n.Fold(0x19, big) >> InodeNumbers::kShift, InodeNumbers::kSpillIndex);
  EXPECT_EQ(seen.count(n.Fold(0x19, 1)), 0u);
}

TEST(InodeNumbersTest, ManyDevicesNeverShareANumber) {
  InodeNumbers n(std::nullopt);
  std::set<ino_t> seen;
  // More devices than indexes: the last ones spill, still apart.
  for (dev_t dev = 1; dev <= 0x10010; ++dev) {
    ASSERT_TRUE(seen.insert(n.Fold(dev, 2)).second) << dev;
  }
}

}  // namespace
}  // namespace seedvisor::sentry
