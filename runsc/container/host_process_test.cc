#include "runsc/container/host_process.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runsc/container/test_files.h"

namespace seedvisor::container {
namespace {

using testing_files::Put;
using testing_files::Slurp;

pid_t SleepingChild() {
  const pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  return pid;
}

TEST(EndProcessTest, KillsAndWaitsUntilItIsAZombie) {
  const pid_t pid = SleepingChild();
  ASSERT_GT(pid, 0);
  EXPECT_NE(DescribeProcess(pid).find(", 1 thread"), std::string::npos) << DescribeProcess(pid);
  EXPECT_TRUE(EndProcess(pid, absl::Seconds(10)).ok());
  // Exited when EndProcess returned, not reaped (we are its parent).
  int ws = 0;
  EXPECT_EQ(waitpid(pid, &ws, WNOHANG), pid);
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) << ws;
}

TEST(EndProcessTest, AZombieOrAReapedProcessIsGoneAlready) {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  siginfo_t si{};
  ASSERT_EQ(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);  // a zombie now
  EXPECT_TRUE(EndProcess(pid, absl::ZeroDuration()).ok());
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  EXPECT_TRUE(EndProcess(pid, absl::ZeroDuration()).ok());
  EXPECT_EQ(DescribeProcess(pid), "");
  EXPECT_TRUE(EndProcess(0, absl::ZeroDuration()).ok());
}

// A process that cannot exit within the time: frozen (cgroup v1 freezer; a
// frozen task does not act on SIGKILL until thawed). The error names it
// and what it was doing; once thawed it dies of the SIGKILL.
TEST(EndProcessTest, SaysWhatIsLeftWhenItDoesNotExitInTime) {
  const std::string cg = absl::StrCat("/sys/fs/cgroup/freezer/end_process_test_", getpid());
  if (mkdir(cg.c_str(), 0755) != 0) GTEST_SKIP() << "no v1 freezer cgroup here: " << cg;
  const pid_t pid = SleepingChild();
  ASSERT_GT(pid, 0);
  Put(cg + "/cgroup.procs", std::to_string(pid));
  Put(cg + "/freezer.state", "FROZEN");
  for (int i = 0; i < 1000 && Slurp(cg + "/freezer.state") != "FROZEN\n"; ++i) usleep(1000);
  ASSERT_EQ(Slurp(cg + "/freezer.state"), "FROZEN\n");
  absl::Status s = EndProcess(pid, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(s.message().rfind(absl::StrCat("host process ", pid, " has not exited 300ms after "
                                           "SIGKILL (state "), 0), 0u) << s;
  EXPECT_NE(s.message().find(", 1 thread)"), std::string::npos) << s;
  Put(cg + "/freezer.state", "THAWED");
  int ws = 0;
  EXPECT_EQ(waitpid(pid, &ws, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) << ws;
  EXPECT_EQ(rmdir(cg.c_str()), 0) << cg;
}

}  // namespace
}  // namespace seedvisor::container
