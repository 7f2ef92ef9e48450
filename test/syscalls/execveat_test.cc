// execveat(2): the file named relative to a directory fd, or the fd's own
// file (AT_EMPTY_PATH, an O_PATH fd included), and the walk's errors
// (LTP execveat01-03).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr char kTrue[] = "/bin/true";

// execveat() in a child: its exit status if the program ran (100 + errno
// if execveat failed).
int ExecveatIn(int dirfd, const std::string& path, int flags) {
  int status = RunInChild([&] {
    char* argv[] = {const_cast<char*>("true"), nullptr};
    char* envp[] = {nullptr};
    syscall(SYS_execveat, dirfd, path.c_str(), argv, envp, flags);
    return 100 + errno;
  });
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class ExecveatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    if (stat(kTrue, &st) != 0) GTEST_SKIP() << "no " << kTrue;
  }
};

TEST_F(ExecveatTest, RunsWhatTheFdNames) {
  FileDescriptor bin(open("/bin", O_RDONLY | O_DIRECTORY));
  ASSERT_OK(bin.get());
  EXPECT_EQ(ExecveatIn(bin.get(), "true", 0), 0);
  EXPECT_EQ(ExecveatIn(AT_FDCWD, kTrue, 0), 0);
  // An absolute path ignores the fd, a bad one too.
  EXPECT_EQ(ExecveatIn(9999, kTrue, 0), 0);
  FileDescriptor file(open(kTrue, O_RDONLY));
  ASSERT_OK(file.get());
  EXPECT_EQ(ExecveatIn(file.get(), "", AT_EMPTY_PATH), 0);
  FileDescriptor path(open(kTrue, O_PATH));
  ASSERT_OK(path.get());
  EXPECT_EQ(ExecveatIn(path.get(), "", AT_EMPTY_PATH), 0);
}

TEST_F(ExecveatTest, WalkErrors) {
  EXPECT_EQ(ExecveatIn(9999, "true", 0), 100 + EBADF);
  FileDescriptor file(open(kTrue, O_RDONLY));
  ASSERT_OK(file.get());
  EXPECT_EQ(ExecveatIn(file.get(), "true", 0), 100 + ENOTDIR);
  EXPECT_EQ(ExecveatIn(AT_FDCWD, kTrue, 0x8000), 100 + EINVAL);
  EXPECT_EQ(ExecveatIn(file.get(), "", 0), 100 + ENOENT);
  // The working directory itself is no regular file.
  EXPECT_EQ(ExecveatIn(AT_FDCWD, "", AT_EMPTY_PATH), 100 + EACCES);
  TempDir dir;
  const std::string link = dir.Path("link");
  ASSERT_OK(symlink(kTrue, link.c_str()));
  EXPECT_EQ(ExecveatIn(AT_FDCWD, link, AT_SYMLINK_NOFOLLOW), 100 + ELOOP);
  EXPECT_EQ(ExecveatIn(AT_FDCWD, link, 0), 0);
  FileDescriptor d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(d.get());
  EXPECT_EQ(ExecveatIn(d.get(), "link", AT_SYMLINK_NOFOLLOW), 100 + ELOOP);
  EXPECT_EQ(ExecveatIn(d.get(), "link", 0), 0);
}

}  // namespace
}  // namespace syscall_test
