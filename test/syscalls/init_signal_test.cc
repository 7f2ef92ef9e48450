// Conformance tests for the init of a pid namespace (SIGNAL_UNKILLABLE,
// pid_namespaces(7) "Signals and the init process"): a signal from a
// process of its own namespace that the init has no handler for is
// dropped, SIGKILL and SIGSTOP included, whether sent by kill(2), tgkill(2),
// rt_sigqueueinfo(2), pidfd_send_signal(2), to a process group, to -1, or
// armed by the init itself (a timer). A handler still gets its signal; a
// blocked one waits and is dropped when unblocked without a handler
// (kernel/signal.c sig_task_ignored(), get_signal()).
//
// The test binary must be that init: in the sandbox it is pid 1; natively
// the _native target runs it as pid 1 of a new pid namespace (`unshare
// --pid --fork`, syscall_test's `as_init`). Every check runs in this one
// process: a signal that is not dropped ends the whole binary, which is a
// failure too.
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class InitSignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(getpid(), 1) << "these tests must run as the init of a pid namespace (pid 1): "
                              "natively under `unshare --pid --fork`";
    // A process group and session of its own (natively the namespace's
    // first process is still in unshare's, outside the namespace): kill(0)
    // and killpg() below reach only this namespace. The sandbox's init
    // already leads both (EPERM).
    setsid();
  }
};

// How a child ended, as one comparable string.
std::string Ended(int status) {
  if (status < 0) return "wait failed";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

uint64_t Pending() {
  sigset_t s;
  sigemptyset(&s);
  sigpending(&s);
  uint64_t bits = 0;
  for (int sig = 1; sig < 32; ++sig) {
    if (sigismember(&s, sig)) bits |= uint64_t{1} << sig;
  }
  return bits;
}

// Every signal whose default action would end or stop the init, sent by
// kill(2) from another process of its namespace, root as it is: kill
// returns 0 and nothing happens.
TEST_F(InitSignalTest, KillFromAnotherProcessIsDroppedWithoutHandler) {
  for (int sig : {SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGSEGV, SIGABRT, SIGBUS,
                  SIGPIPE, SIGALRM, SIGXCPU, SIGSYS, SIGRTMIN + 1}) {
    EXPECT_EQ(Ended(RunInChild([sig] { return kill(1, sig) == 0 ? 0 : 10 + errno; })), "exit 0")
        << "kill(1, " << sig << ")";
  }
  EXPECT_EQ(Pending(), 0u);
}

// The thread and queue forms, and a pidfd: all SIGKILL, all dropped.
TEST_F(InitSignalTest, EverySendingCallIsDropped) {
  EXPECT_EQ(Ended(RunInChild([] { return syscall(SYS_tgkill, 1, 1, SIGKILL) == 0 ? 0 : 1; })),
            "exit 0");
  EXPECT_EQ(Ended(RunInChild([] { return syscall(SYS_tkill, 1, SIGKILL) == 0 ? 0 : 1; })),
            "exit 0");
  EXPECT_EQ(Ended(RunInChild([] {
              siginfo_t info{};
              info.si_signo = SIGKILL;
              info.si_code = SI_QUEUE;
              info.si_pid = getpid();
              info.si_uid = getuid();
              return syscall(SYS_rt_sigqueueinfo, 1, SIGKILL, &info) == 0 ? 0 : 1;
            })),
            "exit 0");
  EXPECT_EQ(Ended(RunInChild([] {
              int fd = static_cast<int>(syscall(SYS_pidfd_open, 1, 0));
              if (fd < 0) return 2;
              return syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0 ? 0 : 1;
            })),
            "exit 0");
  EXPECT_EQ(Ended(RunInChild([] { return syscall(SYS_tgkill, 1, 1, SIGTERM) == 0 ? 0 : 1; })),
            "exit 0");
  EXPECT_EQ(Pending(), 0u);
}

// The init signalling itself gets the same answer.
TEST_F(InitSignalTest, InitCannotKillItself) {
  EXPECT_EQ(kill(1, SIGKILL), 0);
  EXPECT_EQ(kill(getpid(), SIGTERM), 0);
  EXPECT_EQ(syscall(SYS_tgkill, 1, syscall(SYS_gettid), SIGKILL), 0);
  EXPECT_EQ(raise(SIGUSR2), 0);
  EXPECT_EQ(kill(0, SIGINT), 0);  // its own process group: only itself
  EXPECT_EQ(Pending(), 0u);
}

// kill(-1) never reaches the init (and the init is not "found" by it);
// a process-group kill reaches every member but the init.
TEST_F(InitSignalTest, KillAllAndProcessGroupSpareTheInit) {
  EXPECT_EQ(Ended(RunInChild([] {
              pid_t victim = fork();
              if (victim == 0) {
                for (;;) pause();
              }
              if (victim < 0) return 2;
              if (kill(-1, SIGKILL) != 0) return 3;
              int st = 0;
              if (waitpid(victim, &st, 0) != victim) return 4;
              return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 5;
            })),
            "exit 0");
  // The child is in the init's process group (1, which kill(-1) cannot
  // name): it dies, the init does not.
  EXPECT_EQ(Ended(RunInChild([] {
              kill(0, SIGKILL);
              return 1;
            })),
            "signal 9");
  EXPECT_EQ(Ended(RunInChild([] {
              kill(0, SIGTERM);
              return 1;
            })),
            "signal 15");
  EXPECT_EQ(Ended(RunInChild([] {
              constexpr unsigned kPidfdSignalProcessGroup = 1u << 2;  // PIDFD_SIGNAL_PROCESS_GROUP
              int fd = static_cast<int>(syscall(SYS_pidfd_open, 1, 0));
              if (fd < 0) return 2;
              syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, kPidfdSignalProcessGroup);
              return 1;
            })),
            "signal 9");
}

