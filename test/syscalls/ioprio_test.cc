// ioprio_get(2) and ioprio_set(2): a per-thread I/O priority, kept,
// inherited and reported back (issue 13).
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kWhoProcess = 1, kWhoPgrp = 2, kWhoUser = 3;
constexpr int kNone = 0, kRt = 1, kBe = 2, kIdle = 3;
constexpr int Value(int cls, int level) { return (cls << 13) | level; }

long Get(int which, int who) { return syscall(SYS_ioprio_get, which, who); }
long Set(int which, int who, int prio) { return syscall(SYS_ioprio_set, which, who, prio); }

class IoprioTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = Get(kWhoProcess, 0); }
  void TearDown() override { Set(kWhoProcess, 0, saved_); }
  long saved_ = 0;
};

TEST_F(IoprioTest, SetThenGet) {
  for (int level = 0; level < 8; ++level) {
    ASSERT_OK(Set(kWhoProcess, 0, Value(kBe, level)));
    EXPECT_EQ(Get(kWhoProcess, 0), Value(kBe, level));
  }
  ASSERT_OK(Set(kWhoProcess, 0, Value(kIdle, 7)));
  EXPECT_EQ(Get(kWhoProcess, getpid()), Value(kIdle, 7));
  ASSERT_OK(Set(kWhoProcess, 0, Value(kNone, 0)));
  EXPECT_EQ(Get(kWhoProcess, 0), 0);
}

TEST_F(IoprioTest, BadValuesLeaveItUnchanged) {
  ASSERT_OK(Set(kWhoProcess, 0, Value(kBe, 4)));
  EXPECT_ERRNO(EINVAL, Set(kWhoProcess, 0, Value(kNone, 4)));
  EXPECT_ERRNO(EINVAL, Set(kWhoProcess, 0, Value(4, 0)));
  EXPECT_ERRNO(EINVAL, Set(kWhoProcess, 0, Value(7, 0)));
  EXPECT_EQ(Get(kWhoProcess, 0), Value(kBe, 4));
}

TEST_F(IoprioTest, BadWhichAndWho) {
  EXPECT_ERRNO(EINVAL, Get(0, 0));
  EXPECT_ERRNO(EINVAL, Get(4, 0));
  EXPECT_ERRNO(EINVAL, Set(4, 0, Value(kBe, 0)));
  EXPECT_ERRNO(ESRCH, Get(kWhoProcess, 999999));
  EXPECT_ERRNO(ESRCH, Set(kWhoProcess, 999999, Value(kBe, 0)));
}

TEST_F(IoprioTest, PerThreadAndInherited) {
  ASSERT_OK(Set(kWhoProcess, 0, Value(kBe, 6)));
  long in_thread = -1;
  std::thread th([&] {
    in_thread = Get(kWhoProcess, 0);  // clone copies it
    Set(kWhoProcess, 0, Value(kBe, 1));
  });
  th.join();
  EXPECT_EQ(in_thread, Value(kBe, 6));
  EXPECT_EQ(Get(kWhoProcess, 0), Value(kBe, 6));  // the thread's own change
  int status = RunInChild([] { return Get(kWhoProcess, 0) == Value(kBe, 6) ? 0 : 1; });
  EXPECT_EQ(status, 0);
}

TEST_F(IoprioTest, GroupAndUserReportTheBest) {
  // The process group's best: a NONE thread counts as best-effort level
  // (nice + 20) / 5, a set one as set; the lowest value wins.
  ASSERT_OK(Set(kWhoProcess, 0, Value(kIdle, 0)));
  long pgrp = Get(kWhoPgrp, 0);
  ASSERT_GE(pgrp, 0);
  EXPECT_LE(pgrp, Value(kIdle, 0));
  ASSERT_OK(Set(kWhoProcess, 0, Value(kBe, 0)));
  EXPECT_LE(Get(kWhoPgrp, 0), Value(kBe, 0));
  EXPECT_LE(Get(kWhoUser, 0), Value(kBe, 0));
  ASSERT_OK(Set(kWhoPgrp, 0, Value(kBe, 2)));
  EXPECT_EQ(Get(kWhoProcess, 0), Value(kBe, 2));
}

// IOPRIO_WHO_USER walks every thread but skips those the caller's pid
// namespace cannot see (task_pid_vnr() == 0 in ioprio_get/ioprio_set):
// a child namespace's process neither reports nor changes its parent's.
TEST_F(IoprioTest, UserStaysInThePidNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  if (!HaveCap(CAP_SYS_NICE)) GTEST_SKIP() << "needs CAP_SYS_NICE";
  int status = RunInChild([] {
    // This process (outside) has the best priority there is.
    if (Set(kWhoProcess, 0, Value(kRt, 0)) != 0) return 1;
    const pid_t inner = ForkWith(CLONE_NEWPID);
    if (inner == 0) {
      if (Set(kWhoProcess, 0, Value(kNone, 0)) != 0) _exit(2);  // not inherited
      const long best = Get(kWhoUser, 0);
      if (best < 0) _exit(3);
      if ((best >> 13) == kRt) _exit(4);  // the outside process counted
      if (Set(kWhoUser, 0, Value(kIdle, 7)) != 0) _exit(5);
      _exit(Get(kWhoProcess, 0) == Value(kIdle, 7) ? 0 : 6);
    }
    if (inner < 0) return 7;
    if (int code = WaitCode(inner); code != 0) return 10 + code;
    // The child's user-wide set left this process alone.
    return Get(kWhoProcess, 0) == Value(kRt, 0) ? 0 : 8;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// setpriority/getpriority's PRIO_USER walks the same way (its neighbour in
// kernel/sys.c, and the same sentry walk as IOPRIO_WHO_USER).
TEST(PriorityTest, UserStaysInThePidNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  if (!HaveCap(CAP_SYS_NICE)) GTEST_SKIP() << "needs CAP_SYS_NICE";
  int status = RunInChild([] {
    if (setpriority(PRIO_PROCESS, 0, -10) != 0) return 1;
    const pid_t inner = ForkWith(CLONE_NEWPID);
    if (inner == 0) {
      if (setpriority(PRIO_PROCESS, 0, 0) != 0) _exit(2);
      errno = 0;
      const int best = getpriority(PRIO_USER, 0);
      if (errno != 0) _exit(3);
      if (best != 0) _exit(4);  // -10: the outside process counted
      if (setpriority(PRIO_USER, 0, 5) != 0) _exit(5);
      _exit(getpriority(PRIO_PROCESS, 0) == 5 ? 0 : 6);
    }
    if (inner < 0) return 7;
    if (int code = WaitCode(inner); code != 0) return 10 + code;
    return getpriority(PRIO_PROCESS, 0) == -10 ? 0 : 8;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
