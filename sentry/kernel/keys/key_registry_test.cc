#include "sentry/kernel/keys/key_registry.h"

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

constexpr uint32_t kPerm = kKeyPosAll | 0x00010000;

std::shared_ptr<Key> NewKeyring(KeyRegistry& r, const std::string& desc, uid_t uid = 1000) {
  auto k = r.Alloc(&kKeyTypeKeyring, desc, uid, uid, kPerm, KeyQuota::kCharge);
  EXPECT_TRUE(k.ok());
  EXPECT_TRUE(r.Instantiate(**k, "").ok());
  return *k;
}

TEST(KeyRegistryTest, QuotaChargesDescriptionPayloadAndLinksAndGivesThemBack) {
  KeyRegistry r;
  std::lock_guard l(r.mu());
  auto ring = NewKeyring(r, "ring");  // 5 bytes
  auto user = r.Alloc(&kKeyTypeUser, "k", 1000, 1000, kPerm, KeyQuota::kCharge);
  ASSERT_TRUE(user.ok());
  ASSERT_TRUE(r.Instantiate(**user, std::string(10, 'x')).ok());  // 2 + 10
  ASSERT_TRUE(r.Link(*ring, *user).ok());                          // + 4
  EXPECT_NE(r.KeyUsersText().find(" 1000:     3 2/2 2/200 21/20000"), std::string::npos)
      << r.KeyUsersText();
  const int32_t serial = (*user)->serial;
  user->reset();
  ASSERT_TRUE(r.Find(serial) != nullptr);  // the keyring holds it
  r.Clear(*ring);
  EXPECT_EQ(r.Find(serial), nullptr);
  EXPECT_NE(r.KeyUsersText().find(" 1000:     2 1/1 1/200 5/20000"), std::string::npos)
      << r.KeyUsersText();
}

TEST(KeyRegistryTest, AllocPastMaxKeysIsEdquot) {
  KeyRegistry r;
  r.limits().maxkeys = 2;
  std::lock_guard l(r.mu());
  auto a = NewKeyring(r, "a");
  auto b = NewKeyring(r, "b");
  auto c = r.Alloc(&kKeyTypeKeyring, "c", 1000, 1000, kPerm, KeyQuota::kCharge);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().value(), EDQUOT);
  // A task's own keyrings overrun the quota and still count.
  EXPECT_TRUE(r.Alloc(&kKeyTypeKeyring, "_tid", 1000, 1000, kPerm, KeyQuota::kOverrun).ok());
}

TEST(KeyRegistryTest, LinkReplacesSameDescriptionAndRefusesCycles) {
  KeyRegistry r;
  std::lock_guard l(r.mu());
  auto top = NewKeyring(r, "top");
  auto mid = NewKeyring(r, "mid");
  auto mid2 = NewKeyring(r, "mid");
  ASSERT_TRUE(r.Link(*top, mid).ok());
  ASSERT_TRUE(r.Link(*top, mid2).ok());
  ASSERT_EQ(top->links.size(), 1u);
  EXPECT_EQ(top->links[0], mid2);
  EXPECT_EQ(r.Link(*mid2, top).error().value(), EDEADLK);
  EXPECT_EQ(r.Link(*top, top).error().value(), EDEADLK);
  EXPECT_EQ(r.Unlink(*mid2, *top).error().value(), ENOENT);
  EXPECT_TRUE(r.Unlink(*top, *mid2).ok());
  EXPECT_TRUE(top->links.empty());
}

TEST(KeyRegistryTest, InvalidatedKeyLeavesEveryKeyring) {
  KeyRegistry r;
  std::lock_guard l(r.mu());
  auto a = NewKeyring(r, "a");
  auto b = NewKeyring(r, "b");
  auto k = r.Alloc(&kKeyTypeUser, "k", 1000, 1000, kPerm, KeyQuota::kCharge);
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(r.Instantiate(**k, "v").ok());
  ASSERT_TRUE(r.Link(*a, *k).ok());
  ASSERT_TRUE(r.Link(*b, *k).ok());
  r.Invalidate(**k);
  EXPECT_TRUE(a->links.empty());
  EXPECT_TRUE(b->links.empty());
}

TEST(KeyRegistryTest, UserKeyringsAreMadeOnceAndLinked) {
  KeyRegistry r;
  std::lock_guard l(r.mu());
  EXPECT_EQ(r.ExistingUserKeyring(5, false), nullptr);
  auto u = r.UserKeyring(5, false);
  auto s = r.UserKeyring(5, true);
  ASSERT_TRUE(u.ok() && s.ok());
  EXPECT_EQ((*u)->description, "_uid.5");
  EXPECT_EQ((*s)->description, "_uid_ses.5");
  EXPECT_EQ((*s)->links.at(0), *u);
  EXPECT_EQ(*r.UserKeyring(5, false), *u);
  // Not found by name (add_key03: another user cannot forge them).
  Credentials root;
  EXPECT_EQ(r.FindKeyringByName("_uid.5", root), nullptr);
}

}  // namespace
}  // namespace seedvisor::sentry
