#include "runsc/container/host_process.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runsc/container/test_files.h"
#include "test/syscalls/test_util.h"

namespace seedvisor::container {
namespace {

using testing_files::Put;
using testing_files::Slurp;
using syscall_test::HaveCap;

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

// Runs `body` as pid 1 of a new pid namespace, with a /proc of that
// namespace (in a new mount namespace, whose mounts do not propagate to
// the host's), and returns what it wrote to the fd it is given (see
// pid_namespaces(7): the namespace's first child is its init, and
// /proc/sys/kernel/ns_last_pid is the writer's own namespace's). A pid
// made reused there never touches the host's pid allocation, and no other
// process can take it first. "" if the namespace could not be made.
template <typename T>
std::string InNewPidNamespace(T body) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return "";
  const pid_t outer = fork();
  if (outer == 0) {  // one thread: unshare(CLONE_NEWNS) needs an unshared fs
    close(out[0]);
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(1);
    const pid_t init = fork();
    if (init == 0) {
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        _exit(1);
      }
      body(out[1]);
      _exit(0);
    }
    _exit(init > 0 && waitpid(init, nullptr, 0) == init ? 0 : 1);
  }
  close(out[1]);
  std::string said;
  char buf[256];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) said.append(buf, n);
  close(out[0]);
  if (outer > 0) waitpid(outer, nullptr, 0);
  return said;
}

