// Signal dispositions and delivery: rt_sigaction, rt_sigprocmask, pending
// signals, sigaltstack, SA_RESTART, rt_sigsuspend, tgkill, synchronous
// faults (SIGSEGV/SIGFPE/SIGILL), default actions and job control.
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Restores every signal disposition and the signal mask at scope end, so one
// test's handlers never leak into the next.
class SignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int sig = 1; sig < NSIG; sig++) sigaction(sig, nullptr, &saved_[sig]);
    sigprocmask(SIG_SETMASK, nullptr, &saved_mask_);
    ResetCounters();
  }
  void TearDown() override {
    struct itimerval off = {};
    setitimer(ITIMER_REAL, &off, nullptr);
    for (int sig = 1; sig < NSIG; sig++) {
      if (sig != SIGKILL && sig != SIGSTOP)
        sigaction(sig, &saved_[sig], nullptr);
    }
    sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
    stack_t off_stack = {};
    off_stack.ss_flags = SS_DISABLE;
    sigaltstack(&off_stack, nullptr);
  }

  static void ResetCounters() {
    count = 0;
    last_signo = 0;
    last_code = 0;
    last_pid = 0;
    last_tid = 0;
    last_value = 0;
    last_addr = nullptr;
  }

  // Installs `handler` (SA_SIGINFO) for `sig` with `flags`.
  static void Handle(int sig, void (*handler)(int, siginfo_t*, void*) = Record,
                     int flags = 0, const sigset_t* mask = nullptr) {
    struct sigaction sa = {};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask != nullptr) sa.sa_mask = *mask;
    ASSERT_OK(sigaction(sig, &sa, nullptr));
  }

  // Counts deliveries and remembers the last siginfo (async-signal-safe).
  static void Record(int sig, siginfo_t* info, void*) {
    count = count + 1;
    last_signo = sig;
    last_code = info->si_code;
    last_pid = info->si_pid;
    last_tid = syscall(SYS_gettid);
    last_value = info->si_value.sival_int;
    last_addr = info->si_addr;
  }

  static sigset_t Set(std::initializer_list<int> sigs) {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : sigs) sigaddset(&s, sig);
    return s;
  }

  static inline volatile sig_atomic_t count;
  static inline volatile sig_atomic_t last_signo;
  static inline volatile sig_atomic_t last_code;
  static inline volatile pid_t last_pid;
  static inline volatile pid_t last_tid;
  static inline volatile int last_value;
  static inline void* volatile last_addr;

 private:
  struct sigaction saved_[NSIG];
  sigset_t saved_mask_;
};

// ---------------------------------------------------------------- sigaction

TEST_F(SignalTest, KillSelfRunsHandlerBeforeKillReturns) {
  Handle(SIGUSR1);
  ASSERT_OK(kill(getpid(), SIGUSR1));
  EXPECT_EQ(count, 1);
  EXPECT_EQ(last_signo, SIGUSR1);
  EXPECT_EQ(last_code, SI_USER);
  EXPECT_EQ(last_pid, getpid());
}

TEST_F(SignalTest, PlainHandlerGetsSignalNumber) {
  static volatile sig_atomic_t got = 0;
  got = 0;
  struct sigaction sa = {};
  sa.sa_handler = [](int sig) { got = sig; };
  ASSERT_OK(sigaction(SIGUSR2, &sa, nullptr));
  ASSERT_OK(raise(SIGUSR2));
  EXPECT_EQ(got, SIGUSR2);
}

TEST_F(SignalTest, SigactionReturnsOldAction) {
  struct sigaction sa = {}, old = {};
  sa.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGUSR1, &sa, nullptr));
  Handle(SIGUSR1);
  ASSERT_OK(sigaction(SIGUSR1, nullptr, &old));
  EXPECT_EQ(old.sa_sigaction, Record);
  EXPECT_TRUE(old.sa_flags & SA_SIGINFO);
}

