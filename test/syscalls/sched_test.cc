// Conformance tests for the sched_* policy calls (sched(7),
// sched_setscheduler(2), sched_setattr(2)): policies and priorities are
// kept and reported back with Linux's checks, SCHED_RESET_ON_FORK, the
// priority ranges, and the size rules of sched_attr.
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

// include/uapi/linux/sched/types.h (glibc 2.36 has no sched_attr).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};

long GetAttr(pid_t pid, SchedAttr* a, unsigned size, unsigned flags = 0) {
  return syscall(SYS_sched_getattr, pid, a, size, flags);
}

long SetAttr(pid_t pid, SchedAttr* a, unsigned flags = 0) {
  return syscall(SYS_sched_setattr, pid, a, flags);
}

// Runs `fn` in a child (policies change the process; keep that out of the
// test binary) and expects it to return 0.
void InChild(const std::function<int()>& fn) { EXPECT_EXIT_CODE(RunInChild(fn), 0); }

TEST(SchedTest, FairPoliciesAreKept) {
  InChild([] {
    sched_param p{0};
    if (sched_getscheduler(0) != SCHED_OTHER) return 1;
    if (sched_setscheduler(0, SCHED_BATCH, &p) != 0) return 2;
    if (sched_getscheduler(0) != SCHED_BATCH) return 3;
    if (sched_setscheduler(0, SCHED_IDLE, &p) != 0) return 4;
    if (sched_getscheduler(0) != SCHED_IDLE) return 5;
    if (sched_setscheduler(0, SCHED_OTHER, &p) != 0) return 6;
    if (sched_getscheduler(0) != SCHED_OTHER) return 7;
    // A child inherits the policy.
    if (sched_setscheduler(0, SCHED_BATCH, &p) != 0) return 8;
    int st = RunInChild([] { return sched_getscheduler(0) == SCHED_BATCH ? 0 : 1; });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 9;
    return 0;
  });
}

TEST(SchedTest, InvalidArguments) {
  InChild([] {
    sched_param p{5};
    errno = 0;
    if (sched_setscheduler(0, SCHED_OTHER, &p) != -1 || errno != EINVAL) return 1;
    p.sched_priority = 0;
    if (sched_setscheduler(0, SCHED_FIFO, &p) != -1 || errno != EINVAL) return 2;
    p.sched_priority = 100;
    if (sched_setscheduler(0, SCHED_RR, &p) != -1 || errno != EINVAL) return 3;
    p.sched_priority = 0;
    if (sched_setscheduler(0, 77, &p) != -1 || errno != EINVAL) return 4;
    if (sched_setscheduler(0, SCHED_DEADLINE, &p) != -1 || errno != EINVAL) return 5;
    if (syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, nullptr) != -1 || errno != EINVAL) {
      return 6;
    }
    if (sched_setscheduler(-1, SCHED_OTHER, &p) != -1 || errno != EINVAL) return 7;
    if (syscall(SYS_sched_getparam, 0, nullptr) != -1 || errno != EINVAL) return 8;
    p.sched_priority = 3;
    if (sched_setparam(0, &p) != -1 || errno != EINVAL) return 9;
    if (sched_getscheduler(0) != SCHED_OTHER) return 10;
    return 0;
  });
}

// With CAP_SYS_NICE (root here) the realtime policies are taken; their
// priority is reported, and without the capability RLIMIT_RTPRIO rules.
TEST(SchedTest, RealtimePriorities) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_SYS_NICE";
  InChild([] {
    sched_param p{10};
    if (sched_setscheduler(0, SCHED_FIFO, &p) != 0) return 1;
    if (sched_getscheduler(0) != SCHED_FIFO) return 2;
    sched_param got{0};
    if (sched_getparam(0, &got) != 0 || got.sched_priority != 10) return 3;
    p.sched_priority = 20;
    if (sched_setparam(0, &p) != 0) return 4;
    if (sched_getparam(0, &got) != 0 || got.sched_priority != 20) return 5;
    if (sched_getscheduler(0) != SCHED_FIFO) return 6;
    p.sched_priority = 30;
    if (sched_setscheduler(0, SCHED_RR, &p) != 0 || sched_getscheduler(0) != SCHED_RR) return 7;
    timespec ts{1, 1};
    if (sched_rr_get_interval(0, &ts) != 0 || (ts.tv_sec == 0 && ts.tv_nsec == 0)) return 8;
    SchedAttr a{};
    if (GetAttr(0, &a, sizeof(a)) != 0) return 9;
    if (a.sched_policy != SCHED_RR || a.sched_priority != 30 || a.size != sizeof(a)) return 10;
    // Back to SCHED_OTHER, then no CAP_SYS_NICE and no RLIMIT_RTPRIO.
    p.sched_priority = 0;
    if (sched_setscheduler(0, SCHED_OTHER, &p) != 0) return 11;
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_RTPRIO, &none) != 0) return 12;
    if (setresuid(65534, 65534, 65534) != 0) return 13;
    p.sched_priority = 1;
    if (sched_setscheduler(0, SCHED_FIFO, &p) != -1 || errno != EPERM) return 14;
    return 0;
  });
}

