// What a process may do to another user's process: sched_setaffinity(2)
// needs the same owner or CAP_SYS_NICE, get_robust_list(2) ptrace read
// access (issue 13, LTP sched_setaffinity01 and get_robust_list01).
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(PeerAccessTest, SetaffinityOfAnotherUsersProcessIsEperm) {
  if (!HaveCap(CAP_SETUID)) GTEST_SKIP() << "needs root to become nobody";
  cpu_set_t set;
  ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
  const pid_t parent = getpid();
  int r = RunAsNobody([&] {
    if (sched_setaffinity(parent, sizeof(set), &set) != -1 || errno != EPERM) return 1;
    // Its own affinity it may set; a bad mask is EFAULT before the pid.
    if (sched_setaffinity(0, sizeof(set), &set) != 0) return 2;
    if (syscall(SYS_sched_setaffinity, parent, sizeof(set), reinterpret_cast<void*>(8)) != -1 ||
        errno != EFAULT) {
      return 3;
    }
    return 0;
  });
  EXPECT_EQ(r, 0);
  ASSERT_OK(sched_setaffinity(0, sizeof(set), &set));  // root may
}

TEST(PeerAccessTest, GetRobustListOfAnotherUsersProcessIsEperm) {
  if (!HaveCap(CAP_SETUID)) GTEST_SKIP() << "needs root to become nobody";
  const pid_t parent = getpid();
  int r = RunAsNobody([&] {
    void* head = nullptr;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, parent, &head, &len) != -1 || errno != EPERM) return 1;
    if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || len != 24) return 2;
    if (syscall(SYS_get_robust_list, getpid(), &head, &len) != 0) return 3;
    return 0;
  });
  EXPECT_EQ(r, 0);
}

}  // namespace
}  // namespace syscall_test
