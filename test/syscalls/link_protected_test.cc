// Protected hard links (fs.protected_hardlinks = 1, Debian's default):
// link(2) of a file the caller does not own, without CAP_FOWNER, needs a
// "safe" source, a regular file that is neither setuid nor setgid-and-
// group-executable and that the caller may read and write (may_linkat()
// and safe_hardlink_source() in fs/namei.c); anything else is EPERM.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class LinkProtectedTest : public testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (to make files nobody does not own)";
    std::ifstream in("/proc/sys/fs/protected_hardlinks");
    int v = 1;  // a sandbox without the file has the default
    if (in >> v; v != 1) GTEST_SKIP() << "fs.protected_hardlinks is " << v << " here";
    // Nobody works in the directory by relative names: the test's own
    // temporary directory's ancestors need not be searchable for it.
    ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
    ASSERT_EQ(chdir(dir_.path().c_str()), 0);
  }

  // A file `name` owned by `uid` with `mode` (set after the create: no umask).
  void Make(const char* name, uid_t uid, mode_t mode) {
    ASSERT_TRUE(WriteFile(dir_.Path(name), "x"));
    ASSERT_EQ(chown(name, uid, uid), 0);
    ASSERT_EQ(chmod(name, mode), 0);
  }

  // link(src, dst) as nobody: 0, or the errno.
  static int LinkAsNobody(const char* src, const char* dst) {
    return RunAsNobody([src, dst] { return link(src, dst) == 0 ? 0 : errno; });
  }

  TempDir dir_;
};

TEST_F(LinkProtectedTest, OthersFileNobodyMayNotReadWriteIsEPERM) {
  Make("secret", 0, 0600);
  EXPECT_EQ(LinkAsNobody("secret", "l"), EPERM);
  EXPECT_ERRNO(ENOENT, access(dir_.Path("l").c_str(), F_OK));
  Make("readonly", 0, 0644);  // read, not write: still unsafe
  EXPECT_EQ(LinkAsNobody("readonly", "l"), EPERM);
}

TEST_F(LinkProtectedTest, OthersFileNobodyMayReadAndWriteIsLinked) {
  Make("shared", 0, 0666);
  EXPECT_EQ(LinkAsNobody("shared", "l"), 0);
  struct stat st;
  ASSERT_EQ(stat("shared", &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(LinkProtectedTest, SetuidAndSetgidExecutableSourcesAreEPERM) {
  Make("suid", 0, 04777);
  EXPECT_EQ(LinkAsNobody("suid", "l1"), EPERM);
  Make("sgid_x", 0, 02777);
  EXPECT_EQ(LinkAsNobody("sgid_x", "l2"), EPERM);
  Make("sgid_nox", 0, 02767);  // setgid without group exec: mandatory locking, safe
  EXPECT_EQ(LinkAsNobody("sgid_nox", "l3"), 0);
}

TEST_F(LinkProtectedTest, NotARegularFileIsEPERM) {
  ASSERT_EQ(mkfifo("fifo", 0666), 0);
  ASSERT_EQ(chmod("fifo", 0666), 0);
  EXPECT_EQ(LinkAsNobody("fifo", "l"), EPERM);
}

TEST_F(LinkProtectedTest, OwnFileIsLinkedWhateverItsMode) {
  Make("mine", 65534, 0);
  EXPECT_EQ(LinkAsNobody("mine", "l"), 0);
}

TEST_F(LinkProtectedTest, RootLinksAnything) {
  Make("secret", 65534, 04700);
  EXPECT_EQ(link("secret", "l"), 0);
}

}  // namespace
}  // namespace syscall_test
