// wait4(2)/waitid(2) option combinations (issue 17): which options each
// call accepts, WNOWAIT leaving a stopped/continued/exited child's report
// in place while a consuming wait takes it once, WUNTRACED/WSTOPPED and
// WCONTINUED reports from both calls, __WNOTHREAD, P_PGID and P_ALL.
// (__WCLONE/__WALL: clone3_test; ptrace stops: ptrace_test.)
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

pid_t SleepingChild() {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  return pid;
}

// waitid's report for `pid` with `options`: {si_code, si_status}, or
// {-errno, 0}; {0, 0} if nothing was reported (WNOHANG).
std::pair<int, int> Waitid(idtype_t type, id_t id, int options) {
  siginfo_t si{};
  if (waitid(type, id, &si, options) != 0) return {-errno, 0};
  if (si.si_pid == 0) return {0, 0};
  return {si.si_code, si.si_status};
}

// Waits (WNOWAIT) until `pid` has something for `options` to report.
void AwaitState(pid_t pid, int options) {
  for (int i = 0; i < 5000; ++i) {
    if (Waitid(P_PID, pid, options | WNOWAIT | WNOHANG).first > 0) return;
    usleep(1000);
  }
  FAIL() << "child " << pid << " never reached the state for options " << options;
}

TEST(WaitOptionsTest, WhichOptionsEachCallTakes) {
  pid_t pid = SleepingChild();
  int status;
  // wait4: WNOHANG|WUNTRACED|WCONTINUED|__WNOTHREAD|__WCLONE|__WALL only.
  EXPECT_ERRNO(EINVAL, wait4(pid, &status, WNOWAIT | WNOHANG, nullptr));
  EXPECT_ERRNO(EINVAL, wait4(pid, &status, WEXITED | WNOHANG, nullptr));
  EXPECT_ERRNO(EINVAL, wait4(pid, &status, 0x4000000 | WNOHANG, nullptr));
  EXPECT_EQ(wait4(pid, &status, WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD, nullptr), 0);
  // waitid: needs one of WEXITED, WSTOPPED, WCONTINUED.
  EXPECT_EQ(Waitid(P_PID, pid, WNOHANG).first, -EINVAL);
  EXPECT_EQ(Waitid(P_PID, pid, WNOHANG | WNOWAIT).first, -EINVAL);
  EXPECT_EQ(Waitid(P_PID, pid, WEXITED | WNOHANG | 0x4000000).first, -EINVAL);
  EXPECT_EQ(Waitid(static_cast<idtype_t>(99), pid, WEXITED | WNOHANG).first, -EINVAL);
  EXPECT_EQ(Waitid(P_PID, pid, WEXITED | WSTOPPED | WCONTINUED | WNOHANG), std::make_pair(0, 0));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

TEST(WaitOptionsTest, StopReportedByBothCallsAndWnowaitLeavesIt) {
  pid_t pid = SleepingChild();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  AwaitState(pid, WSTOPPED);
  // Not for a wait that asks only for exits or continues.
  EXPECT_EQ(Waitid(P_PID, pid, WEXITED | WCONTINUED | WNOHANG), std::make_pair(0, 0));
  int status = 0;
  EXPECT_EQ(wait4(pid, &status, WNOHANG, nullptr), 0);
  // WNOWAIT, twice: still there.
  EXPECT_EQ(Waitid(P_PID, pid, WSTOPPED | WNOWAIT), std::make_pair(int{CLD_STOPPED}, SIGSTOP));
  EXPECT_EQ(Waitid(P_PID, pid, WSTOPPED | WNOWAIT), std::make_pair(int{CLD_STOPPED}, SIGSTOP));
  // wait4(WUNTRACED) takes it, once.
  ASSERT_EQ(wait4(pid, &status, WUNTRACED, nullptr), pid);
  EXPECT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP) << std::hex << status;
  EXPECT_EQ(wait4(pid, &status, WUNTRACED | WNOHANG, nullptr), 0);
  EXPECT_EQ(Waitid(P_PID, pid, WSTOPPED | WNOHANG), std::make_pair(0, 0));

  // Continued: the same with WCONTINUED, waitid consuming this time.
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  AwaitState(pid, WCONTINUED);
  EXPECT_EQ(Waitid(P_PID, pid, WCONTINUED | WNOWAIT), std::make_pair(int{CLD_CONTINUED}, SIGCONT));
  EXPECT_EQ(Waitid(P_PID, pid, WCONTINUED | WNOWAIT), std::make_pair(int{CLD_CONTINUED}, SIGCONT));
  EXPECT_EQ(wait4(pid, &status, WUNTRACED | WNOHANG, nullptr), 0);  // not a stop
  EXPECT_EQ(Waitid(P_PID, pid, WCONTINUED), std::make_pair(int{CLD_CONTINUED}, SIGCONT));
  EXPECT_EQ(wait4(pid, &status, WCONTINUED | WNOHANG, nullptr), 0);

  // Stopped and continued again: wait4(WCONTINUED) reports the continue.
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  AwaitState(pid, WSTOPPED);
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  AwaitState(pid, WCONTINUED);
  // The stop was overtaken by the continue.
  EXPECT_EQ(wait4(pid, &status, WUNTRACED | WNOHANG, nullptr), 0);
  ASSERT_EQ(wait4(pid, &status, WCONTINUED, nullptr), pid);
  EXPECT_TRUE(WIFCONTINUED(status)) << std::hex << status;

  // Exit: WNOWAIT leaves the zombie, the next wait reaps it.
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  AwaitState(pid, WEXITED);
  EXPECT_EQ(Waitid(P_PID, pid, WEXITED | WNOWAIT), std::make_pair(int{CLD_KILLED}, SIGTERM));
  EXPECT_EQ(Waitid(P_ALL, 0, WEXITED | WSTOPPED | WCONTINUED | WNOWAIT),
            std::make_pair(int{CLD_KILLED}, SIGTERM));
  ASSERT_EQ(wait4(pid, &status, 0, nullptr), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << std::hex << status;
  EXPECT_ERRNO(ECHILD, wait4(pid, &status, WNOHANG, nullptr));
}

TEST(WaitOptionsTest, WnothreadWaitsOnlyForTheCallersOwnChildren) {
  std::atomic<pid_t> child{0};
  std::atomic<bool> waited{false};
  // The child's parent is the thread that forks it, alive meanwhile (when
  // it exits, its children go to another thread of the group).
  std::thread t([&] {
    pid_t c = fork();
    if (c == 0) _exit(7);
    child = c;
    while (!waited.load()) usleep(1000);
  });
  while (child.load() == 0) usleep(1000);
  AwaitState(child, WEXITED);
  int status;
  EXPECT_ERRNO(ECHILD, wait4(child, &status, __WNOTHREAD | WNOHANG, nullptr));
  EXPECT_EQ(Waitid(P_PID, child, WEXITED | WNOHANG | __WNOTHREAD).first, -ECHILD);
  // Without it, any thread of the group waits for the group's children.
  EXPECT_EQ(wait4(child, &status, 0, nullptr), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
  waited = true;
  t.join();
}

TEST(WaitOptionsTest, ByProcessGroup) {
  pid_t a = SleepingChild();
  ASSERT_EQ(setpgid(a, a), 0);  // its own group
  pid_t b = SleepingChild();    // in ours
  ASSERT_EQ(kill(a, SIGTERM), 0);
  AwaitState(a, WEXITED);
  // Our group has only b, alive; a's group has a's report.
  EXPECT_EQ(Waitid(P_PGID, getpgrp(), WEXITED | WNOHANG), std::make_pair(0, 0));
  EXPECT_EQ(Waitid(P_PGID, a, WEXITED), std::make_pair(int{CLD_KILLED}, SIGTERM));
  EXPECT_EQ(Waitid(P_PGID, a, WEXITED | WNOHANG).first, -ECHILD);  // nobody left there
  int status;
  EXPECT_EQ(waitpid(-a, &status, WNOHANG), -1);
  ASSERT_EQ(kill(b, SIGKILL), 0);
  // P_PGID with id 0: the caller's own group (Linux 5.4).
  EXPECT_EQ(Waitid(P_PGID, 0, WEXITED), std::make_pair(int{CLD_KILLED}, SIGKILL));
  EXPECT_ERRNO(ECHILD, waitpid(0, &status, WNOHANG));
}

}  // namespace
}  // namespace syscall_test