TEST_F(SignalTest, IgnoredSignalIsDiscarded) {
  signal(SIGUSR1, SIG_IGN);
  ASSERT_OK(raise(SIGUSR1));
  sigset_t pending;
  ASSERT_OK(sigpending(&pending));
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_F(SignalTest, SigactionErrors) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  EXPECT_ERRNO(EINVAL, sigaction(SIGKILL, &sa, nullptr));
  EXPECT_ERRNO(EINVAL, sigaction(SIGSTOP, &sa, nullptr));
  // Reading SIGKILL's action is fine.
  EXPECT_OK(sigaction(SIGKILL, nullptr, &sa));
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigaction, 0, nullptr, &sa, 8));
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigaction, 65, nullptr, &sa, 8));
  // The kernel's sigset is 8 bytes.
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigaction, SIGUSR1, nullptr, &sa, 4));
}

TEST_F(SignalTest, SaResethandRestoresDefault) {
  Handle(SIGUSR1, Record, SA_RESETHAND);
  ASSERT_OK(raise(SIGUSR1));
  EXPECT_EQ(count, 1);
  struct sigaction now;
  ASSERT_OK(sigaction(SIGUSR1, nullptr, &now));
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST_F(SignalTest, HandlerMaskBlocksDuringHandler) {
  // While SIGUSR1's handler runs, SIGUSR1 itself (no SA_NODEFER) and the
  // signals of sa_mask are blocked.
  static volatile sig_atomic_t usr1_blocked = 0, usr2_blocked = 0;
  sigset_t mask = Set({SIGUSR2});
  Handle(
      SIGUSR1,
      [](int, siginfo_t*, void*) {
        sigset_t cur;
        sigprocmask(SIG_BLOCK, nullptr, &cur);
        usr1_blocked = sigismember(&cur, SIGUSR1);
        usr2_blocked = sigismember(&cur, SIGUSR2);
      },
      0, &mask);
  ASSERT_OK(raise(SIGUSR1));
  EXPECT_EQ(usr1_blocked, 1);
  EXPECT_EQ(usr2_blocked, 1);
  // And the mask is back after the handler returns.
  sigset_t cur;
  sigprocmask(SIG_BLOCK, nullptr, &cur);
  EXPECT_FALSE(sigismember(&cur, SIGUSR1));
  EXPECT_FALSE(sigismember(&cur, SIGUSR2));
}

TEST_F(SignalTest, SaNodeferLeavesSignalUnblocked) {
  static volatile sig_atomic_t blocked = 1;
  Handle(
      SIGUSR1,
      [](int, siginfo_t*, void*) {
        sigset_t cur;
        sigprocmask(SIG_BLOCK, nullptr, &cur);
        blocked = sigismember(&cur, SIGUSR1);
      },
      SA_NODEFER);
  ASSERT_OK(raise(SIGUSR1));
  EXPECT_EQ(blocked, 0);
}

// ---------------------------------------------------------------- masks

TEST_F(SignalTest, BlockedSignalStaysPendingUntilUnblocked) {
  Handle(SIGUSR1);
  sigset_t usr1 = Set({SIGUSR1});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr1, nullptr));
  ASSERT_OK(kill(getpid(), SIGUSR1));
  EXPECT_EQ(count, 0);
  sigset_t pending;
  ASSERT_OK(sigpending(&pending));
  EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  // Unblocking delivers it before sigprocmask returns.
  ASSERT_OK(sigprocmask(SIG_UNBLOCK, &usr1, nullptr));
  EXPECT_EQ(count, 1);
  ASSERT_OK(sigpending(&pending));
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_F(SignalTest, StandardSignalsDoNotQueue) {
  Handle(SIGUSR1);
  sigset_t usr1 = Set({SIGUSR1});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr1, nullptr));
  ASSERT_OK(raise(SIGUSR1));
  ASSERT_OK(raise(SIGUSR1));
  ASSERT_OK(raise(SIGUSR1));
  ASSERT_OK(sigprocmask(SIG_UNBLOCK, &usr1, nullptr));
  EXPECT_EQ(count, 1);
}

