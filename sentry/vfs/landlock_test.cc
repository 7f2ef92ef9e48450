#include "sentry/vfs/landlock.h"

#include "gtest/gtest.h"
#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {
namespace {

// A tmpfs mount with /a/f, /b/f and /c.
class LandlockCheckTest : public testing::Test {
 protected:
  void SetUp() override {
    FsCreds c;
    for (const char* d : {"a", "b", "c"}) ASSERT_TRUE(mount_.root()->inode()->Mkdir(d, 0755, c).ok());
    for (const char* d : {"a", "b"}) ASSERT_TRUE(Get(d)->inode()->Create("f", 0644, c).ok());
  }
  DentryRef Get(std::string_view path) {
    DentryRef d = mount_.root();
    size_t pos = 0;
    while (pos < path.size()) {
      size_t end = path.find('/', pos);
      if (end == std::string_view::npos) end = path.size();
      auto child = d->Child(path.substr(pos, end - pos));
      EXPECT_TRUE(child.ok()) << path;
      if (!child.ok()) return d;
      d = *child;
      pos = end + 1;
    }
    return d;
  }
  Mount mount_{"tmpfs", "none", "rw", NewTmpfs(0755)};
};

TEST_F(LandlockCheckTest, RuleCoversItsSubtreeOnly) {
  LandlockRuleset rs(kLandlockAccessFsReadFile | kLandlockAccessFsWriteFile);
  ASSERT_TRUE(rs.AddRule(Get("a"), kLandlockAccessFsReadFile).ok());
  auto dom = LandlockDomain::Restrict(nullptr, rs);
  ASSERT_TRUE(dom.ok());
  const LandlockDomain* d = dom->get();
  EXPECT_TRUE(LandlockCheckPath(d, Get("a/f"), kLandlockAccessFsReadFile).ok());
  EXPECT_EQ(LandlockCheckPath(d, Get("a/f"), kLandlockAccessFsWriteFile).error(), Errno(EACCES));
  EXPECT_EQ(LandlockCheckPath(d, Get("b/f"), kLandlockAccessFsReadFile).error(), Errno(EACCES));
  // Rights the domain does not handle are never denied.
  EXPECT_TRUE(LandlockCheckPath(d, Get("b/f"), kLandlockAccessFsMakeDir).ok());
  EXPECT_EQ(LandlockAllowed(d, Get("a/f"), kLandlockAccessFsReadFile | kLandlockAccessFsWriteFile),
            kLandlockAccessFsReadFile);
  EXPECT_TRUE(LandlockCheckPath(nullptr, Get("b/f"), kLandlockAccessFsReadFile).ok());
}

TEST_F(LandlockCheckTest, AddRuleErrnosAndLimits) {
  LandlockRuleset rs(kLandlockAccessFsReadFile | kLandlockAccessFsReadDir);
  EXPECT_EQ(rs.AddRule(Get("a"), 0).error(), Errno(ENOMSG));
  EXPECT_EQ(rs.AddRule(Get("a"), kLandlockAccessFsWriteFile).error(), Errno(EINVAL));
  EXPECT_EQ(rs.AddRule(Get("a/f"), kLandlockAccessFsReadDir).error(), Errno(EINVAL));
  ASSERT_TRUE(rs.AddRule(Get("a/f"), kLandlockAccessFsReadFile).ok());
  std::shared_ptr<const LandlockDomain> dom;
  for (size_t i = 0; i < kLandlockMaxLayers; ++i) {
    auto next = LandlockDomain::Restrict(dom, rs);
    ASSERT_TRUE(next.ok()) << i;
    dom = *next;
  }
  EXPECT_EQ(dom->layers(), kLandlockMaxLayers);
  EXPECT_EQ(LandlockDomain::Restrict(dom, rs).error(), Errno(E2BIG));
}

TEST_F(LandlockCheckTest, EveryLayerMustAllow) {
  LandlockRuleset wide(kLandlockAccessFsReadFile);
  LandlockRuleset narrow(kLandlockAccessFsReadFile);
  ASSERT_TRUE(wide.AddRule(mount_.root(), kLandlockAccessFsReadFile).ok());
  ASSERT_TRUE(narrow.AddRule(Get("a"), kLandlockAccessFsReadFile).ok());
  auto one = LandlockDomain::Restrict(nullptr, wide);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(LandlockCheckPath(one->get(), Get("b/f"), kLandlockAccessFsReadFile).ok());
  auto two = LandlockDomain::Restrict(*one, narrow);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(LandlockCheckPath(two->get(), Get("b/f"), kLandlockAccessFsReadFile).error(),
            Errno(EACCES));
  EXPECT_TRUE(LandlockCheckPath(two->get(), Get("a/f"), kLandlockAccessFsReadFile).ok());
}

TEST_F(LandlockCheckTest, ReferNeedsRightsAndNoGain) {
  const uint64_t mk = kLandlockAccessFsMakeReg | kLandlockAccessFsRemoveFile;
  LandlockRuleset rs(kLandlockAccessFsReadFile | kLandlockAccessFsRefer | mk);
  ASSERT_TRUE(rs.AddRule(Get("a"), kLandlockAccessFsRefer | mk).ok());
  ASSERT_TRUE(rs.AddRule(Get("b"), kLandlockAccessFsRefer | mk | kLandlockAccessFsReadFile).ok());
  ASSERT_TRUE(rs.AddRule(Get("c"), mk).ok());
  auto dom = LandlockDomain::Restrict(nullptr, rs);
  ASSERT_TRUE(dom.ok());
  const LandlockDomain* d = dom->get();
  // Same directory: no REFER needed.
  EXPECT_TRUE(LandlockCheckRefer(d, Get("a"), Get("a/f"), Get("a"), nullptr, true, false).ok());
  // a -> b would gain READ_FILE.
  EXPECT_EQ(LandlockCheckRefer(d, Get("a"), Get("a/f"), Get("b"), nullptr, true, false).error(),
            Errno(EXDEV));
  // b -> a loses it: allowed.
  EXPECT_TRUE(LandlockCheckRefer(d, Get("b"), Get("b/f"), Get("a"), nullptr, true, false).ok());
  // c has no REFER.
  EXPECT_EQ(LandlockCheckRefer(d, Get("b"), Get("b/f"), Get("c"), nullptr, true, false).error(),
            Errno(EXDEV));
  // The root lets nothing be made: EACCES first.
  EXPECT_EQ(LandlockCheckRefer(d, Get("a"), Get("a/f"), mount_.root(), nullptr, false, false)
                .error(),
            Errno(EACCES));
  // An exchange with nothing there.
  EXPECT_EQ(LandlockCheckRefer(d, Get("a"), Get("a/f"), Get("b"), nullptr, true, true).error(),
            Errno(ENOENT));
}

}  // namespace
}  // namespace seedvisor::sentry
