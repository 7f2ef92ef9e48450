// Against the host's kernel (needs root and the cgroup v1 filesystem; skips
// without). Each test mounts a hierarchy of a name of its own under a
// directory of its own and unmounts it.
#include "seedd/cgroup_favor.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A fresh directory under $TEST_TMPDIR (or /tmp) for a mount point.
std::string Dir(const char* what) {
  const char* tmp = getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/favor-", what, "-", getpid());
}

// How many mounts /proc/self/mountinfo shows at `dir`.
int MountsAt(const std::string& dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    if (absl::StrContains(line, absl::StrCat(" ", dir, " "))) ++n;
  }
  return n;
}

bool CanMountCgroups() {
  return geteuid() == 0 && absl::StrContains(Slurp("/proc/filesystems"), "\tcgroup\n");
}

TEST(CgroupFavorTest, MountsWithFavordynmodsAndUnmounts) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = absl::StrCat("seedd_favor_test_", getpid());
  CgroupFavor f({.dir = Dir("a"), .name = name});
  ASSERT_FALSE(f.Active());
  absl::Status s = f.Start();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(f.Active());
  // The kernel's own word: the mount's options, and every process in the
  // new hierarchy's root (nobody is moved there).
  EXPECT_EQ(MountsAt(Dir("a")), 1);
  EXPECT_TRUE(absl::StrContains(Slurp("/proc/self/cgroup"), absl::StrCat(":name=", name, ":/\n")));
  f.Stop();
  EXPECT_FALSE(f.Active());
  EXPECT_EQ(MountsAt(Dir("a")), 0);
  EXPECT_NE(access(Dir("a").c_str(), F_OK), 0) << "the mount point stays behind";
}

// A seedd killed before it unmounted: the next one's Start replaces that
// mount instead of stacking a second one on it.
TEST(CgroupFavorTest, ReplacesTheMountAnEarlierRunLeft) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = absl::StrCat("seedd_favor_test_", getpid());
  auto left = std::make_unique<CgroupFavor>(CgroupFavorOptions{.dir = Dir("b"), .name = name});
  ASSERT_TRUE(left->Start().ok());
  left.release();  // leaks the object (and its mount) as a SIGKILLed seedd would
  CgroupFavor next({.dir = Dir("b"), .name = name});
  ASSERT_TRUE(next.Start().ok());
  EXPECT_EQ(MountsAt(Dir("b")), 1);
  next.Stop();
  EXPECT_EQ(MountsAt(Dir("b")), 0);
}

// A hierarchy of that name the kernel already has without favordynmods is
// reused as it is (cgroup1_root_to_use ignores the new options): Start says
// so instead of claiming the switch is on.
TEST(CgroupFavorTest, RefusesAHierarchyWithoutTheFlag) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = absl::StrCat("seedd_favor_plain_", getpid());
  const std::string plain = Dir("plain");
  ASSERT_EQ(mkdir(plain.c_str(), 0700), 0);
  const std::string opts = absl::StrCat("none,name=", name);
  ASSERT_EQ(mount("cgroup", plain.c_str(), "cgroup", 0, opts.c_str()), 0);
  CgroupFavor f({.dir = Dir("c"), .name = name});
  absl::Status s = f.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "does not show favordynmods")) << s;
  EXPECT_FALSE(f.Active());
  EXPECT_EQ(MountsAt(Dir("c")), 0);
  umount2(plain.c_str(), MNT_DETACH);
  rmdir(plain.c_str());
}

TEST(CgroupFavorTest, StartNamesTheMountPointItCannotMake) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  CgroupFavor f({.dir = "/nonexistent-dir/cgroup-favordynmods"});
  absl::Status s = f.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "/nonexistent-dir/cgroup-favordynmods")) << s;
}

}  // namespace
}  // namespace seedvisor::seedd
