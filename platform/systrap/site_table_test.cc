#include "platform/systrap/site_table.h"

#include "gtest/gtest.h"

namespace seedvisor::platform::systrap {
namespace {

constexpr uint64_t kSite = 0x7f0000001000;

TEST(SiteTableTest, EveryBaseGivesEverySlotAValidJump) {
  for (uint64_t r = 0; r < 64; ++r) {
    const uint32_t base = SiteTable::ChooseTableBase(r);
    EXPECT_EQ(base % 0x1000, 0u);
    SiteTable t(base);
    for (int i = 0; i < SiteTable::kMaxSites; ++i) {
      auto s = t.Add(kSite + 8 * i, 39);
      ASSERT_TRUE(s.has_value());
      ASSERT_TRUE(EncodeJump(s->slot).has_value()) << std::hex << s->slot;
      ASSERT_TRUE(EncodeSlot(s->slot, s->id, t.entry_qword()).has_value());
    }
    EXPECT_FALSE(t.Add(kSite + 8 * SiteTable::kMaxSites, 39).has_value());  // full
  }
}

TEST(SiteTableTest, ASiteIsCheckedOnItsSecondTrapOnly) {
  SiteTable t(SiteTable::ChooseTableBase(0));
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kIgnore);
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kCheck);
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kIgnore);
  // Rejected (not `mov $nr,%eax; syscall`): never again, however hot.
  EXPECT_EQ(t.NoteTrap(kSite + 0x107, 39), SiteTable::kIgnore);
  t.Reject(kSite + 0x107);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.NoteTrap(kSite + 0x107, 39), SiteTable::kIgnore);
  // A listed site's traps (the fallback path) are not counted again.
  ASSERT_TRUE(t.Add(kSite, 39).has_value());
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kIgnore);
}

TEST(SiteTableTest, CountingIsBounded) {
  SiteTable t(SiteTable::ChooseTableBase(0));
  for (size_t i = 0; i < SiteTable::kMaxCounted; ++i) t.NoteTrap(kSite + 16 * i, 39);
  const uint64_t late = kSite + 16 * SiteTable::kMaxCounted;
  EXPECT_EQ(t.NoteTrap(late, 39), SiteTable::kIgnore);
  EXPECT_EQ(t.NoteTrap(late, 39), SiteTable::kIgnore);
}

TEST(SiteTableTest, LookupsBySiteBytesIdAndSlot) {
  SiteTable t(SiteTable::ChooseTableBase(3));
  auto a = t.Add(kSite, 39);
  auto b = t.Add(kSite + 0x40, 110);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(t.Add(kSite + 3, 39).has_value());  // overlaps a
  EXPECT_FALSE(t.Add(kSite - 6, 39).has_value());
  EXPECT_EQ(t.Containing(kSite)->id, a->id);
  EXPECT_EQ(t.Containing(kSite + 5)->id, a->id);  // the old `syscall`
  EXPECT_EQ(t.Containing(kSite + 7), nullptr);
  EXPECT_EQ(t.Containing(kSite - 1), nullptr);
  EXPECT_EQ(t.ById(b->id)->nr, 110u);
  uint32_t off = 0;
  EXPECT_EQ(t.BySlotRip(b->slot + kSlotJmpOffset, &off)->id, b->id);
  EXPECT_EQ(off, kSlotJmpOffset);
  EXPECT_EQ(t.BySlotRip(t.base() + SiteTable::kFallbackOffset, &off), nullptr);  // the header
  EXPECT_TRUE(t.InTable(t.fallback_return_rip()));
}

// A `syscall` reached with different numbers is no site of one `mov`:
// never checked, and not among the counted rips a seed patches at once.
TEST(SiteTableTest, ARipThatTrapsWithTwoNumbersIsRejected) {
  SiteTable t(SiteTable::ChooseTableBase(9));
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kIgnore);
  ASSERT_EQ(t.CountedRips().size(), 1u);
  EXPECT_EQ(t.CountedRips()[0].return_rip, kSite + 7);
  EXPECT_EQ(t.CountedRips()[0].nr, 39u);
  EXPECT_EQ(t.NoteTrap(kSite + 7, 110), SiteTable::kIgnore);
  EXPECT_EQ(t.NoteTrap(kSite + 7, 39), SiteTable::kIgnore);
  EXPECT_TRUE(t.CountedRips().empty());
}