TEST_F(SignalTest, RealtimeSignalsQueueWithValues) {
  static std::atomic<int> values[4];
  static std::atomic<int> n;
  n = 0;
  Handle(SIGRTMIN, [](int, siginfo_t* info, void*) {
    int i = n++;
    if (i < 4) values[i] = info->si_value.sival_int;
  });
  sigset_t rt = Set({SIGRTMIN});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &rt, nullptr));
  for (int v : {10, 20, 30}) {
    union sigval sv;
    sv.sival_int = v;
    ASSERT_OK(sigqueue(getpid(), SIGRTMIN, sv));
  }
  ASSERT_OK(sigprocmask(SIG_UNBLOCK, &rt, nullptr));
  ASSERT_EQ(n.load(), 3);
  // Delivered in the order sent.
  EXPECT_EQ(values[0].load(), 10);
  EXPECT_EQ(values[1].load(), 20);
  EXPECT_EQ(values[2].load(), 30);
}

TEST_F(SignalTest, SigqueueInfoCode) {
  Handle(SIGUSR1);
  union sigval sv;
  sv.sival_int = 1234;
  ASSERT_OK(sigqueue(getpid(), SIGUSR1, sv));
  EXPECT_EQ(count, 1);
  EXPECT_EQ(last_code, SI_QUEUE);
  EXPECT_EQ(last_value, 1234);
}

TEST_F(SignalTest, SigprocmaskReturnsOldAndCannotBlockKillOrStop) {
  sigset_t block = Set({SIGKILL, SIGSTOP, SIGUSR1}), old, now;
  ASSERT_OK(sigprocmask(SIG_SETMASK, &block, &old));
  ASSERT_OK(sigprocmask(SIG_SETMASK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  EXPECT_FALSE(sigismember(&now, SIGKILL));
  EXPECT_FALSE(sigismember(&now, SIGSTOP));
  sigset_t prev;
  ASSERT_OK(sigprocmask(SIG_SETMASK, &old, &prev));
  EXPECT_TRUE(sigismember(&prev, SIGUSR1));
}

TEST_F(SignalTest, SigprocmaskBadHowIsEINVAL) {
  sigset_t s = Set({SIGUSR1});
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigprocmask, 42, &s, nullptr, 8));
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, nullptr, 4));
}

