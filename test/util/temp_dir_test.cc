#include "test/util/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace seedvisor::testutil {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

TEST(ScopedTempDirTest, MadeUnderTestTmpdirAndRemovedWithItsContents) {
  std::string path;
  {
    ScopedTempDir dir("temp_dir_test");
    path = dir.path();
    EXPECT_EQ(path.rfind(TestTmpRoot() + "/temp_dir_test.", 0), 0u) << path;
    ASSERT_EQ(mkdir(dir.Path("sub").c_str(), 0755), 0);
    std::ofstream(dir.Path("sub/file")) << "x";
    ASSERT_EQ(symlink("/", dir.Path("root-link").c_str()), 0);
    // An unreadable directory must not stop the removal.
    ASSERT_EQ(mkdir(dir.Path("locked").c_str(), 0755), 0);
    std::ofstream(dir.Path("locked/file")) << "y";
    ASSERT_EQ(chmod(dir.Path("locked").c_str(), 0), 0);
  }
  EXPECT_FALSE(Exists(path)) << path;
  EXPECT_TRUE(Exists("/etc")) << "the symlink to / was followed";
}

TEST(ScopedTempDirTest, ShortIsUnderTmp) {
  std::string path;
  {
    ScopedTempDir dir = ScopedTempDir::Short("temp_dir_test");
    path = dir.path();
    EXPECT_EQ(path.rfind("/tmp/temp_dir_test.", 0), 0u) << path;
    EXPECT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path)) << path;
}

TEST(ScopedTempDirTest, MoveHandsOverTheDirectory) {
  ScopedTempDir a("temp_dir_test");
  const std::string path = a.path();
  ScopedTempDir b = std::move(a);
  EXPECT_EQ(b.path(), path);
  EXPECT_TRUE(a.path().empty());
  ScopedTempDir c("temp_dir_test");
  const std::string replaced = c.path();
  c = std::move(b);
  EXPECT_FALSE(Exists(replaced)) << "assigning over a directory removes it";
  EXPECT_TRUE(Exists(path));
}

TEST(ScopedTempDirTest, NewPathNamesDiffer) {
  ScopedTempDir dir("temp_dir_test");
  const std::string a = dir.NewPath("out");
  const std::string b = dir.NewPath("out");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind(dir.path() + "/out", 0), 0u);
  EXPECT_FALSE(Exists(a));
}

}  // namespace
}  // namespace seedvisor::testutil