TEST(SchedTest, ResetOnFork) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_SYS_NICE";
  InChild([] {
    sched_param p{5};
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) != 0) return 1;
    if (sched_getscheduler(0) != (SCHED_FIFO | SCHED_RESET_ON_FORK)) return 2;
    SchedAttr a{};
    if (GetAttr(0, &a, sizeof(a)) != 0 || a.sched_flags != 1) return 3;
    // The child starts as SCHED_OTHER, priority 0, without the flag.
    int st = RunInChild([] {
      sched_param got{9};
      if (sched_getscheduler(0) != SCHED_OTHER) return 1;
      if (sched_getparam(0, &got) != 0 || got.sched_priority != 0) return 2;
      return 0;
    });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
    // A fair policy is kept, the flag is not.
    p.sched_priority = 0;
    if (sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &p) != 0) return 5;
    st = RunInChild([] { return sched_getscheduler(0) == SCHED_BATCH ? 0 : 1; });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 6;
    return 0;
  });
}

TEST(SchedTest, GetattrSizes) {
  SchedAttr a;
  memset(&a, 0x5a, sizeof(a));
  ASSERT_EQ(GetAttr(0, &a, sizeof(a)), 0);
  EXPECT_EQ(a.size, sizeof(a));
  EXPECT_EQ(a.sched_policy, static_cast<uint32_t>(sched_getscheduler(0) & ~SCHED_RESET_ON_FORK));
  EXPECT_EQ(a.sched_nice, getpriority(PRIO_PROCESS, 0));
  EXPECT_EQ(a.sched_priority, 0u);
  // A fair task's runtime is its slice: the base slice, 0.7 ms scaled by
  // 1 + log2 of the CPUs (at most 8) as sched_tunable_scaling's default
  // (Linux 6.6+, EEVDF).
  cpu_set_t cpus;
  ASSERT_EQ(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  int log2 = 0;
  while ((2L << log2) <= std::min(online, 8L)) ++log2;
  EXPECT_EQ(a.sched_runtime, 700000ull * (1 + log2));
  EXPECT_EQ(a.sched_deadline, 0u);
  // The first version's size: that much is written.
  memset(&a, 0x5a, sizeof(a));
  ASSERT_EQ(GetAttr(0, &a, 48), 0);
  EXPECT_EQ(a.size, 48u);
  EXPECT_EQ(a.sched_util_min, 0x5a5a5a5au);
  // A bigger buffer: our size.
  char big[128];
  memset(big, 0x5a, sizeof(big));
  ASSERT_EQ(GetAttr(0, reinterpret_cast<SchedAttr*>(big), sizeof(big)), 0);
  EXPECT_EQ(reinterpret_cast<SchedAttr*>(big)->size, sizeof(SchedAttr));
  errno = 0;
  EXPECT_EQ(GetAttr(0, &a, 47), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetAttr(0, &a, sizeof(a), 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetAttr(0, nullptr, sizeof(a)), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetAttr(-1, &a, sizeof(a)), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetAttr(999999, &a, sizeof(a)), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(SchedTest, SetattrPolicyNiceAndSizes) {
  InChild([] {
    SchedAttr a{};
    a.size = sizeof(a);
    a.sched_policy = SCHED_OTHER;
    a.sched_nice = 3;
    if (SetAttr(0, &a) != 0) return 1;
    if (getpriority(PRIO_PROCESS, 0) != 3) return 2;
    SchedAttr got{};
    if (GetAttr(0, &got, sizeof(got)) != 0 || got.sched_nice != 3) return 3;
    a.sched_policy = SCHED_BATCH;
    if (SetAttr(0, &a) != 0 || sched_getscheduler(0) != SCHED_BATCH) return 4;
    // Size 0 is the first version.
    a.size = 0;
    a.sched_policy = SCHED_OTHER;
    if (SetAttr(0, &a) != 0 || sched_getscheduler(0) != SCHED_OTHER) return 5;
    // Too small: E2BIG, our size written back.
    a.size = 5;
    if (SetAttr(0, &a) != -1 || errno != E2BIG || a.size != sizeof(SchedAttr)) return 6;
    // Bigger with unknown bytes set: E2BIG; with zeros: fine.
    char big[80] = {};
    SchedAttr* b = reinterpret_cast<SchedAttr*>(big);
    b->size = sizeof(big);
    b->sched_policy = SCHED_BATCH;
    if (SetAttr(0, b) != 0 || sched_getscheduler(0) != SCHED_BATCH) return 7;
    big[70] = 1;
    b->size = sizeof(big);
    if (SetAttr(0, b) != -1 || errno != E2BIG || b->size != sizeof(SchedAttr)) return 8;
    a.size = sizeof(a);
    a.sched_flags = 1ull << 40;
    if (SetAttr(0, &a) != -1 || errno != EINVAL) return 9;
    a.sched_flags = 0;
    if (SetAttr(0, &a, 1) != -1 || errno != EINVAL) return 10;
    if (SetAttr(0, nullptr) != -1 || errno != EINVAL) return 11;
    // Lowering nice below RLIMIT_NICE without CAP_SYS_NICE: EPERM.
    if (geteuid() == 0) {
      a.sched_policy = SCHED_OTHER;
      a.sched_nice = 5;
      if (SetAttr(0, &a) != 0 || getpriority(PRIO_PROCESS, 0) != 5) return 16;
      rlimit none{0, 0};
      if (setrlimit(RLIMIT_NICE, &none) != 0) return 12;
      if (setresuid(65534, 65534, 65534) != 0) return 13;
      a.sched_policy = SCHED_OTHER;
      a.sched_nice = 1;
      if (SetAttr(0, &a) != -1 || errno != EPERM) return 14;
      a.sched_nice = 10;
      if (SetAttr(0, &a) != 0 || getpriority(PRIO_PROCESS, 0) != 10) return 15;
    }
    return 0;
  });
}

// A buffer that holds nr_cpu_ids bits is enough; the call returns how
// much it wrote: no more than the kernel's cpumask, no more than asked.
TEST(SchedTest, AffinityBufferSizes) {
  const long ncpus = sysconf(_SC_NPROCESSORS_CONF);
  const size_t need = ((ncpus + 63) / 64) * 8;
  cpu_set_t big;
  const long full = syscall(SYS_sched_getaffinity, 0, sizeof(big), &big);
  ASSERT_GT(full, 0);
  cpu_set_t s;
  CPU_ZERO(&s);
  EXPECT_EQ(syscall(SYS_sched_getaffinity, 0, need, &s), static_cast<long>(need));
  EXPECT_TRUE(CPU_ISSET(0, &s) == CPU_ISSET(0, &big));
  errno = 0;
  EXPECT_EQ(syscall(SYS_sched_getaffinity, 0, need + 4, &s), -1);
  EXPECT_EQ(errno, EINVAL);
  if (need > 8) {
    EXPECT_EQ(syscall(SYS_sched_getaffinity, 0, need - 8, &s), -1);
    EXPECT_EQ(errno, EINVAL);
  }
}

TEST(SchedTest, PriorityRanges) {
  EXPECT_EQ(sched_get_priority_min(SCHED_FIFO), 1);
  EXPECT_EQ(sched_get_priority_max(SCHED_FIFO), 99);
  EXPECT_EQ(sched_get_priority_min(SCHED_RR), 1);
  EXPECT_EQ(sched_get_priority_max(SCHED_RR), 99);
  for (int p : {SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE}) {
    EXPECT_EQ(sched_get_priority_min(p), 0) << p;
    EXPECT_EQ(sched_get_priority_max(p), 0) << p;
  }
  errno = 0;
  EXPECT_EQ(sched_get_priority_max(4), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(sched_get_priority_min(-1), -1);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace
}  // namespace syscall_test