TEST(SiteTableTest, RemoveDropsOverlappingSitesAndCountsButNeverReusesSlots) {
  SiteTable t(SiteTable::ChooseTableBase(5));
  auto a = t.Add(kSite, 39);
  auto b = t.Add(kSite + 0x1000, 110);
  t.NoteTrap(kSite + 0x2007, 39);
  ASSERT_TRUE(a && b);
  // One byte of a's site is enough.
  auto dropped = t.Remove(kSite + 6, kSite + 7);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].id, a->id);
  EXPECT_EQ(t.Containing(kSite + 5), nullptr);  // the guest's own bytes again
  ASSERT_NE(t.ById(a->id), nullptr);            // its slot is still there
  EXPECT_EQ(t.ById(a->id)->addr, kSite);
  EXPECT_EQ(t.Remove(kSite + 7, kSite + 0x1000).size(), 0u);  // ends where b starts
  // The counted rip's bytes lie in [kSite + 0x2000, kSite + 0x2007): counting restarts.
  t.Remove(kSite + 0x2000, kSite + 0x2001);
  EXPECT_EQ(t.NoteTrap(kSite + 0x2007, 39), SiteTable::kIgnore);
  EXPECT_EQ(t.NoteTrap(kSite + 0x2007, 39), SiteTable::kCheck);
  auto c = t.Add(kSite, 39);
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->slot, a->slot);  // a thread may still be inside a's slot
  EXPECT_EQ(t.size(), 2u);
}

TEST(SiteTableTest, RemovedContainingFindsOnlyAnUnlistedSite) {
  SiteTable t(SiteTable::ChooseTableBase(7));
  auto a = t.Add(kSite, 39);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(t.RemovedContaining(kSite + 5), nullptr);  // listed
  t.Remove(kSite, kSite + 1);
  ASSERT_NE(t.RemovedContaining(kSite + 5), nullptr);
  EXPECT_EQ(t.RemovedContaining(kSite + 5)->id, a->id);
  EXPECT_EQ(t.RemovedContaining(kSite + 7), nullptr);
  auto b = t.Add(kSite, 40);  // listed again: that one answers
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(t.RemovedContaining(kSite), nullptr);
  EXPECT_EQ(t.Containing(kSite)->id, b->id);
}

TEST(SiteTableTest, ForkCopiesTheTable) {
  SiteTable parent(SiteTable::ChooseTableBase(1));
  auto a = parent.Add(kSite, 39);
  ASSERT_TRUE(a.has_value());
  SiteTable child = parent;
  child.Remove(kSite, kSite + 1);
  EXPECT_NE(parent.Containing(kSite), nullptr);
  EXPECT_EQ(child.Containing(kSite), nullptr);
  auto c = child.Add(kSite, 39);
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->id, a->id);
}

class TranslateTest : public ::testing::Test {
 protected:
  TranslateTest() : t_(SiteTable::ChooseTableBase(2)) {
    t_.Add(kSite - 0x100, 1);
    s_ = *t_.Add(kSite, 110);
  }
  SiteAction Run(SiteEventKind k, uint64_t rip, uint64_t rax) {
    return TranslateSiteEvent(t_, k, rip, rax);
  }
  SiteTable t_;
  SiteTable::Site s_;
};

TEST_F(TranslateTest, IllegalAtTheSite) {
  SiteAction a = Run(SiteEventKind::kIllegal, kSite, 0);  // mid-rewrite
  EXPECT_EQ(a.kind, SiteAction::kResumeAt);
  EXPECT_EQ(a.rip, kSite);
  EXPECT_FALSE(a.set_rax);
  a = Run(SiteEventKind::kIllegal, kSite + 5, 219);  // restart_syscall after rip -= 2
  EXPECT_EQ(a.kind, SiteAction::kSyscall);
  EXPECT_EQ(a.nr, 219u);
  EXPECT_EQ(a.rip, kSite + 7);
  EXPECT_EQ(Run(SiteEventKind::kIllegal, kSite + 2, 110).kind, SiteAction::kNone);
  EXPECT_EQ(Run(SiteEventKind::kIllegal, kSite + 0x50, 110).kind, SiteAction::kNone);
}