TEST_F(SignalTest, MaskIsInheritedPendingIsNotAcrossFork) {
  sigset_t usr1 = Set({SIGUSR1});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr1, nullptr));
  ASSERT_OK(raise(SIGUSR1));
  int status = RunInChild([] {
    sigset_t mask, pending;
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    sigpending(&pending);
    if (!sigismember(&mask, SIGUSR1)) return 1;
    if (sigismember(&pending, SIGUSR1)) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  // Drop our pending SIGUSR1 before the mask is restored.
  signal(SIGUSR1, SIG_IGN);
}

// ---------------------------------------------------------------- sigaltstack

TEST_F(SignalTest, HandlerRunsOnAlternateStack) {
  static std::vector<char> stack(64 * 1024);
  static volatile uintptr_t local_addr = 0;
  static volatile int on_stack_flag = 0;
  stack_t ss = {}, old = {};
  ss.ss_sp = stack.data();
  ss.ss_size = stack.size();
  ASSERT_OK(sigaltstack(&ss, &old));
  Handle(
      SIGUSR1,
      [](int, siginfo_t*, void*) {
        int local;
        local_addr = reinterpret_cast<uintptr_t>(&local);
        stack_t cur;
        sigaltstack(nullptr, &cur);
        on_stack_flag = cur.ss_flags & SS_ONSTACK;
      },
      SA_ONSTACK);
  ASSERT_OK(raise(SIGUSR1));
  uintptr_t lo = reinterpret_cast<uintptr_t>(stack.data());
  EXPECT_GE(local_addr, lo);
  EXPECT_LT(local_addr, lo + stack.size());
  EXPECT_EQ(on_stack_flag, SS_ONSTACK);
  // Outside the handler we are not on it.
  stack_t cur;
  ASSERT_OK(sigaltstack(nullptr, &cur));
  EXPECT_EQ(cur.ss_flags & SS_ONSTACK, 0);
  EXPECT_EQ(cur.ss_sp, stack.data());
  ss.ss_flags = SS_DISABLE;
  ASSERT_OK(sigaltstack(&ss, nullptr));
}

TEST_F(SignalTest, WithoutSaOnstackHandlerUsesNormalStack) {
  static std::vector<char> stack(64 * 1024);
  static volatile uintptr_t local_addr = 0;
  stack_t ss = {};
  ss.ss_sp = stack.data();
  ss.ss_size = stack.size();
  ASSERT_OK(sigaltstack(&ss, nullptr));
  Handle(SIGUSR1, [](int, siginfo_t*, void*) {
    int local;
    local_addr = reinterpret_cast<uintptr_t>(&local);
  });
  ASSERT_OK(raise(SIGUSR1));
  uintptr_t lo = reinterpret_cast<uintptr_t>(stack.data());
  EXPECT_TRUE(local_addr < lo || local_addr >= lo + stack.size());
  ss.ss_flags = SS_DISABLE;
  ASSERT_OK(sigaltstack(&ss, nullptr));
}

TEST_F(SignalTest, SigaltstackErrors) {
  std::vector<char> stack(64 * 1024);
  stack_t ss = {};
  ss.ss_sp = stack.data();
  // Below the kernel's MINSIGSTKSZ (2048; glibc's macro may be larger).
  ss.ss_size = 1024;
  EXPECT_ERRNO(ENOMEM, sigaltstack(&ss, nullptr));
  ss.ss_size = stack.size();
  ss.ss_flags = 0x1234;
  EXPECT_ERRNO(EINVAL, sigaltstack(&ss, nullptr));
  stack_t cur;
  ASSERT_OK(sigaltstack(nullptr, &cur));
  EXPECT_EQ(cur.ss_flags, SS_DISABLE);
}

// ---------------------------------------------------------------- SA_RESTART

// Blocks in read() on a pipe while a child sends SIGUSR1 after 100 ms and, if
// `write_after_ms` >= 0, writes one byte that much later. Returns read()'s
// result and its errno.
std::pair<ssize_t, int> ReadInterruptedByChild(int write_after_ms) {
  int p[2];
  if (pipe(p) != 0) return {-2, errno};
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    struct timespec ts = {0,
                          100 * 1000 * 1000};  // Parent is in read() by then.
    nanosleep(&ts, nullptr);
    kill(parent, SIGUSR1);
    if (write_after_ms >= 0) {
      ts.tv_nsec = write_after_ms * 1000L * 1000;
      nanosleep(&ts, nullptr);
      _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
    }
    _exit(0);
  }
  char c;
  ssize_t n = read(p[0], &c, 1);
  int err = errno;
  int status;
  waitpid(pid, &status, 0);
  close(p[0]);
  close(p[1]);
  return {n, err};
}

TEST_F(SignalTest, InterruptedReadWithoutSaRestartIsEINTR) {
  Handle(SIGUSR1);
  auto [n, err] = ReadInterruptedByChild(200);
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EINTR) << ErrnoName(err);
  EXPECT_EQ(count, 1);
}

TEST_F(SignalTest, InterruptedReadWithSaRestartRestarts) {
  Handle(SIGUSR1, Record, SA_RESTART);
  auto [n, err] = ReadInterruptedByChild(50);
  EXPECT_EQ(n, 1) << ErrnoName(err);
  EXPECT_EQ(count, 1);
}

TEST_F(SignalTest, TimerInterruptsRead) {
  // setitimer's SIGALRM, as alarm(2) but faster.
  Handle(SIGALRM);
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  struct itimerval it = {{0, 0}, {0, 30 * 1000}};
  ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
  char c;
  EXPECT_ERRNO(EINTR, read(r.get(), &c, 1));
  EXPECT_EQ(count, 1);
  EXPECT_EQ(last_signo, SIGALRM);
  EXPECT_EQ(last_code, SI_KERNEL);
}

TEST_F(SignalTest, AlarmReturnsRemainingSeconds) {
  Handle(SIGALRM);
  EXPECT_EQ(alarm(100), 0u);
  unsigned left = alarm(0);
  EXPECT_GE(left, 99u);
  EXPECT_LE(left, 100u);
  EXPECT_EQ(count, 0);
}

// ---------------------------------------------------------------- sigsuspend

TEST_F(SignalTest, SigsuspendDeliversPendingSignalAndRestoresMask) {
  Handle(SIGUSR1);
  sigset_t usr1 = Set({SIGUSR1});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr1, nullptr));
  ASSERT_OK(raise(SIGUSR1));
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(EINTR, sigsuspend(&empty));
  EXPECT_EQ(count, 1);
  sigset_t now;
  ASSERT_OK(sigprocmask(SIG_BLOCK, nullptr, &now));
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
}

