// Conformance tests for pid namespaces (pid_namespaces(7)): clone(2) and
// unshare(2) CLONE_NEWPID with CAP_SYS_ADMIN, the ids a task sees inside
// and outside (getpid, getppid, clone's return, wait, kill, si_pid), the
// namespace's init (unkillable from inside, SIGKILL from outside, the
// orphans' reaper, its end kills the namespace), setns(2) into one, and
// clone's flag checks in Linux's order (EINVAL before EPERM).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(PidNsTest, CloneNewPidChildIsPidOne) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    if (getpid() != 1) _exit(1);
    if (syscall(SYS_gettid) != 1) _exit(2);
    if (getppid() != 0) _exit(3);  // the parent is outside
    // Its children are numbered in the namespace.
    const pid_t c = fork();
    if (c == 0) _exit(getpid() == 2 && getppid() == 1 ? 0 : 1);
    if (c != 2) _exit(4);
    int st;
    if (waitpid(2, &st, 0) != 2 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(5);
    if (waitpid(-1, &st, WNOHANG) != -1 || errno != ECHILD) _exit(6);
    _exit(0);
  }
  // The parent sees the child by its id here.
  EXPECT_NE(pid, 1);
  EXPECT_EQ(WaitCode(pid), 0);
}

// /proc is the procfs of the namespace it was mounted in (the test's): it
// shows that namespace's ids, and status lists one id per level.
TEST(PidNsTest, ProcOfTheOuterNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    close(p[1]);
    char self[32] = {};
    if (readlink("/proc/self", self, sizeof(self) - 1) <= 0) _exit(1);
    const std::string status = ReadFile("/proc/self/status");
    // NSpid: the id in /proc's namespace, then 1 in ours.
    if (status.find(std::string("\nNSpid:\t") + self + "\t1\n") == std::string::npos) _exit(2);
    if (status.find(std::string("\nNStgid:\t") + self + "\t1\n") == std::string::npos) _exit(3);
    char b;
    (void)read(p[0], &b, 1);
    _exit(0);
  }
  close(p[0]);
  const std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  EXPECT_NE(status.find("\nNSpid:\t" + std::to_string(pid) + "\t1\n"), std::string::npos)
      << status;
  close(p[1]);
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsTest, IdsOfTheOutsideAreNotVisibleInside) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  // A process outside (not pid 1, which the test itself may be in the
  // sandbox: that id names the new namespace's init inside).
  const pid_t outside = fork();
  ASSERT_GE(outside, 0);
  if (outside == 0) {
    for (;;) pause();
  }
  ASSERT_NE(outside, 1);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    // Its id names nothing in the new namespace, which has id 1 only.
    if (kill(outside, 0) != -1 || errno != ESRCH) _exit(1);
    if (waitpid(outside, nullptr, WNOHANG) != -1 || errno != ECHILD) _exit(2);
    if (getpgid(outside) != -1 || errno != ESRCH) _exit(3);
    // Our process group and session are the parent's: outside, so 0.
    if (getpgrp() != 0) _exit(4);
    if (getsid(0) != 0) _exit(5);
    // setsid makes them ours: 1.
    if (setsid() != 1 || getpgrp() != 1 || getsid(0) != 1) _exit(6);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
  kill(outside, SIGKILL);
  EXPECT_EQ(WaitCode(outside), 200 + SIGKILL);
}

volatile sig_atomic_t g_usr1_pid = -1;

void RecordSender(int, siginfo_t* info, void*) { g_usr1_pid = info->si_pid; }