TEST_F(TranslateTest, TheFallbackSyscallIsTheSites) {
  SiteAction a = Run(SiteEventKind::kSeccompTrap, t_.fallback_return_rip(), s_.id);
  EXPECT_EQ(a.kind, SiteAction::kSyscall);
  EXPECT_EQ(a.nr, 110u);
  EXPECT_EQ(a.rip, kSite + 7);
  // A guest that jumped there with a number that is no site's id.
  EXPECT_EQ(Run(SiteEventKind::kSeccompTrap, t_.fallback_return_rip(), 400).kind,
            SiteAction::kNone);
  // A trap anywhere else is an ordinary syscall.
  EXPECT_EQ(Run(SiteEventKind::kSeccompTrap, kSite + 7, 110).kind, SiteAction::kNone);
}

TEST_F(TranslateTest, InterruptsInsideTheSlotLookLikeTheSite) {
  SiteAction a = Run(SiteEventKind::kInterrupt, s_.slot + kSlotMovOffset, 77);
  EXPECT_EQ(a.kind, SiteAction::kResumeAt);
  EXPECT_EQ(a.rip, kSite);  // before the jump: nothing changed yet
  EXPECT_FALSE(a.set_rax);
  a = Run(SiteEventKind::kInterrupt, s_.slot + kSlotJmpOffset, s_.id);
  EXPECT_EQ(a.kind, SiteAction::kResumeAt);
  EXPECT_EQ(a.rip, kSite + 5);  // after the old `mov`
  EXPECT_TRUE(a.set_rax);
  EXPECT_EQ(a.nr, 110u);
  a = Run(SiteEventKind::kInterrupt, t_.fallback_return_rip() - 2, s_.id);
  EXPECT_EQ(a.kind, SiteAction::kSyscall);  // rcx and r11 are spent: the syscall has begun
  EXPECT_EQ(a.nr, 110u);
  EXPECT_EQ(a.rip, kSite + 7);
  EXPECT_EQ(Run(SiteEventKind::kInterrupt, kSite + 7, 0).kind, SiteAction::kNone);
}

TEST_F(TranslateTest, SteppingTheJumpRunsTheSyscall) {
  SiteAction a = Run(SiteEventKind::kSingleStep, s_.slot + kSlotMovOffset, 0);
  EXPECT_EQ(a.kind, SiteAction::kSyscall);
  EXPECT_EQ(a.nr, 110u);
  EXPECT_EQ(a.rip, kSite + 7);
  EXPECT_EQ(Run(SiteEventKind::kSingleStep, kSite + 7, 0).kind, SiteAction::kNone);
}

TEST_F(TranslateTest, ARemovedSiteKeepsItsSlotButNotItsBytes) {
  t_.Remove(kSite, kSite + 7);
  // The bytes at the site are the guest's own again: a SIGILL there is its.
  EXPECT_EQ(Run(SiteEventKind::kIllegal, kSite + 5, 110).kind, SiteAction::kNone);
  // A thread that was already in the slot (unpatched under it by mprotect,
  // madvise or a guest tracer) finishes the jump it took: the syscall, then
  // back to the site's end, as the old code past its `mov` would.
  SiteAction a = Run(SiteEventKind::kInterrupt, s_.slot + kSlotJmpOffset, s_.id);
  EXPECT_EQ(a.kind, SiteAction::kResumeAt);
  EXPECT_EQ(a.rip, kSite + 5);
  EXPECT_EQ(Run(SiteEventKind::kSeccompTrap, t_.fallback_return_rip(), s_.id).kind,
            SiteAction::kSyscall);
}

}  // namespace
}  // namespace seedvisor::platform::systrap