TEST_F(SignalTest, SigsuspendSleepsUntilSignal) {
  Handle(SIGUSR1);
  sigset_t usr1 = Set({SIGUSR1});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr1, nullptr));
  pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    _exit(kill(parent, SIGUSR1) == 0 ? 0 : 1);
  }
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(EINTR, sigsuspend(&empty));
  EXPECT_EQ(count, 1);
  EXPECT_EQ(last_pid, pid);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(SignalTest, SigtimedwaitTakesPendingSignalWithoutHandler) {
  Handle(SIGUSR2);
  sigset_t usr2 = Set({SIGUSR2});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &usr2, nullptr));
  ASSERT_OK(raise(SIGUSR2));
  siginfo_t info = {};
  struct timespec zero = {0, 0};
  EXPECT_EQ(sigtimedwait(&usr2, &info, &zero), SIGUSR2);
  EXPECT_EQ(info.si_signo, SIGUSR2);
  EXPECT_EQ(info.si_pid, getpid());
  EXPECT_EQ(count, 0);
  // Nothing left: times out.
  struct timespec short_wait = {0, 10 * 1000 * 1000};
  EXPECT_ERRNO(EAGAIN, sigtimedwait(&usr2, &info, &short_wait));
}

TEST_F(SignalTest, SigchldOnChildExit) {
  sigset_t chld = Set({SIGCHLD});
  ASSERT_OK(sigprocmask(SIG_BLOCK, &chld, nullptr));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(5);
  siginfo_t info = {};
  struct timespec timeout = {5, 0};
  ASSERT_EQ(sigtimedwait(&chld, &info, &timeout), SIGCHLD) << ErrnoName(errno);
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 5);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

// ---------------------------------------------------------------- kill/tgkill

TEST_F(SignalTest, KillErrors) {
  EXPECT_ERRNO(EINVAL, kill(getpid(), 65));
  EXPECT_ERRNO(EINVAL, kill(getpid(), -1));
  EXPECT_ERRNO(ESRCH, kill(0x3ffffff, SIGUSR1));
  // Signal 0 checks existence only.
  EXPECT_EQ(kill(getpid(), 0), 0);
}

TEST_F(SignalTest, KillProcessGroup) {
  // kill(0, sig) signals the caller's whole process group, caller included.
  // In a child with its own group, so that nothing outside the test (the
  // test runner shares our group) gets the signal.
  int status = RunInChild([] {
    if (setpgid(0, 0) != 0) return 1;
    signal(SIGUSR1, SIG_DFL);
    pid_t member = fork();
    if (member < 0) return 2;
    if (member == 0) {
      for (;;) pause();
    }
    Handle(SIGUSR1);  // Only here: the member keeps the default action.
    if (kill(0, SIGUSR1) != 0) return 3;
    if (count != 1) return 4;
    int st;
    if (waitpid(member, &st, 0) != member) return 5;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGUSR1) return 6;
    // kill(-pgid, sig) is the same thing by number.
    if (kill(-getpgrp(), SIGUSR1) != 0) return 7;
    return count == 2 ? 0 : 8;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(SignalTest, TgkillTargetsThread) {
  Handle(SIGUSR1);
  static std::atomic<pid_t> thread_tid;
  static std::atomic<bool> done;
  thread_tid = 0;
  done = false;
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void*) -> void* {
                  thread_tid = syscall(SYS_gettid);
                  while (!done) sched_yield();
                  return nullptr;
                },
                nullptr),
            0);
  while (thread_tid == 0) sched_yield();
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), thread_tid.load(), SIGUSR1), 0)
      << ErrnoName(errno);
  while (count == 0) sched_yield();
  done = true;
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(last_tid, thread_tid.load());
  EXPECT_EQ(last_code, SI_TKILL);
}

TEST_F(SignalTest, TgkillSelf) {
  Handle(SIGUSR1);
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1), 0);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(last_tid, gettid());
}

