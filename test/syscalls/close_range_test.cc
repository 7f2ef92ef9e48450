// close_range(2) (issue 13, LTP close_range02): CLOSE_RANGE_UNSHARE closes
// in the caller's own copy of a shared fd table, never in its sharers'.
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct ChildArgs {
  int fd;
  unsigned flags;
};

int CloseInChild(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  if (syscall(SYS_close_range, a->fd, a->fd, a->flags) != 0) return 1;
  if (a->flags & CLOSE_RANGE_CLOEXEC) return fcntl(a->fd, F_GETFD) == FD_CLOEXEC ? 0 : 2;
  return (fcntl(a->fd, F_GETFD) == -1 && errno == EBADF) ? 0 : 3;
}

// Runs CloseInChild in a CLONE_FILES child; its exit status.
int CloneFilesChild(ChildArgs args) {
  std::vector<char> stack(64 * 1024);
  pid_t pid = clone(CloseInChild, stack.data() + stack.size(), CLONE_FILES | SIGCHLD, &args);
  if (pid < 0) return -1;
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -2;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

TEST(CloseRangeTest, UnshareLeavesTheSharersFdOpen) {
  int fd = open("/", O_PATH);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(CloneFilesChild({fd, CLOSE_RANGE_UNSHARE}), 0);
  EXPECT_OK(fcntl(fd, F_GETFD));
  EXPECT_EQ(CloneFilesChild({fd, CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC}), 0);
  EXPECT_EQ(fcntl(fd, F_GETFD), 0);  // the child's copy got the flag
  // Without UNSHARE the table is shared: the parent's fd goes too.
  EXPECT_EQ(CloneFilesChild({fd, 0}), 0);
  EXPECT_ERRNO(EBADF, fcntl(fd, F_GETFD));
}

}  // namespace
}  // namespace syscall_test
