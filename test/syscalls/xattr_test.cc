// Extended attributes (xattr(7)): get/set/list/remove and their l* and f*
// forms on a file under $TEST_TMPDIR, the flag, size and namespace rules,
// ctime, and (in the sandbox) copy-up of a host file in the overlay root.
//
// Natively the scratch filesystem must store user.* attributes; if it does
// not (ENOTSUP), the tests skip natively only. In the sandbox (detected from
// /proc/version) every test runs.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

bool InSandbox() {
  std::ifstream in("/proc/version");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find("seedvisor") != std::string::npos;
}

// The names listxattr(2) returns for `path`.
std::vector<std::string> Names(const std::string& path) {
  char buf[4096];
  ssize_t n = listxattr(path.c_str(), buf, sizeof(buf));
  std::vector<std::string> out;
  for (ssize_t i = 0; n > 0 && i < n;) {
    std::string s(buf + i);
    i += s.size() + 1;
    out.push_back(s);
  }
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class XattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.Path("f");
    int fd = open(file_.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
    if (setxattr(file_.c_str(), "user.probe", "", 0, 0) != 0) {
      int e = errno;
      if ((e == ENOTSUP) && !InSandbox()) GTEST_SKIP() << "no user xattrs on " << file_;
      FAIL() << "setxattr user.probe: " << ErrnoName(e);
    }
    ASSERT_OK(removexattr(file_.c_str(), "user.probe"));
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(XattrTest, SetGetListRemove) {
  const char* f = file_.c_str();
  ASSERT_OK(setxattr(f, "user.a", "hello", 5, 0));
  EXPECT_EQ(getxattr(f, "user.a", nullptr, 0), 5);  // size 0: the size needed
  char buf[16] = {};
  EXPECT_EQ(getxattr(f, "user.a", buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_ERRNO(ERANGE, getxattr(f, "user.a", buf, 4));
  EXPECT_TRUE(Has(Names(file_), "user.a"));
  ssize_t need = listxattr(f, nullptr, 0);
  ASSERT_GE(need, 7);
  char list[4096];
  EXPECT_EQ(listxattr(f, list, sizeof(list)), need);
  EXPECT_ERRNO(ERANGE, listxattr(f, list, 3));
  ASSERT_OK(setxattr(f, "user.empty", "", 0, 0));
  EXPECT_EQ(getxattr(f, "user.empty", buf, sizeof(buf)), 0);
  ASSERT_OK(removexattr(f, "user.a"));
  EXPECT_ERRNO(ENODATA, getxattr(f, "user.a", buf, sizeof(buf)));
  EXPECT_ERRNO(ENODATA, removexattr(f, "user.a"));
  EXPECT_FALSE(Has(Names(file_), "user.a"));
  EXPECT_TRUE(Has(Names(file_), "user.empty"));
}

TEST_F(XattrTest, CreateReplaceFlags) {
  const char* f = file_.c_str();
  EXPECT_ERRNO(ENODATA, setxattr(f, "user.r", "x", 1, XATTR_REPLACE));
  ASSERT_OK(setxattr(f, "user.r", "x", 1, XATTR_CREATE));
  EXPECT_ERRNO(EEXIST, setxattr(f, "user.r", "y", 1, XATTR_CREATE));
  ASSERT_OK(setxattr(f, "user.r", "yz", 2, XATTR_REPLACE));
  char buf[8];
  EXPECT_EQ(getxattr(f, "user.r", buf, sizeof(buf)), 2);
  EXPECT_EQ(std::string(buf, 2), "yz");
  EXPECT_ERRNO(EINVAL, setxattr(f, "user.r", "x", 1, 4));
}

TEST_F(XattrTest, NameAndSizeLimits) {
  const char* f = file_.c_str();
  char buf[8];
  EXPECT_ERRNO(ERANGE, setxattr(f, "", "x", 1, 0));
  EXPECT_ERRNO(ERANGE, getxattr(f, "", buf, sizeof(buf)));
  std::string longname = "user." + std::string(XATTR_NAME_MAX, 'n');
  EXPECT_ERRNO(ERANGE, setxattr(f, longname.c_str(), "x", 1, 0));
  std::string big(65537, 'v');
  EXPECT_ERRNO(E2BIG, setxattr(f, "user.big", big.data(), big.size(), 0));
  // (A full 64 KiB value is the VFS limit, but ext4 keeps to one block.)
  std::string kib(1024, 'v');
  ASSERT_OK(setxattr(f, "user.kib", kib.data(), kib.size(), 0));
  EXPECT_EQ(getxattr(f, "user.kib", nullptr, 0), 1024);
  EXPECT_ERRNO(EOPNOTSUPP, setxattr(f, "nonamespace.x", "x", 1, 0));
  EXPECT_ERRNO(EOPNOTSUPP, setxattr(f, "system.nothing", "x", 1, 0));
}

TEST_F(XattrTest, SymlinkAndDirectory) {
  std::string link = dir_.Path("l");
  ASSERT_OK(symlink(file_.c_str(), link.c_str()));
  char buf[8];
  // xattr(7): user attributes only on regular files and directories.
  EXPECT_ERRNO(EPERM, lsetxattr(link.c_str(), "user.a", "x", 1, 0));
  EXPECT_ERRNO(ENODATA, lgetxattr(link.c_str(), "user.a", buf, sizeof(buf)));
  EXPECT_FALSE(Has(Names(file_), "user.via"));
  ASSERT_OK(setxattr(link.c_str(), "user.via", "v", 1, 0));  // follows the link
  EXPECT_TRUE(Has(Names(file_), "user.via"));
  EXPECT_EQ(lgetxattr(file_.c_str(), "user.via", buf, sizeof(buf)), 1);
  std::string d = dir_.Path("d");
  ASSERT_OK(mkdir(d.c_str(), 0755));
  ASSERT_OK(setxattr(d.c_str(), "user.dir", "d", 1, 0));
  EXPECT_EQ(getxattr(d.c_str(), "user.dir", buf, sizeof(buf)), 1);
}

TEST_F(XattrTest, FdForms) {
  int fd = open(file_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_OK(fsetxattr(fd, "user.fd", "abc", 3, 0));
  char buf[8];
  EXPECT_EQ(fgetxattr(fd, "user.fd", buf, sizeof(buf)), 3);
  EXPECT_EQ(getxattr(file_.c_str(), "user.fd", buf, sizeof(buf)), 3);
  char list[256];
  ssize_t n = flistxattr(fd, list, sizeof(list));
  EXPECT_GE(n, 8);
  EXPECT_TRUE(Has(Names(file_), "user.fd"));
  ASSERT_OK(fremovexattr(fd, "user.fd"));
  EXPECT_ERRNO(ENODATA, fgetxattr(fd, "user.fd", buf, sizeof(buf)));
  close(fd);
  EXPECT_ERRNO(EBADF, fgetxattr(fd, "user.fd", buf, sizeof(buf)));
}

TEST_F(XattrTest, SetAndRemoveChangeCtime) {
  struct stat before, after;
  ASSERT_OK(stat(file_.c_str(), &before));
  usleep(20000);
  ASSERT_OK(setxattr(file_.c_str(), "user.t", "x", 1, 0));
  ASSERT_OK(stat(file_.c_str(), &after));
  EXPECT_TRUE(after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
              (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
               after.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
  before = after;
  usleep(20000);
  ASSERT_OK(removexattr(file_.c_str(), "user.t"));
  ASSERT_OK(stat(file_.c_str(), &after));
  EXPECT_TRUE(after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
              (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
               after.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
}

// trusted.* needs CAP_SYS_ADMIN: without it set is EPERM, get ENODATA, and
// listxattr leaves the names out.
TEST_F(XattrTest, TrustedNeedsSysAdmin) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to set a trusted.* attribute";
  ASSERT_OK(setxattr(file_.c_str(), "trusted.t", "x", 1, 0));
  EXPECT_TRUE(Has(Names(file_), "trusted.t"));
  std::string f = file_;
  int status = RunInChild([f] {
    __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    if (syscall(SYS_capget, &hdr, d) != 0) return 10;
    d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
    if (syscall(SYS_capset, &hdr, d) != 0) return 11;
    if (setxattr(f.c_str(), "trusted.u", "x", 1, 0) != -1 || errno != EPERM) return 1;
    char buf[8];
    if (getxattr(f.c_str(), "trusted.t", buf, sizeof(buf)) != -1 || errno != ENODATA) return 2;
    if (removexattr(f.c_str(), "trusted.t") != -1 || errno != EPERM) return 3;
    if (Has(Names(f), "trusted.t")) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// Without write permission on the file, set/remove are EACCES (whatever the
// fd's mode); reading needs only read permission. The child works through
// an fd opened before it changes uid ($TEST_TMPDIR's parents may be 0700).
TEST_F(XattrTest, WritePermission) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to another uid";
  ASSERT_OK(setxattr(file_.c_str(), "user.p", "x", 1, 0));
  int fd = open(file_.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  int status = RunInChild([fd] {
    if (setresuid(65534, 65534, 65534) != 0) return 10;
    if (fsetxattr(fd, "user.q", "x", 1, 0) != -1 || errno != EACCES) return 1;
    if (fremovexattr(fd, "user.p") != -1 || errno != EACCES) return 2;
    char buf[8];
    if (fgetxattr(fd, "user.p", buf, sizeof(buf)) != 1) return 3;
    return 0;
  });
  close(fd);
  EXPECT_EXIT_CODE(status, 0);
}

// In the sandbox the root is an overlay over the host's root: setting an
// attribute on a host file copies it up (its data intact); the host file
// itself never changes. Natively this would touch a host file: skipped.
TEST(XattrOverlay, SetCopiesUpHostFile) {
  if (!InSandbox()) GTEST_SKIP() << "would change a host file natively";
  const char* f = "/etc/passwd";
  std::ifstream in0(f);
  std::stringstream before;
  before << in0.rdbuf();
  ASSERT_FALSE(before.str().empty());
  EXPECT_EQ(listxattr(f, nullptr, 0), 0);  // host xattrs are not exposed
  EXPECT_ERRNO(ENODATA, removexattr(f, "user.c"));
  ASSERT_OK(setxattr(f, "user.c", "up", 2, 0));
  char buf[8];
  EXPECT_EQ(getxattr(f, "user.c", buf, sizeof(buf)), 2);
  EXPECT_EQ(std::string(buf, 2), "up");
  std::ifstream in1(f);
  std::stringstream after;
  after << in1.rdbuf();
  EXPECT_EQ(after.str(), before.str());
}

}  // namespace
}  // namespace syscall_test