TEST_F(SignalTest, TgkillErrors) {
  // Right tid, wrong thread group.
  EXPECT_ERRNO(ESRCH,
               syscall(SYS_tgkill, getpid() + 0x100000, gettid(), SIGUSR1));
  EXPECT_ERRNO(EINVAL, syscall(SYS_tgkill, getpid(), gettid(), 65));
  EXPECT_ERRNO(EINVAL, syscall(SYS_tgkill, 0, gettid(), SIGUSR1));
  EXPECT_EQ(syscall(SYS_tgkill, getpid(), gettid(), 0), 0);
}

// ---------------------------------------------------------------- faults

sigjmp_buf fault_jmp;

// What the last synchronous fault reported.
struct FaultInfo {
  volatile int signo = 0;
  volatile int code = 0;
  void* volatile addr = nullptr;
} fault;

void RecordFault(int sig, siginfo_t* info, void*) {
  fault.signo = sig;
  fault.code = info->si_code;
  fault.addr = info->si_addr;
}

// Records the fault and leaves the faulting code through siglongjmp.
void RecordAndJump(int sig, siginfo_t* info, void* ctx) {
  RecordFault(sig, info, ctx);
  siglongjmp(fault_jmp, 1);
}

class FaultTest : public SignalTest {
 protected:
  void SetUp() override {
    SignalTest::SetUp();
    fault.signo = 0;
    fault.code = 0;
    fault.addr = nullptr;
  }
};

TEST_F(FaultTest, SegvOnUnmappedAddressIsMaperr) {
  Handle(SIGSEGV, RecordAndJump);
  size_t page = sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(
      mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_OK(munmap(p, page));
  if (sigsetjmp(fault_jmp, 1) == 0) {
    *reinterpret_cast<volatile char*>(p + 8) = 1;
    FAIL() << "no fault";
  }
  EXPECT_EQ(fault.signo, SIGSEGV);
  EXPECT_EQ(fault.code, SEGV_MAPERR);
  EXPECT_EQ(fault.addr, p + 8);
}

TEST_F(FaultTest, SegvOnReadOnlyPageIsAccerr) {
  Handle(SIGSEGV, RecordAndJump);
  size_t page = sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(
      mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  if (sigsetjmp(fault_jmp, 1) == 0) {
    *reinterpret_cast<volatile char*>(p + 100) = 1;
    FAIL() << "no fault";
  }
  munmap(p, page);
  EXPECT_EQ(fault.signo, SIGSEGV);
  EXPECT_EQ(fault.code, SEGV_ACCERR);
  EXPECT_EQ(fault.addr, p + 100);
}

TEST_F(FaultTest, SegvOnNullPointer) {
  Handle(SIGSEGV, RecordAndJump);
  if (sigsetjmp(fault_jmp, 1) == 0) {
    volatile int x = *reinterpret_cast<volatile int*>(uintptr_t{0});
    (void)x;
    FAIL() << "no fault";
  }
  EXPECT_EQ(fault.code, SEGV_MAPERR);
  EXPECT_EQ(fault.addr, nullptr);
}

TEST_F(FaultTest, IntegerDivideByZeroIsFpeIntdiv) {
  Handle(SIGFPE, RecordAndJump);
  volatile int zero = 0;
  volatile int result = 0;
  if (sigsetjmp(fault_jmp, 1) == 0) {
    result = 10 / zero;
    FAIL() << "no fault, got " << result;
  }
  EXPECT_EQ(fault.signo, SIGFPE);
  EXPECT_EQ(fault.code, FPE_INTDIV);
}

TEST_F(FaultTest, Ud2IsSigillAndHandlerCanSkipIt) {
  // The handler moves RIP past the 2-byte ud2 in the saved context;
  // rt_sigreturn must resume there.
  Handle(SIGILL, [](int sig, siginfo_t* info, void* ctx) {
    RecordFault(sig, info, ctx);
    static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP] += 2;
  });
  void* ud2_addr = nullptr;
  asm volatile(
      "lea 1f(%%rip), %0\n"
      "1: ud2\n"
      : "=r"(ud2_addr));
  EXPECT_EQ(fault.signo, SIGILL);
  EXPECT_EQ(fault.code, ILL_ILLOPN);
  EXPECT_EQ(fault.addr, ud2_addr);
}

TEST_F(FaultTest, HandlerCanChangeRegistersThroughContext) {
  // rt_sigreturn restores general registers from the (modified) frame.
  Handle(SIGTRAP, [](int, siginfo_t*, void* ctx) {
    static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RAX] = 0x1234;
  });
  uint64_t rax = 0;
  asm volatile(
      "xor %%eax, %%eax\n"
      "int3\n"
      : "=a"(rax));
  EXPECT_EQ(rax, 0x1234u);
}