// Writes "`what`=`value`" as a line to `fd`, for InNewPidNamespace's caller.
void Say(int fd, const char* what, long value) {
  const std::string line = absl::StrCat(what, "=", value, "\n");
  (void)!write(fd, line.data(), line.size());
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
// new process (made so through ns_last_pid, in a pid namespace of the
// test's own). EndProcess (what `seedsc delete` does) neither kills nor
// waits for the new one.
TEST(ProcessIdentityTest, AReusedPidIsNotKilled) {
  if (!HaveCap(CAP_SYS_ADMIN)) {
    GTEST_SKIP() << "needs CAP_SYS_ADMIN: a pid namespace of its own, and ns_last_pid there";
  }
  const std::string said = InNewPidNamespace([](int out) {
    const pid_t first = SleepingChild();
    absl::StatusOr<ProcessIdentity> recorded = IdentityOf(first);
    usleep(30 * 1000);  // start times count clock ticks (10 ms at USER_HZ 100)
    KillAndReap(first);
    Put("/proc/sys/kernel/ns_last_pid", std::to_string(first - 1));
    const pid_t second = SleepingChild();
    absl::StatusOr<ProcessIdentity> now = IdentityOf(second);
    Say(out, "reused", recorded.ok() && second == recorded->pid);
    if (!recorded.ok() || !now.ok()) return;
    Say(out, "new start time", now->start_time != recorded->start_time);
    Say(out, "alive", ProcessAlive(*recorded));
    Say(out, "end ok", EndProcess(*recorded, absl::Seconds(1)).ok());
    Say(out, "signal not found", absl::IsNotFound(SignalProcess(*recorded, SIGKILL)));
    int ws = 0;
    Say(out, "new one killed", Reaped(second, &ws));
    KillAndReap(second);
  });
  EXPECT_EQ(said,
            "reused=1\nnew start time=1\nalive=0\nend ok=1\nsignal not found=1\n"
            "new one killed=0\n")
      << "(nothing: the pid namespace could not be made)";
}

// A group leader (a zygote) with one member that runs as `argv0` (sh
// blocked reading the pipe whose write end is returned in *wr); *member
// is its pid. Returns once the member has exec'd (its script writes a
// byte to fd 3, a ready pipe, before it blocks).
pid_t GroupWithMember(const char* argv0, pid_t* member, int* wr) {
  int in[2], report[2], ready[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(report, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
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
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
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

// A sandbox's host processes as CreateSandbox lays them out: pid 1 of a
// new pid namespace that only reaps (it exits once it has nothing left to
// reap) and `n` children of it that pause, the first standing for the
// sentry. None is our child: the process between exits at once. Empty
// `children` if the namespace could not be made.
struct Namespace {
  pid_t init = 0;
  std::vector<pid_t> children;  // host pids
};
Namespace StartNamespace(size_t n) {
  Namespace ns;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ns;
  const pid_t mid = fork();
  if (mid == 0) {
    if (unshare(CLONE_NEWPID) != 0) _exit(1);
    const pid_t init = fork();
    if (init == 0) {
      for (size_t i = 0; i < n; ++i) {
        if (fork() == 0) {
          for (;;) pause();
        }
      }
      for (;;) {
        if (wait(nullptr) < 0 && errno == ECHILD) _exit(0);
      }
    }
    _exit(write(p[1], &init, sizeof(init)) == sizeof(init) ? 0 : 1);
  }
  close(p[1]);
  if (read(p[0], &ns.init, sizeof(ns.init)) != sizeof(ns.init)) ns.init = 0;
  close(p[0]);
  if (mid > 0) waitpid(mid, nullptr, 0);
  const std::string list = absl::StrCat("/proc/", ns.init, "/task/", ns.init, "/children");
  for (int i = 0; ns.init > 0 && i < 1000; ++i, usleep(10000)) {
    std::vector<pid_t> got;
    std::istringstream in(Slurp(list));
    for (pid_t c; in >> c;) got.push_back(c);
    if (got.size() == n) {
      ns.children = got;
      break;
    }
  }
  return ns;
}

// Whether `pid` has exited (a zombie or gone; for an init that is not
// ours: reaped by whoever inherited it).
bool Exited(pid_t pid) {
  const std::string stat = Slurp(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || stat.compare(paren + 2, 1, "Z") == 0;
}

// The sentry's parent is its namespace's pid 1; the sandbox has ended only
// once that has exited too (it reaps the sentry first): AwaitNamespaceEnd
// waits for it, and says so when it does not exit in time (stopped here).
TEST(NamespaceInitTest, WaitsForPid1AfterTheSentry) {
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN (a pid namespace)";
  Namespace ns = StartNamespace(1);
  ASSERT_EQ(ns.children.size(), 1u) << "the namespace could not be made";
  const ProcessIdentity sentry = Identity(ns.children[0]);
  absl::StatusOr<ProcessIdentity> init = NamespaceInitOf(sentry);
  ASSERT_TRUE(init.ok()) << init.status();
  EXPECT_EQ(init->pid, ns.init);
  const pid_t ours = SleepingChild();
  ASSERT_GT(ours, 0);
  EXPECT_TRUE(absl::IsNotFound(NamespaceInitOf(Identity(ours)).status()))
      << "its parent (the test) is no namespace's pid 1";
  KillAndReap(ours);

  ASSERT_EQ(kill(ns.init, SIGSTOP), 0);
  ASSERT_TRUE(EndProcess(sentry, absl::Seconds(10)).ok());
  absl::Status late = AwaitNamespaceEnd(*init, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(late)) << late;
  EXPECT_EQ(late.message().rfind(absl::StrCat("pid 1 (host process ", ns.init,
                                              ") has not exited 300ms after"), 0), 0u) << late;
  EXPECT_FALSE(Exited(ns.init));
  ASSERT_EQ(kill(ns.init, SIGCONT), 0);
  absl::Status s = AwaitNamespaceEnd(*init, absl::Seconds(20));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(Exited(ns.init)) << "AwaitNamespaceEnd returned before pid 1 exited";
  EXPECT_TRUE(AwaitNamespaceEnd(*init, absl::ZeroDuration()).ok()) << "gone already";
}

// A fork of the sandbox that lives on in the namespace keeps its pid 1:
// AwaitNamespaceEnd does not wait for it then.
TEST(NamespaceInitTest, Pid1StaysForAForkThatLivesOn) {
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN (a pid namespace)";
  Namespace ns = StartNamespace(2);
  ASSERT_EQ(ns.children.size(), 2u) << "the namespace could not be made";
  const ProcessIdentity sentry = Identity(ns.children[0]);
  absl::StatusOr<ProcessIdentity> init = NamespaceInitOf(sentry);
  ASSERT_TRUE(init.ok()) << init.status();
  ASSERT_TRUE(EndProcess(sentry, absl::Seconds(10)).ok());
  const absl::Time t0 = absl::Now();
  absl::Status s = AwaitNamespaceEnd(*init, absl::Seconds(20));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10)) << "waited for a pid 1 that stays";
  EXPECT_FALSE(Exited(ns.init));
  // The fork ends: so does the namespace.
  EXPECT_TRUE(EndProcess(Identity(ns.children[1]), absl::Seconds(10)).ok());
  EXPECT_TRUE(AwaitNamespaceEnd(*init, absl::Seconds(20)).ok());
  EXPECT_TRUE(Exited(ns.init));
}

}  // namespace
}  // namespace seedvisor::container
