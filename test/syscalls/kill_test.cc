// Conformance tests for kill(2), tgkill(2) and tkill(2) corner cases: a
// thread id given to kill(), mismatched thread groups, and the permission
// check that signal 0 makes (kernel/signal.c: kill_pid_info(),
// do_tkill(), check_kill_permission()).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int Tgkill(pid_t tgid, pid_t tid, int sig) {
  return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig));
}
int Tkill(pid_t tid, int sig) { return static_cast<int>(syscall(SYS_tkill, tid, sig)); }
pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// A second thread that reports its tid and waits until told to end.
class Thread {
 public:
  Thread() {
    pthread_create(&th_, nullptr, [](void* p) -> void* {
      auto* self = static_cast<Thread*>(p);
      self->tid_.store(Gettid());
      while (!self->stop_.load()) usleep(1000);
      return nullptr;
    }, this);
    while (tid_.load() == 0) usleep(1000);
  }
  ~Thread() { Join(); }
  pid_t tid() const { return tid_.load(); }
  void Join() {
    if (joined_) return;
    stop_.store(true);
    pthread_join(th_, nullptr);
    joined_ = true;
  }

 private:
  pthread_t th_;
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> stop_{false};
  bool joined_ = false;
};

std::atomic<int> g_usr1{0};

// kill() takes any task's id and signals that task's thread group
// (kill_pid_info() finds the thread, group_send_sig_info() sends to its
// process).
TEST(KillTest, ThreadIdSignalsItsProcess) {
  struct sigaction sa = {}, old;
  sa.sa_handler = [](int) { g_usr1.fetch_add(1); };
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  g_usr1 = 0;
  {
    Thread th;
    ASSERT_NE(th.tid(), getpid());
    EXPECT_EQ(kill(th.tid(), 0), 0) << ErrnoName(errno);
    ASSERT_EQ(kill(th.tid(), SIGUSR1), 0) << ErrnoName(errno);
    for (int i = 0; i < 2000 && g_usr1.load() == 0; ++i) usleep(1000);
    EXPECT_EQ(g_usr1.load(), 1);
    pid_t gone = th.tid();
    th.Join();
    // An exited, joined thread's id names nothing.
    for (int i = 0; i < 2000 && kill(gone, 0) == 0; ++i) usleep(1000);
    EXPECT_ERRNO(ESRCH, kill(gone, 0));
    EXPECT_ERRNO(ESRCH, Tkill(gone, 0));
  }
  sigaction(SIGUSR1, &old, nullptr);
}

