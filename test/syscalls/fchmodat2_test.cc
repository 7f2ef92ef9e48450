// fchmodat2(2): fchmodat with flags. AT_SYMLINK_NOFOLLOW changes the
// file itself, and a symlink's mode never changes (EOPNOTSUPP);
// AT_EMPTY_PATH changes the file of a descriptor, an O_PATH one too.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

namespace syscall_test {
namespace {

long Fchmodat2(int dirfd, const char* path, mode_t mode, int flags) {
  return syscall(SYS_fchmodat2, dirfd, path, mode, flags);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode;
}

class Fchmodat2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.Path("file");
    ASSERT_TRUE(WriteFile(file_, "x", 0640));
    ASSERT_OK(chmod(file_.c_str(), 0640));
    ASSERT_OK(symlink("file", dir_.Path("sym").c_str()));
    dirfd_ = FileDescriptor(open(dir_.path().c_str(), O_PATH | O_DIRECTORY));
    ASSERT_OK(dirfd_.get());
  }
  TempDir dir_;
  std::string file_;
  FileDescriptor dirfd_;
};

TEST_F(Fchmodat2Test, ChangesTheFileFollowedOrNot) {
  ASSERT_EQ(Fchmodat2(dirfd_.get(), "file", 0700, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0700);
  ASSERT_EQ(Fchmodat2(dirfd_.get(), "file", 0604, AT_SYMLINK_NOFOLLOW), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0604);
  // Through the symlink, followed: its target changes.
  ASSERT_EQ(Fchmodat2(dirfd_.get(), "sym", 0710, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0710);
  EXPECT_EQ(ModeOf(dir_.Path("sym")), S_IFLNK | 0777);
}

TEST_F(Fchmodat2Test, SymlinkModeNeverChanges) {
  EXPECT_ERRNO(EOPNOTSUPP, Fchmodat2(dirfd_.get(), "sym", 0640, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(ModeOf(dir_.Path("sym")), S_IFLNK | 0777);
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0640);
  // Also through an O_PATH descriptor of the symlink itself.
  FileDescriptor fd(open(dir_.Path("sym").c_str(), O_PATH | O_NOFOLLOW));
  ASSERT_OK(fd.get());
  EXPECT_ERRNO(EOPNOTSUPP, Fchmodat2(fd.get(), "", 0640, AT_EMPTY_PATH));
}

TEST_F(Fchmodat2Test, EmptyPathChangesTheDescriptorsFile) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0750));
  FileDescriptor d(open(dir_.Path("d").c_str(), O_PATH | O_DIRECTORY));
  ASSERT_OK(d.get());
  ASSERT_EQ(Fchmodat2(d.get(), "", 0777, AT_EMPTY_PATH), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(dir_.Path("d")), S_IFDIR | 0777);
  FileDescriptor f(open(file_.c_str(), O_RDONLY));
  ASSERT_OK(f.get());
  ASSERT_EQ(Fchmodat2(f.get(), "", 0600, AT_EMPTY_PATH), 0) << ErrnoName(errno);
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0600);
  // Without AT_EMPTY_PATH an empty path names nothing.
  EXPECT_ERRNO(ENOENT, Fchmodat2(f.get(), "", 0644, 0));
}

TEST_F(Fchmodat2Test, Checks) {
  EXPECT_ERRNO(EINVAL, Fchmodat2(dirfd_.get(), "file", 0600, -1));
  EXPECT_ERRNO(EINVAL, Fchmodat2(dirfd_.get(), "file", 0600, AT_REMOVEDIR));
  EXPECT_ERRNO(EBADF, Fchmodat2(-1, "file", 0600, 0));
  EXPECT_ERRNO(ENOENT, Fchmodat2(dirfd_.get(), "missing", 0600, 0));
  EXPECT_ERRNO(EFAULT, Fchmodat2(dirfd_.get(), reinterpret_cast<const char*>(8), 0600, 0));
  EXPECT_EQ(ModeOf(file_), S_IFREG | 0640);
}

}  // namespace
}  // namespace syscall_test
