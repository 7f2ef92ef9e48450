// ioprio_get(2) and ioprio_set(2): a per-thread I/O priority, kept,
// inherited and reported back (issue 13).
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kWhoProcess = 1, kWhoPgrp = 2, kWhoUser = 3;
constexpr int kNone = 0, kBe = 2, kIdle = 3;
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

}  // namespace
}  // namespace syscall_test
