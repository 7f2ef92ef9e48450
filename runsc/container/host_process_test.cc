#include "runsc/container/host_process.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

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

// Its identity, asserted to be there.
ProcessIdentity Identity(pid_t pid) {
  absl::StatusOr<ProcessIdentity> id = IdentityOf(pid);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.ok() ? *id : ProcessIdentity{};
}

// True (and `*ws` set) once child `pid` has been reaped here.
bool Reaped(pid_t pid, int* ws) { return waitpid(pid, ws, WNOHANG) == pid; }

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// A sleeping child made to get pid `want` (free: its process was reaped)
// through ns_last_pid, as a pid reused after a wrap-around would be; 0 if
// another process on the host kept taking it.
pid_t SleepingChildWithPid(pid_t want) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    Put("/proc/sys/kernel/ns_last_pid", std::to_string(want - 1));
    const pid_t pid = SleepingChild();
    if (pid == want) return pid;
    KillAndReap(pid);
  }
  return 0;
}

TEST(ProcessIdentityTest, ALiveChildIsItself) {
  const pid_t pid = SleepingChild();
  ASSERT_GT(pid, 0);
  const ProcessIdentity id = Identity(pid);
  EXPECT_EQ(id.pid, pid);
  EXPECT_GT(id.start_time, 0u);
  EXPECT_EQ(id.boot_id.size(), 36u) << id.boot_id;  // a UUID
  EXPECT_TRUE(ProcessAlive(id));
  absl::StatusOr<int> pidfd = OpenProcess(id);
  ASSERT_TRUE(pidfd.ok()) << pidfd.status();
  close(*pidfd);
  EXPECT_TRUE(SignalProcess(id, SIGKILL).ok());
  int ws = 0;
  ASSERT_EQ(waitpid(pid, &ws, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) << ws;
  EXPECT_FALSE(ProcessAlive(id));
  EXPECT_TRUE(absl::IsNotFound(OpenProcess(id).status()));
  EXPECT_TRUE(absl::IsNotFound(IdentityOf(pid).status()));
}

// Another start time or another boot: not the process recorded, whatever
// lives at that pid now. Nothing signals it and nothing waits for it.
TEST(ProcessIdentityTest, AnotherStartTimeOrBootIsAnotherProcess) {
  const pid_t pid = SleepingChild();
  ASSERT_GT(pid, 0);
  ProcessIdentity later = Identity(pid);
  later.start_time += 1;
  ProcessIdentity other_boot = Identity(pid);
  other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
  for (const ProcessIdentity& id : {later, other_boot}) {
    EXPECT_FALSE(ProcessAlive(id));
    EXPECT_TRUE(absl::IsNotFound(OpenProcess(id).status()));
    EXPECT_TRUE(absl::IsNotFound(SignalProcess(id, SIGKILL)));
    EXPECT_TRUE(EndProcess(id, absl::Seconds(1)).ok());
  }
  int ws = 0;
  EXPECT_FALSE(Reaped(pid, &ws)) << "killed although another process was named: " << ws;
  KillAndReap(pid);
}

// The case itself: the process recorded is gone and its pid now names a
// new process (made so through ns_last_pid). EndProcess (what `seedsc
// delete` does) neither kills nor waits for the new one.
TEST(ProcessIdentityTest, AReusedPidIsNotKilled) {
  const pid_t first = SleepingChild();
  ASSERT_GT(first, 0);
  const ProcessIdentity recorded = Identity(first);
  usleep(30 * 1000);  // start times count clock ticks (10 ms at USER_HZ 100)
  KillAndReap(first);
  const pid_t second = SleepingChildWithPid(first);
  if (second == 0) GTEST_SKIP() << "pid " << first << " was taken by another process each time";
  ASSERT_EQ(second, recorded.pid);
  EXPECT_NE(Identity(second).start_time, recorded.start_time);
  EXPECT_FALSE(ProcessAlive(recorded));
  EXPECT_TRUE(EndProcess(recorded, absl::Seconds(1)).ok());
  EXPECT_TRUE(absl::IsNotFound(SignalProcess(recorded, SIGKILL)));
  int ws = 0;
  EXPECT_FALSE(Reaped(second, &ws)) << "the new process at the reused pid was killed: " << ws;
  KillAndReap(second);
}

// A group leader (a zygote) with one member that runs as `argv0` (sh
// blocked reading the pipe whose write end is returned in *wr); *member
// is its pid. Returns once the member has exec'd (its script writes a
// byte to fd 3, a ready pipe, before it blocks).
pid_t GroupWithMember(const char* argv0, pid_t* member, int* wr) {
  int in[2], report[2], ready[2];
  EXPECT_EQ(pipe(in), 0);
  EXPECT_EQ(pipe(report), 0);
  EXPECT_EQ(pipe(ready), 0);
  const pid_t leader = fork();
  if (leader == 0) {
    setpgid(0, 0);
    const pid_t m = fork();
    if (m == 0) {
      dup2(in[0], 0);
      dup2(ready[1], 3);
      execl("/bin/sh", argv0, "-c", "echo >&3; read x", nullptr);
      _exit(127);
    }
    close(ready[1]);
    if (write(report[1], &m, sizeof(m)) != sizeof(m)) _exit(1);
    for (;;) pause();
  }
  close(in[0]);
  close(report[1]);
  close(ready[1]);
  EXPECT_EQ(read(report[0], member, sizeof(*member)), static_cast<ssize_t>(sizeof(*member)));
  close(report[0]);
  char c = 0;
  EXPECT_EQ(read(ready[0], &c, 1), 1) << "the member never exec'd";
  close(ready[0]);
  *wr = in[1];
  return leader;
}

// A stub whose zygote (its group's leader) was SIGKILLed is orphaned; one
// whose leader lives, or a process that is no stub, is not.
TEST(OrphanedStubsTest, AStubWhoseGroupLeaderIsGone) {
  pid_t stub = 0, other = 0;
  int wr_stub = -1, wr_other = -1;
  const pid_t zygote = GroupWithMember("seedsc-stub", &stub, &wr_stub);
  const pid_t leader = GroupWithMember("not-a-stub", &other, &wr_other);
  ASSERT_GT(stub, 0);
  ASSERT_GT(other, 0);
  EXPECT_TRUE(OrphanedStubs({stub, other, getpid()}).empty());
  KillAndReap(zygote);
  KillAndReap(leader);
  EXPECT_EQ(OrphanedStubs({stub, other, getpid()}), std::vector<pid_t>{stub});
  kill(stub, SIGKILL);  // no longer our children: the host's init reaps them
  kill(other, SIGKILL);
  close(wr_stub);
  close(wr_other);
}

// A state.json from before the start time was recorded: no process counts
// as the sandbox, not even one with a seedsc sandbox's command line
// (another sandbox's sentry has it too); nothing is killed.
TEST(ProcessIdentityTest, WithoutAStartTimeNothingCounts) {
  const pid_t stranger = SleepingChild();
  ASSERT_GT(stranger, 0);
  const ProcessIdentity unknown{.pid = stranger, .start_time = 0, .boot_id = ""};
  EXPECT_FALSE(ProcessAlive(unknown));
  EXPECT_TRUE(EndProcess(unknown, absl::Seconds(1)).ok());
  int ws = 0;
  EXPECT_FALSE(Reaped(stranger, &ws)) << "a process that is no sandbox was killed: " << ws;
  KillAndReap(stranger);

  // One whose command line is a sandbox's: sh blocked reading a pipe.
  int p[2], ready[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(pipe(ready), 0);
  const pid_t sandbox = fork();
  if (sandbox == 0) {
    dup2(p[0], 0);
    dup2(ready[1], 3);
    execl("/bin/sh", "seedsc", "-c", "echo >&3; read x", "boot", nullptr);
    _exit(127);
  }
  close(p[0]);
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "it never exec'd";  // its command line is set
  close(ready[0]);
  const ProcessIdentity legacy{.pid = sandbox, .start_time = 0, .boot_id = ""};
  EXPECT_FALSE(ProcessAlive(legacy));
  EXPECT_TRUE(EndProcess(legacy, absl::Seconds(1)).ok());
  EXPECT_FALSE(Reaped(sandbox, &ws)) << "a sandbox of unknown start time was killed: " << ws;
  KillAndReap(sandbox);
  close(p[1]);
}

TEST(EndProcessTest, KillsAndWaitsUntilItIsAZombie) {
  const pid_t pid = SleepingChild();
  ASSERT_GT(pid, 0);
  EXPECT_NE(DescribeProcess(pid).find(", 1 thread"), std::string::npos) << DescribeProcess(pid);
  EXPECT_TRUE(EndProcess(Identity(pid), absl::Seconds(10)).ok());
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
  const ProcessIdentity id = Identity(pid);
  EXPECT_FALSE(ProcessAlive(id));
  EXPECT_TRUE(EndProcess(id, absl::ZeroDuration()).ok());
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  EXPECT_TRUE(EndProcess(id, absl::ZeroDuration()).ok());
  EXPECT_EQ(DescribeProcess(pid), "");
  EXPECT_TRUE(EndProcess(ProcessIdentity{}, absl::ZeroDuration()).ok());
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
  absl::Status s = EndProcess(Identity(pid), absl::Milliseconds(300));
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