// SIGSTOP (and SIGTSTP) from another process does not stop the init. The
// child sends it, then asks the init to answer through a pipe: a stopped
// init never would, so after 20 s the child continues it and fails.
TEST_F(InitSignalTest, StopFromAnotherProcessIsDropped) {
  for (int sig : {SIGSTOP, SIGTSTP}) {
    int ask[2], answer[2];
    ASSERT_OK(pipe(ask));
    ASSERT_OK(pipe(answer));
    fflush(nullptr);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (kill(1, sig) != 0) _exit(2);
      if (write(ask[1], "?", 1) != 1) _exit(3);
      pollfd p{answer[0], POLLIN, 0};
      if (poll(&p, 1, 20000) != 1) {
        kill(1, SIGCONT);
        _exit(1);
      }
      _exit(0);
    }
    char c;
    // A stop pending here takes effect when read() returns.
    ASSERT_EQ(read(ask[0], &c, 1), 1);
    ASSERT_EQ(write(answer[1], "!", 1), 1);
    int st = 0;
    ASSERT_EQ(waitpid(child, &st, 0), child);
    EXPECT_EQ(Ended(st), "exit 0") << "signal " << sig << " stopped the init";
    for (int fd : {ask[0], ask[1], answer[0], answer[1]}) close(fd);
  }
}

// A blocked signal is queued (it may have a handler by the time it is
// unblocked); unblocked without one, it is dropped.
TEST_F(InitSignalTest, BlockedSignalIsDroppedWhenUnblocked) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old));
  EXPECT_EQ(Ended(RunInChild([] { return kill(1, SIGTERM) == 0 ? 0 : 1; })), "exit 0");
  EXPECT_EQ(Pending(), uint64_t{1} << SIGTERM);
  ASSERT_OK(sigprocmask(SIG_SETMASK, &old, nullptr));
  EXPECT_EQ(Pending(), 0u);
}

std::atomic<int> g_handled{0};

// A handler gets what the init asked for, from anyone.
TEST_F(InitSignalTest, HandlerStillGetsTheSignal) {
  struct sigaction sa{}, old_term{}, old_usr1{};
  sa.sa_handler = [](int sig) { g_handled.fetch_add(sig); };
  ASSERT_OK(sigaction(SIGTERM, &sa, &old_term));
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old_usr1));
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  ASSERT_OK(sigprocmask(SIG_BLOCK, &block, &old));
  g_handled = 0;
  EXPECT_EQ(Ended(RunInChild([] {
              return kill(1, SIGTERM) == 0 && syscall(SYS_tgkill, 1, 1, SIGUSR1) == 0 ? 0 : 1;
            })),
            "exit 0");
  ASSERT_OK(sigprocmask(SIG_SETMASK, &old, nullptr));  // both delivered here
  EXPECT_EQ(g_handled.load(), SIGTERM + SIGUSR1);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGUSR1, &old_usr1, nullptr);
}

// Signals the kernel sends for the init's own timers follow the same rule:
// SIGALRM of an itimer and a POSIX timer's SIGKILL are dropped.
TEST_F(InitSignalTest, TimerSignalsAreDroppedWithoutHandler) {
  itimerval it{};
  it.it_value.tv_usec = 20000;
  ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGKILL;
  timer_t timer;
  ASSERT_OK(timer_create(CLOCK_MONOTONIC, &ev, &timer));
  itimerspec ts{};
  ts.it_value.tv_nsec = 30000000;
  ASSERT_OK(timer_settime(timer, 0, &ts, nullptr));
  // Not interrupted: nothing reaches the init.
  timespec nap{0, 200000000};
  EXPECT_EQ(nanosleep(&nap, nullptr), 0) << ErrnoName(errno);
  timer_delete(timer);
  EXPECT_EQ(Pending(), 0u);
}

sigjmp_buf g_fault_jmp;

// A fault still reaches the init's handler (the same signal without one
// kills it: test/hostile's init cases, which need an init of their own).
TEST_F(InitSignalTest, FaultReachesTheHandler) {
  struct sigaction sa{}, old{};
  sa.sa_handler = [](int) { siglongjmp(g_fault_jmp, 1); };
  ASSERT_OK(sigaction(SIGSEGV, &sa, &old));
  volatile int* volatile bad = nullptr;
  if (sigsetjmp(g_fault_jmp, 1) == 0) {
    *bad = 1;
    ADD_FAILURE() << "no fault";
  }
  sigaction(SIGSEGV, &old, nullptr);
}

}  // namespace
}  // namespace syscall_test
