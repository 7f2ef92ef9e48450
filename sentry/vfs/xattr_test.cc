#include "sentry/vfs/xattr.h"

#include <sys/xattr.h>

#include "gtest/gtest.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {
namespace {

TEST(XattrMap, CreateReplaceRemove) {
  XattrMap x;
  EXPECT_EQ(x.Get("user.a").error(), Errno(ENODATA));
  EXPECT_EQ(x.Set("user.a", "1", XATTR_REPLACE).error(), Errno(ENODATA));
  ASSERT_TRUE(x.Set("user.a", "1", XATTR_CREATE).ok());
  EXPECT_EQ(x.Set("user.a", "2", XATTR_CREATE).error(), Errno(EEXIST));
  ASSERT_TRUE(x.Set("user.a", "3", XATTR_REPLACE).ok());
  ASSERT_TRUE(x.Set("user.0", "", 0).ok());
  EXPECT_EQ(*x.Get("user.a"), "3");
  EXPECT_EQ(x.List(), (std::vector<std::string>{"user.0", "user.a"}));
  ASSERT_TRUE(x.Remove("user.a").ok());
  EXPECT_EQ(x.Remove("user.a").error(), Errno(ENODATA));
  EXPECT_EQ(x.List(), std::vector<std::string>{"user.0"});
}

// Attributes set through the overlay live on the upper tmpfs node; an
// upper-only file keeps them across lookups.
TEST(XattrMap, OverlayStoresInUpper) {
  auto upper = NewTmpfs(0755);
  auto root = NewOverlay(upper, nullptr);
  FsCreds c;
  ASSERT_TRUE(root->Create("f", 0644, c).ok());
  auto f = root->Lookup("f");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->SetXattr("user.k", "v", 0).ok());
  auto again = root->Lookup("f");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->GetXattr("user.k"), "v");
  EXPECT_EQ(*(*upper->LookupNode("f"))->GetXattr("user.k"), "v");
  ASSERT_TRUE((*again)->RemoveXattr("user.k").ok());
  EXPECT_TRUE((*(*again)->ListXattr()).empty());
}

}  // namespace
}  // namespace seedvisor::sentry