TEST_F(FaultTest, UnhandledSegvKillsWithSigsegv) {
  int status = RunInChild([] {
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    signal(SIGSEGV, SIG_DFL);
    *reinterpret_cast<volatile int*>(uintptr_t{16}) = 1;
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
}

TEST_F(FaultTest, BlockedSyncFaultStillKills) {
  // A synchronous SIGSEGV that is blocked cannot be held pending: the kernel
  // forces default action (force_sig_info_to_task).
  int status = RunInChild([] {
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    struct sigaction sa = {};
    sa.sa_handler = [](int) { _exit(1); };
    sigaction(SIGSEGV, &sa, nullptr);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_BLOCK, &segv, nullptr);
    *reinterpret_cast<volatile int*>(uintptr_t{16}) = 1;
    return 2;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
}

// ---------------------------------------------------------------- defaults

int DieBy(const std::function<void()>& fn) {
  return RunInChild([&] {
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    fn();
    return 100;
  });
}

TEST_F(SignalTest, DefaultSigtermKills) {
  int status = DieBy([] {
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST_F(SignalTest, AbortKillsWithSigabrt) {
  int status = DieBy([] { abort(); });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
}

TEST_F(SignalTest, SigkillFromParent) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGKILL, SIG_IGN);  // Fails: SIGKILL cannot be ignored.
    for (;;) pause();
  }
  ASSERT_OK(kill(pid, SIGKILL));
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(SignalTest, DefaultIgnoredSignalsDoNotKill) {
  int status = DieBy([] {
    for (int sig : {SIGCHLD, SIGURG, SIGWINCH}) {
      signal(sig, SIG_DFL);
      raise(sig);
    }
    _exit(0);
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(SignalTest, StopAndContinueAreReportedToParent) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (;;) pause();
  }
  int status;
  ASSERT_OK(kill(pid, SIGSTOP));
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  EXPECT_TRUE(WIFSTOPPED(status)) << status;
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  // Without WUNTRACED the stop is not reported (and it was consumed).
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0);

  ASSERT_OK(kill(pid, SIGCONT));
  ASSERT_EQ(waitpid(pid, &status, WCONTINUED), pid);
  EXPECT_TRUE(WIFCONTINUED(status)) << status;

  ASSERT_OK(kill(pid, SIGKILL));
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST_F(SignalTest, SigkillKillsStoppedProcess) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (;;) pause();
  }
  int status;
  ASSERT_OK(kill(pid, SIGSTOP));
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_OK(kill(pid, SIGKILL));
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(SignalTest, WaitidReportsStopAndContinue) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (;;) pause();
  }
  siginfo_t info = {};
  ASSERT_OK(kill(pid, SIGSTOP));
  ASSERT_OK(waitid(P_PID, pid, &info, WSTOPPED));
  EXPECT_EQ(info.si_code, CLD_STOPPED);
  EXPECT_EQ(info.si_status, SIGSTOP);
  ASSERT_OK(kill(pid, SIGCONT));
  ASSERT_OK(waitid(P_PID, pid, &info, WCONTINUED));
  EXPECT_EQ(info.si_code, CLD_CONTINUED);
  EXPECT_EQ(info.si_status, SIGCONT);
  ASSERT_OK(kill(pid, SIGKILL));
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

TEST_F(SignalTest, IgnoredSigchldAutoReapsChildren) {
  // wait(2): with SIGCHLD set to SIG_IGN children leave no zombie, and
  // wait blocks until they are all gone, then fails with ECHILD.
  int status = RunInChild([] {
    signal(SIGCHLD, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) _exit(0);
    int st;
    if (waitpid(-1, &st, 0) != -1 || errno != ECHILD) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
