// getrusage(2)'s ru_maxrss across fork, exec and wait (k_getrusage(),
// wait_task_zombie()): RUSAGE_CHILDREN is the largest peak of the reaped
// children and their reaped children, taken at the reaping and not before;
// a fork starts with none; an exec keeps the process's peak (LTP
// getrusage03). System time: a process that makes syscalls has some, and
// so have its parent's children's counts once it is reaped (times(2)'s
// tms_stime and tms_cstime, LTP times03).
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr long kTouchKb = 64 << 10;  // 64 MiB

long MaxRss(int who) {
  rusage ru{};
  return getrusage(who, &ru) == 0 ? ru.ru_maxrss : -1;
}

// Touches 64 MiB, then exits or (with `exec`) becomes /bin/true.
pid_t ForkToucher(bool exec) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  void* m = mmap(nullptr, kTouchKb * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) _exit(2);
  memset(m, 1, kTouchKb * 1024);
  if (exec) {
    execl("/bin/true", "true", nullptr);
    _exit(3);
  }
  _exit(0);
}

TEST(Rusage, ChildrenMaxRssAtReapAcrossExec) {
  int status = RunInChild([] {
    if (MaxRss(RUSAGE_CHILDREN) >= kTouchKb) return 1;
    pid_t pid = ForkToucher(/*exec=*/true);
    if (pid < 0) return 2;
    // A zombie's peak is not the parent's yet.
    siginfo_t si{};
    if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0) return 3;
    if (MaxRss(RUSAGE_CHILDREN) >= kTouchKb) return 4;
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 5;
    // Its image before the exec counts.
    if (MaxRss(RUSAGE_CHILDREN) < kTouchKb * 9 / 10) return 6;
    // A fork starts without its parent's children.
    pid = fork();
    if (pid == 0) _exit(MaxRss(RUSAGE_CHILDREN) == 0 ? 0 : 1);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 7;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A grandchild's peak reaches its grandparent through the child's
// RUSAGE_CHILDREN.
TEST(Rusage, GrandchildrenCount) {
  int status = RunInChild([] {
    pid_t pid = fork();
    if (pid == 0) {
      pid_t g = ForkToucher(/*exec=*/false);
      int st = 0;
      _exit(g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    if (MaxRss(RUSAGE_CHILDREN) < kTouchKb * 9 / 10) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

int64_t SysUs(int who) {
  rusage ru{};
  if (getrusage(who, &ru) != 0) return -1;
  return ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
}

// Makes syscalls until getrusage shows `us` of system time, for at most
// 20 s of wall time; whether it got there.
bool SpendSystemTime(int64_t us) {
  const int64_t deadline = NowMs() + 20000;
  while (SysUs(RUSAGE_SELF) < us) {
    if (NowMs() > deadline) return false;
    for (int i = 0; i < 200; ++i) (void)access("/", F_OK);
  }
  return true;
}

TEST(Rusage, SystemTimeOfSyscallsAndChildren) {
  int status = RunInChild([] {
    const long tick_us = 1000000 / sysconf(_SC_CLK_TCK);
    if (!SpendSystemTime(3 * tick_us)) return 1;
    tms t{};
    if (times(&t) == static_cast<clock_t>(-1) || t.tms_stime == 0) return 2;
    if (t.tms_cstime != 0 || SysUs(RUSAGE_CHILDREN) != 0) return 3;
    pid_t pid = fork();
    if (pid == 0) _exit(SpendSystemTime(3 * tick_us) ? 0 : 1);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 4;
    if (SysUs(RUSAGE_CHILDREN) < 3 * tick_us) return 5;
    if (times(&t) == static_cast<clock_t>(-1) || t.tms_cstime == 0) return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