TEST(PidNsTest, SignalsToTheInitFromInsideAndOutside) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    struct sigaction sa {};
    sa.sa_sigaction = RecordSender;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    if (sigaction(SIGUSR1, &sa, nullptr) != 0) _exit(1);
    // A child of the init: its SIGKILL and SIGTERM to the init are
    // dropped (no handler); SIGUSR1 arrives with its id.
    const pid_t c = fork();
    if (c == 0) {
      if (kill(1, SIGKILL) != 0) _exit(1);
      if (kill(1, SIGTERM) != 0) _exit(2);
      if (kill(1, SIGUSR1) != 0) _exit(3);
      _exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(2);
    for (int i = 0; i < 10000 && g_usr1_pid == -1; ++i) usleep(1000);
    if (g_usr1_pid != 2) _exit(3);
    g_usr1_pid = -1;
    if (write(ready[1], "r", 1) != 1) _exit(4);
    // The parent sends SIGTERM (dropped: the init has no handler), then
    // SIGUSR1 (si_pid 0: it is outside), then SIGKILL. Pending signals are
    // all taken before the init's own code runs again, so once it has
    // seen the SIGUSR1 the SIGTERM sent before it has been dropped, or has
    // killed it: its answer says it survived.
    char b;
    if (read(go[0], &b, 1) != 1) _exit(5);
    for (int i = 0; i < 10000 && g_usr1_pid == -1; ++i) usleep(1000);
    if (g_usr1_pid != 0) _exit(6);
    if (write(ready[1], "a", 1) != 1) _exit(7);
    for (;;) pause();
  }
  close(ready[1]);
  close(go[0]);
  char b;
  ASSERT_EQ(read(ready[0], &b, 1), 1) << "the init ended early: status " << WaitCode(pid);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_EQ(kill(pid, SIGUSR1), 0);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  // It answers after the SIGTERM and the check of si_pid (EOF: it ended).
  ASSERT_EQ(read(ready[0], &b, 1), 1) << "the init ended: status " << WaitCode(pid);
  EXPECT_EQ(b, 'a');
  int st;
  ASSERT_EQ(waitpid(pid, &st, WNOHANG), 0) << "the init ended early: status " << st;
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitCode(pid), 200 + SIGKILL);
  close(ready[0]);
  close(go[1]);
}

TEST(PidNsTest, OrphansGoToTheNamespaceInit) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    int p[2];
    if (pipe(p) != 0) _exit(1);
    const pid_t a = fork();
    if (a == 0) {
      if (fork() == 0) {
        // B: once A has gone, its parent is the init.
        close(p[1]);
        char b;
        if (read(p[0], &b, 1) != 0) _exit(1);
        for (int i = 0; i < 10000 && getppid() != 1; ++i) usleep(1000);
        _exit(getppid() == 1 ? 42 : 2);
      }
      _exit(0);
    }
    close(p[0]);
    int st;
    if (waitpid(a, &st, 0) != a) _exit(2);
    close(p[1]);
    // The init reaps the orphan (id 3).
    if (waitpid(3, &st, 0) != 3) _exit(3);
    _exit(WIFEXITED(st) && WEXITSTATUS(st) == 42 ? 0 : 4);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsTest, InitsEndKillsTheNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    // Two generations that would sleep for ever, holding the pipe.
    if (fork() == 0) {
      if (fork() == 0) {
        for (;;) pause();
      }
      for (;;) pause();
    }
    _exit(7);
  }
  close(p[1]);
  // The parent hears of the init's end only once everyone in its
  // namespace is gone: the pipe has no writer left then.
  EXPECT_EQ(WaitCode(pid), 7);
  ASSERT_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  char b;
  EXPECT_EQ(read(p[0], &b, 1), 0) << ErrnoName(errno);
  close(p[0]);
}

TEST(PidNsTest, UnshareNewPidMovesTheNextChild) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  EXPECT_EXIT_CODE(RunInChild([] {
                     const pid_t self = getpid();
                     if (unshare(CLONE_NEWPID) != 0) return 1;
                     if (getpid() != self) return 2;  // the caller stays
                     // Once per namespace: a second unshare is EINVAL.
                     if (unshare(CLONE_NEWPID) != -1 || errno != EINVAL) return 3;
                     // A thread cannot be made in another pid namespace.
                     pthread_t th;
                     if (pthread_create(&th, nullptr, [](void*) -> void* { return nullptr; },
                                        nullptr) != EINVAL) {
                       return 4;
                     }
                     const pid_t c = fork();
                     if (c == 0) _exit(getpid() == 1 && getppid() == 0 ? 0 : 1);
                     if (c <= 1) return 5;
                     if (WaitCode(c) != 0) return 6;
                     // Its init has gone: nobody else can join (ENOMEM).
                     const pid_t d = fork();
                     if (d == 0) _exit(0);
                     if (d != -1 || errno != ENOMEM) return 7;
                     return 0;
                   }),
                   0);
}

// clone3's set_tid in a namespace that has no init yet (alloc_pid()): only
// 1 may be asked for; any other id is EINVAL, never a namespace whose first
// process is not its init.
TEST(PidNsTest, SetTidOtherThanOneInANamespaceWithoutInitIsEinval) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  EXPECT_EXIT_CODE(RunInChild([] {
                     auto clone3_at = [](uint64_t flags, pid_t want) {
                       struct clone_args args = {};
                       args.flags = flags;
                       args.exit_signal = SIGCHLD;
                       args.set_tid = reinterpret_cast<uintptr_t>(&want);
                       args.set_tid_size = 1;
                       return syscall(SYS_clone3, &args, sizeof(args));
                     };
                     if (clone3_at(CLONE_NEWPID, 5) != -1 || errno != EINVAL) return 1;
                     if (unshare(CLONE_NEWPID) != 0) return 2;
                     if (clone3_at(0, 5) != -1 || errno != EINVAL) return 3;
                     // 1 makes the namespace's init.
                     const long c = clone3_at(0, 1);
                     if (c == 0) _exit(getpid() == 1 ? 0 : 1);
                     if (c <= 0) return 4;
                     if (WaitCode(static_cast<pid_t>(c)) != 0) return 5;
                     return 0;
                   }),
                   0);
}