// A thread id of another process signals that process (and not ours).
TEST(KillTest, OtherProcessThreadId) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(p[0]);
    Thread th;
    pid_t tid = th.tid();
    (void)!write(p[1], &tid, sizeof(tid));
    pause();  // SIGTERM's default action ends the whole process
    _exit(1);
  }
  close(p[1]);
  pid_t tid = 0;
  ASSERT_EQ(read(p[0], &tid, sizeof(tid)), static_cast<ssize_t>(sizeof(tid)));
  close(p[0]);
  ASSERT_NE(tid, child);
  EXPECT_EQ(kill(tid, 0), 0) << ErrnoName(errno);
  // tgkill with the wrong thread group: ESRCH (do_send_specific()).
  EXPECT_ERRNO(ESRCH, Tgkill(getpid(), tid, 0));
  EXPECT_ERRNO(ESRCH, Tgkill(tid, tid, 0));
  EXPECT_ERRNO(ESRCH, Tgkill(tid, child, 0));
  EXPECT_EQ(Tgkill(child, tid, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(Tkill(tid, 0), 0) << ErrnoName(errno);
  ASSERT_EQ(kill(tid, SIGTERM), 0) << ErrnoName(errno);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

TEST(KillTest, TgkillArgumentErrors) {
  // Invalid ids are EINVAL before any lookup; an invalid signal only once
  // the target is found (check_kill_permission()), so ESRCH comes first.
  EXPECT_ERRNO(EINVAL, Tgkill(0, Gettid(), 0));
  EXPECT_ERRNO(EINVAL, Tgkill(-1, Gettid(), 0));
  EXPECT_ERRNO(EINVAL, Tgkill(getpid(), 0, 0));
  EXPECT_ERRNO(EINVAL, Tgkill(getpid(), -5, 0));
  EXPECT_ERRNO(EINVAL, Tgkill(getpid(), Gettid(), 65));
  EXPECT_ERRNO(EINVAL, Tgkill(getpid(), Gettid(), -1));
  EXPECT_ERRNO(ESRCH, Tgkill(0x7ffffff0, 0x7ffffff0, 65));
  EXPECT_ERRNO(ESRCH, Tkill(0x7ffffff0, 65));
  EXPECT_ERRNO(ESRCH, kill(0x7ffffff0, 65));
  EXPECT_ERRNO(EINVAL, Tkill(0, 0));
  EXPECT_ERRNO(EINVAL, Tkill(-1, 0));
  EXPECT_ERRNO(EINVAL, Tkill(Gettid(), 65));
  EXPECT_ERRNO(EINVAL, kill(getpid(), 65));
  EXPECT_ERRNO(EINVAL, kill(getpid(), -1));
  EXPECT_ERRNO(ESRCH, Tgkill(getpid(), 0x7ffffff0, 0));
  EXPECT_ERRNO(ESRCH, Tkill(0x7ffffff0, 0));
  EXPECT_ERRNO(ESRCH, kill(0x7ffffff0, 0));
  EXPECT_EQ(Tgkill(getpid(), Gettid(), 0), 0);
  EXPECT_EQ(Tkill(Gettid(), 0), 0);
}

// Signal 0 sends nothing but checks existence and permission: a process
// of another user without CAP_KILL gets EPERM, except SIGCONT within its
// session (check_kill_permission()).
TEST(KillTest, SignalZeroChecksPermission) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t target = fork();
  ASSERT_GE(target, 0);
  if (target == 0) {
    close(p[1]);
    char c;
    (void)!read(p[0], &c, 1);
    _exit(0);
  }
  close(p[0]);
  int status = RunInChild([target] {
    if (setresuid(1000, 1000, 1000) != 0) return 1;
    if (kill(target, 0) != -1 || errno != EPERM) return 2;
    if (kill(target, SIGUSR1) != -1 || errno != EPERM) return 3;
    if (Tgkill(target, target, 0) != -1 || errno != EPERM) return 4;
    if (Tkill(target, 0) != -1 || errno != EPERM) return 5;
    // Existence is checked before permission.
    if (kill(0x7ffffff0, 0) != -1 || errno != ESRCH) return 6;
    // SIGCONT to a process of the same session is allowed.
    if (kill(target, SIGCONT) != 0) return 7;
    if (kill(getpid(), 0) != 0) return 8;
    // A process of our own real uid may be signalled.
    int same = RunInChild([] { return 0; });
    if (!WIFEXITED(same)) return 9;
    pid_t peer = fork();
    if (peer == 0) {
      pause();
      _exit(0);
    }
    if (kill(peer, 0) != 0) return 10;
    kill(peer, SIGKILL);
    waitpid(peer, nullptr, 0);
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  close(p[1]);
  ASSERT_EQ(waitpid(target, &status, 0), target);
}

// A zombie still exists for kill(pid, 0) until it is reaped.
TEST(KillTest, ZombieExistsUntilReaped) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  siginfo_t si;
  ASSERT_OK(waitid(P_PID, child, &si, WEXITED | WNOWAIT));
  EXPECT_EQ(kill(child, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(kill(child, SIGTERM), 0) << ErrnoName(errno);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_ERRNO(ESRCH, kill(child, 0));
}

}  // namespace
}  // namespace syscall_test