// setns(pidfd, CLONE_NEWUTS | CLONE_NEWPID) is all or nothing
// (validate_nsset() before commit_nsset()): when its pid part fails (the
// pidfd's process is in an ancestor pid namespace: EINVAL), the caller keeps
// its own UTS namespace too.
TEST(PidNsTest, SetnsOfSeveralNamespacesIsAllOrNothing) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (unshare(CLONE_NEWUTS) != 0) return 1;
                     if (sethostname("outer", 5) != 0) return 2;
                     const int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
                     if (self < 0) return 3;
                     const pid_t c = ForkWith(CLONE_NEWPID | CLONE_NEWUTS);
                     if (c == 0) {
                       if (sethostname("inner", 5) != 0) _exit(1);
                       if (setns(self, CLONE_NEWUTS | CLONE_NEWPID) != -1 || errno != EINVAL) {
                         _exit(2);
                       }
                       struct utsname u;
                       if (uname(&u) != 0) _exit(3);
                       _exit(strcmp(u.nodename, "inner") == 0 ? 0 : 4);
                     }
                     if (c < 0) return 4;
                     const int code = WaitCode(c);
                     return code == 0 ? 0 : 10 + code;
                   }),
                   0);
}

TEST(PidNsTest, NamespaceFilesAndSetns) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    close(go[1]);
    char b;
    (void)read(go[0], &b, 1);
    // Reap whoever joined, then end.
    while (wait(nullptr) > 0) {
    }
    _exit(0);
  }
  close(go[0]);
  struct stat own, child;
  ASSERT_EQ(stat("/proc/self/ns/pid", &own), 0);
  const std::string path = "/proc/" + std::to_string(init) + "/ns/pid";
  ASSERT_EQ(stat(path.c_str(), &child), 0);
  EXPECT_NE(own.st_ino, child.st_ino);
  EXPECT_EQ(RunInChild([&] {
              const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
              if (fd < 0) return 1;
              if (setns(fd, CLONE_NEWPID) != 0) return 2;
              struct stat after;
              if (stat("/proc/self/ns/pid_for_children", &after) != 0) return 3;
              if (after.st_ino != child.st_ino) return 4;
              // Our pid is unchanged; a child joins the init's namespace.
              const pid_t c = fork();
              if (c == 0) _exit(getpid() > 1 && getppid() == 0 ? 0 : 1);
              if (c <= 0 || WaitCode(c) != 0) return 5;
              // Back out of it is refused: the sandbox's is not below ours.
              const int own_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
              if (own_fd < 0) return 6;
              if (setns(own_fd, CLONE_NEWPID) != 0) return 7;  // our own: fine
              return 0;
            }),
            0);
  close(go[1]);
  EXPECT_EQ(WaitCode(init), 0);
}

TEST(PidNsTest, CloneFlagChecksComeBeforeTheCapability) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (HaveCap(CAP_SYS_ADMIN) && !DropEffective(CAP_SYS_ADMIN)) return 1;
                     // Nonsense combinations are EINVAL, capability or not.
                     if (ForkWith(CLONE_NEWNS | CLONE_FS) != -1 || errno != EINVAL) return 2;
                     if (ForkWith(CLONE_NEWUSER | CLONE_FS) != -1 || errno != EINVAL) return 3;
                     if (ForkWith(CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != -1 ||
                         errno != EINVAL) {
                       return 4;
                     }
                     if (ForkWith(CLONE_NEWIPC | CLONE_SYSVSEM) != -1 || errno != EPERM) return 5;
                     if (ForkWith(CLONE_NEWPID) != -1 || errno != EPERM) return 6;
                     return 0;
                   }),
                   0);
}

TEST(PidNsTest, ThreadInNewPidIsEinvalWithCapSysAdmin) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (ForkWith(CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != -1 ||
                         errno != EINVAL) {
                       return 1;
                     }
                     // CLONE_NEWIPC with CLONE_SYSVSEM: EINVAL once capable.
                     if (ForkWith(CLONE_NEWIPC | CLONE_SYSVSEM) != -1 || errno != EINVAL) return 2;
                     return 0;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
