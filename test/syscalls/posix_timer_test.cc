// POSIX timers: timer_create/settime/gettime/getoverrun/delete on the wall
// and CPU clocks, SIGEV_SIGNAL/NONE/THREAD_ID and glibc's SIGEV_THREAD,
// overrun counting, and their lifetime across fork and execve.
//
// The timer syscalls are called raw (kernel timer ids) except for the
// SIGEV_THREAD case, which is glibc's. Timing bounds are generous: the
// tests run on a loaded machine.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int64_t kMs = 1000000;

int TimerCreate(clockid_t c, struct sigevent* ev, int* id) {
  return syscall(SYS_timer_create, c, ev, id);
}
int TimerSet(int id, int flags, int64_t value_ns, int64_t interval_ns, itimerspec* old = nullptr) {
  itimerspec v{{interval_ns / 1000000000, interval_ns % 1000000000},
               {value_ns / 1000000000, value_ns % 1000000000}};
  return syscall(SYS_timer_settime, id, flags, &v, old);
}
int TimerGet(int id, itimerspec* v) { return syscall(SYS_timer_gettime, id, v); }
int TimerOverrun(int id) { return syscall(SYS_timer_getoverrun, id); }
int TimerDelete(int id) { return syscall(SYS_timer_delete, id); }

int64_t Ns(const timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
int64_t Now(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return Ns(ts);
}

sigevent SignalEvent(int sig, int value) {
  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = sig;
  ev.sigev_value.sival_int = value;
  return ev;
}

// Waits up to `ms` for `sig` (blocked); 0 on timeout.
int Wait(int sig, siginfo_t* info, int ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  timespec to{ms / 1000, (ms % 1000) * kMs};
  int r = sigtimedwait(&set, info, &to);
  return r < 0 ? 0 : r;
}

bool Pending(int sig) {
  sigset_t set;
  sigpending(&set);
  return sigismember(&set, sig);
}

// Blocks SIGUSR1, SIGUSR2 and SIGALRM for the test (and threads it makes),
// drains leftovers, and deletes the timers it made.
class PosixTimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGUSR1, SIGUSR2, SIGALRM}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  void TearDown() override {
    for (int id : ids_) TimerDelete(id);
    siginfo_t info;
    for (int s : {SIGUSR1, SIGUSR2, SIGALRM}) {
      while (Wait(s, &info, 0) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  int Create(clockid_t c, sigevent* ev) {
    int id = -1;
    EXPECT_EQ(TimerCreate(c, ev, &id), 0) << ErrnoName(errno);
    if (id >= 0) ids_.push_back(id);
    return id;
  }
  sigset_t old_;
  std::vector<int> ids_;
};

TEST_F(PosixTimerTest, OneShotMonotonic) {
  sigevent ev = SignalEvent(SIGUSR1, 42);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 200 * kMs, 0), 0);
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_GT(Ns(v.it_value), 0);
  EXPECT_LE(Ns(v.it_value), 200 * kMs);
  siginfo_t info{};
  ASSERT_EQ(Wait(SIGUSR1, &info, 5000), SIGUSR1);
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_EQ(info.si_timerid, id);
  EXPECT_EQ(info.si_value.sival_int, 42);
  EXPECT_EQ(info.si_overrun, 0);
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_EQ(Ns(v.it_value), 0);
  EXPECT_EQ(Ns(v.it_interval), 0);
  EXPECT_EQ(Wait(SIGUSR1, &info, 100), 0) << "a one-shot timer fired twice";
}

TEST_F(PosixTimerTest, PeriodicRealtime) {
  sigevent ev = SignalEvent(SIGUSR1, 7);
  int id = Create(CLOCK_REALTIME, &ev);
  ASSERT_EQ(TimerSet(id, 0, 10 * kMs, 10 * kMs), 0);
  for (int i = 0; i < 3; ++i) {
    siginfo_t info{};
    ASSERT_EQ(Wait(SIGUSR1, &info, 5000), SIGUSR1) << "expiry " << i;
    EXPECT_EQ(info.si_code, SI_TIMER);
    EXPECT_EQ(info.si_timerid, id);
    EXPECT_EQ(info.si_value.sival_int, 7);
  }
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_EQ(Ns(v.it_interval), 10 * kMs);
  EXPECT_GT(Ns(v.it_value), 0);
  EXPECT_LE(Ns(v.it_value), 10 * kMs);
}

TEST_F(PosixTimerTest, DefaultSigeventIsSigalrmWithTheId) {
  int id = Create(CLOCK_MONOTONIC, nullptr);
  ASSERT_EQ(TimerSet(id, 0, 5 * kMs, 0), 0);
  siginfo_t info{};
  ASSERT_EQ(Wait(SIGALRM, &info, 5000), SIGALRM);
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_EQ(info.si_timerid, id);
  EXPECT_EQ(info.si_value.sival_int, id);
}

TEST_F(PosixTimerTest, AbsoluteTimeInThePastFiresAtOnce) {
  for (clockid_t c : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME}) {
    sigevent ev = SignalEvent(SIGUSR1, c);
    int id = Create(c, &ev);
    ASSERT_EQ(TimerSet(id, TIMER_ABSTIME, Now(c) - 1000 * kMs, 0), 0);
    siginfo_t info{};
    EXPECT_EQ(Wait(SIGUSR1, &info, 1000), SIGUSR1) << "clock " << c;
    EXPECT_EQ(info.si_value.sival_int, c);
  }
}

TEST_F(PosixTimerTest, AbsoluteTimeInTheFuture) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_REALTIME, &ev);
  int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_EQ(TimerSet(id, TIMER_ABSTIME, Now(CLOCK_REALTIME) + 500 * kMs, 0), 0);
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_GT(Ns(v.it_value), 0);
  EXPECT_LE(Ns(v.it_value), 500 * kMs);
  siginfo_t info{};
  ASSERT_EQ(Wait(SIGUSR1, &info, 5000), SIGUSR1);
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 490 * kMs);
}

TEST_F(PosixTimerTest, GettimeCountsDown) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 10000 * kMs, 0), 0);
  itimerspec a{}, b{};
  ASSERT_EQ(TimerGet(id, &a), 0);
  usleep(50000);
  ASSERT_EQ(TimerGet(id, &b), 0);
  EXPECT_LE(Ns(a.it_value), 10000 * kMs);
  EXPECT_GT(Ns(a.it_value), 9000 * kMs);
  EXPECT_LE(Ns(b.it_value), Ns(a.it_value) - 50 * kMs);
}

TEST_F(PosixTimerTest, DisarmWithZeroReturnsTheOldSetting) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 2000 * kMs, 300 * kMs), 0);
  itimerspec old{};
  ASSERT_EQ(TimerSet(id, 0, 0, 0, &old), 0);
  EXPECT_GT(Ns(old.it_value), 0);
  EXPECT_LE(Ns(old.it_value), 2000 * kMs);
  EXPECT_EQ(Ns(old.it_interval), 300 * kMs);
  siginfo_t info{};
  EXPECT_EQ(Wait(SIGUSR1, &info, 300), 0) << "a disarmed timer fired";
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_EQ(Ns(v.it_value), 0);
  EXPECT_EQ(Ns(v.it_interval), 0);
}

TEST_F(PosixTimerTest, OverrunWhileTheSignalIsBlocked) {
  sigevent ev = SignalEvent(SIGUSR2, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 1 * kMs, 1 * kMs), 0);
  usleep(50000);
  siginfo_t info{};
  ASSERT_EQ(Wait(SIGUSR2, &info, 5000), SIGUSR2);
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_GE(info.si_overrun, 10);
  // timer_getoverrun(2): the overrun of the expiry last delivered.
  EXPECT_EQ(TimerOverrun(id), info.si_overrun);
  ASSERT_EQ(TimerSet(id, 0, 0, 0), 0);
}

TEST_F(PosixTimerTest, SigevNoneOnlyCountsDown) {
  sigevent ev{};
  ev.sigev_notify = SIGEV_NONE;
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 200 * kMs, 0), 0);
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_GT(Ns(v.it_value), 0);
  usleep(300000);
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_EQ(Ns(v.it_value), 0);  // an expired SIGEV_NONE one-shot reads 0
  EXPECT_FALSE(Pending(SIGALRM));
  // Periodic: gettime stays within the period.
  ASSERT_EQ(TimerSet(id, 0, 10 * kMs, 10 * kMs), 0);
  usleep(55000);
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_GT(Ns(v.it_value), 0);
  EXPECT_LE(Ns(v.it_value), 10 * kMs);
}

std::atomic<int> g_thread_tid{0};
std::atomic<int> g_thread_code{0};
std::atomic<int> g_thread_timerid{-1};
std::atomic<bool> g_thread_start{false};

TEST_F(PosixTimerTest, SigevThreadIdGoesToThatThread) {
  pthread_t th;
  ASSERT_EQ(pthread_create(
                &th, nullptr,
                [](void*) -> void* {
                  g_thread_tid = static_cast<int>(syscall(SYS_gettid));
                  siginfo_t info{};
                  if (Wait(SIGUSR1, &info, 5000) == SIGUSR1) {
                    g_thread_code = info.si_code;
                    g_thread_timerid = info.si_timerid;
                  }
                  return nullptr;
                },
                nullptr),
            0);
  while (g_thread_tid == 0) usleep(1000);
  sigevent ev = SignalEvent(SIGUSR1, 0);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev._sigev_un._tid = g_thread_tid;
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 10 * kMs, 0), 0);
  pthread_join(th, nullptr);
  EXPECT_EQ(g_thread_code, SI_TIMER);
  EXPECT_EQ(g_thread_timerid, id);
  EXPECT_FALSE(Pending(SIGUSR1));

  // Only a thread of the caller's process.
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ev._sigev_un._tid = child;
  int bad = -1;
  EXPECT_ERRNO(EINVAL, TimerCreate(CLOCK_MONOTONIC, &ev, &bad));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

std::atomic<int> g_callback_value{0};

TEST_F(PosixTimerTest, GlibcSigevThreadRunsTheCallback) {
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD;
  ev.sigev_value.sival_int = 99;
  ev.sigev_notify_function = [](sigval v) { g_callback_value = v.sival_int; };
  timer_t t;
  ASSERT_EQ(timer_create(CLOCK_MONOTONIC, &ev, &t), 0) << ErrnoName(errno);
  itimerspec v{{0, 0}, {0, 10 * kMs}};
  ASSERT_EQ(timer_settime(t, 0, &v, nullptr), 0);
  for (int i = 0; i < 500 && g_callback_value == 0; ++i) usleep(10000);
  EXPECT_EQ(g_callback_value, 99);
  EXPECT_EQ(timer_delete(t), 0);
}

TEST_F(PosixTimerTest, ProcessCpuTimerFiresAfterBurningCpu) {
  sigevent ev = SignalEvent(SIGUSR1, 5);
  int id = Create(CLOCK_PROCESS_CPUTIME_ID, &ev);
  int64_t cpu0 = Now(CLOCK_PROCESS_CPUTIME_ID);
  ASSERT_EQ(TimerSet(id, 0, 50 * kMs, 0), 0);
  usleep(150000);  // sleeping burns no CPU time
  EXPECT_FALSE(Pending(SIGUSR1)) << "a CPU timer fired on wall time";
  int64_t end = Now(CLOCK_MONOTONIC) + 10000 * kMs;
  while (!Pending(SIGUSR1) && Now(CLOCK_MONOTONIC) < end) {
  }
  ASSERT_TRUE(Pending(SIGUSR1));
  EXPECT_GE(Now(CLOCK_PROCESS_CPUTIME_ID) - cpu0, 50 * kMs);
  siginfo_t info{};
  ASSERT_EQ(Wait(SIGUSR1, &info, 0), SIGUSR1);
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_EQ(info.si_value.sival_int, 5);
}

TEST_F(PosixTimerTest, ThreadCpuTimerCountsDown) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_THREAD_CPUTIME_ID, &ev);
  ASSERT_EQ(TimerSet(id, 0, 20 * kMs, 0), 0);
  int64_t end = Now(CLOCK_MONOTONIC) + 10000 * kMs;
  while (!Pending(SIGUSR1) && Now(CLOCK_MONOTONIC) < end) {
  }
  EXPECT_TRUE(Pending(SIGUSR1));
  // Another process's CPU clock (clock_getcpuclockid) takes a timer too.
  clockid_t c;
  ASSERT_EQ(clock_getcpuclockid(getpid(), &c), 0);
  int id2 = Create(c, &ev);
  EXPECT_GE(id2, 0);
}

TEST_F(PosixTimerTest, OtherThreadAndProcessCpuClocks) {
  // Another thread's CPU clock: fires while that thread spins.
  static std::atomic<bool> stop{false};
  stop = false;
  pthread_t th;
  ASSERT_EQ(pthread_create(
                &th, nullptr,
                [](void*) -> void* {
                  while (!stop) {
                  }
                  return nullptr;
                },
                nullptr),
            0);
  clockid_t tc;
  ASSERT_EQ(pthread_getcpuclockid(th, &tc), 0);
  sigevent ev = SignalEvent(SIGUSR1, 1);
  int id = Create(tc, &ev);
  ASSERT_EQ(TimerSet(id, 0, 30 * kMs, 0), 0);
  siginfo_t info{};
  EXPECT_EQ(Wait(SIGUSR1, &info, 10000), SIGUSR1);
  EXPECT_EQ(info.si_value.sival_int, 1);
  stop = true;
  pthread_join(th, nullptr);

  // A child process's CPU clock: the signal comes to the timer's owner.
  pid_t child = fork();
  if (child == 0) {
    int64_t end = Now(CLOCK_MONOTONIC) + 20000 * kMs;
    while (Now(CLOCK_MONOTONIC) < end) {
    }
    _exit(0);
  }
  clockid_t pc;
  ASSERT_EQ(clock_getcpuclockid(child, &pc), 0);
  ev = SignalEvent(SIGUSR1, 2);
  int id2 = Create(pc, &ev);
  ASSERT_EQ(TimerSet(id2, 0, 30 * kMs, 0), 0);
  EXPECT_EQ(Wait(SIGUSR1, &info, 10000), SIGUSR1);
  EXPECT_EQ(info.si_value.sival_int, 2);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST_F(PosixTimerTest, IgnoredSignalTinyPeriodStaysArmed) {
  // A 1 ns period whose signal is ignored: nothing queues and the timer
  // still reads armed.
  struct sigaction sa {}, old {};
  sa.sa_handler = SIG_IGN;
  sigaction(SIGWINCH, &sa, &old);
  sigevent ev = SignalEvent(SIGWINCH, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 1, 1), 0);
  usleep(50000);
  itimerspec v{};
  ASSERT_EQ(TimerGet(id, &v), 0);
  EXPECT_EQ(Ns(v.it_interval), 1);
  ASSERT_EQ(TimerSet(id, 0, 0, 0), 0);
  sigaction(SIGWINCH, &old, nullptr);
}

TEST_F(PosixTimerTest, PeriodicStopsWhenSigcontFlushesItsSignal) {
  // SIGCONT discards a pending stop signal (signal(7)). Linux (6.18
  // measured) then never re-arms a periodic timer whose SIGTSTP went so:
  // the timer waits for a delivery that cannot come, until re-set.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTSTP);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &set, &old);
  sigevent ev = SignalEvent(SIGTSTP, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 20 * kMs, 20 * kMs), 0);
  int64_t end = Now(CLOCK_MONOTONIC) + 5000 * kMs;
  while (!Pending(SIGTSTP) && Now(CLOCK_MONOTONIC) < end) usleep(1000);
  ASSERT_TRUE(Pending(SIGTSTP));
  kill(getpid(), SIGCONT);
  EXPECT_FALSE(Pending(SIGTSTP));
  siginfo_t info{};
  EXPECT_EQ(Wait(SIGTSTP, &info, 300), 0);
  // Re-setting it brings it back.
  ASSERT_EQ(TimerSet(id, 0, 10 * kMs, 10 * kMs), 0);
  EXPECT_EQ(Wait(SIGTSTP, &info, 3000), SIGTSTP);
  EXPECT_EQ(info.si_code, SI_TIMER);
  ASSERT_EQ(TimerSet(id, 0, 0, 0), 0);
  while (Wait(SIGTSTP, &info, 0) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST_F(PosixTimerTest, DeletedTimerIsGone) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerDelete(id), 0);
  ids_.clear();
  itimerspec v{};
  EXPECT_ERRNO(EINVAL, TimerGet(id, &v));
  EXPECT_ERRNO(EINVAL, TimerSet(id, 0, kMs, 0));
  EXPECT_ERRNO(EINVAL, TimerOverrun(id));
  EXPECT_ERRNO(EINVAL, TimerDelete(id));
  EXPECT_ERRNO(EINVAL, TimerGet(123456, &v));
}

TEST_F(PosixTimerTest, InvalidArguments) {
  int id = -1;
  EXPECT_ERRNO(EINVAL, TimerCreate(12345, nullptr, &id));
  sigevent ev = SignalEvent(0, 0);
  EXPECT_ERRNO(EINVAL, TimerCreate(CLOCK_MONOTONIC, &ev, &id));
  ev.sigev_signo = 65;
  EXPECT_ERRNO(EINVAL, TimerCreate(CLOCK_MONOTONIC, &ev, &id));
  ev.sigev_signo = SIGUSR1;
  ev.sigev_notify = 99;
  EXPECT_ERRNO(EINVAL, TimerCreate(CLOCK_MONOTONIC, &ev, &id));
  sigevent ok = SignalEvent(SIGUSR1, 0);
  id = Create(CLOCK_MONOTONIC, &ok);
  itimerspec v{{0, 0}, {0, 1000000000}};
  EXPECT_ERRNO(EINVAL, syscall(SYS_timer_settime, id, 0, &v, nullptr));
  v = itimerspec{{0, -1}, {1, 0}};
  EXPECT_ERRNO(EINVAL, syscall(SYS_timer_settime, id, 0, &v, nullptr));
}

TEST_F(PosixTimerTest, SigpendingLimit) {
  int status = RunInChild([] {
    struct rlimit r {0, 0};
    if (setrlimit(RLIMIT_SIGPENDING, &r) != 0) return 2;
    int id;
    errno = 0;
    if (TimerCreate(CLOCK_MONOTONIC, nullptr, &id) != -1) return 3;
    return errno == EAGAIN ? 0 : 4;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(PosixTimerTest, NotInheritedByFork) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 10000 * kMs, 0), 0);
  int status = RunInChild([id] {
    itimerspec v{};
    errno = 0;
    if (TimerGet(id, &v) != -1) return 1;
    return errno == EINVAL ? 0 : 2;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(PosixTimerTest, DeletedByExec) {
  int status = RunInChild([] {
    sigevent ev = SignalEvent(SIGUSR1, 0);
    int id = -1;
    if (TimerCreate(CLOCK_MONOTONIC, &ev, &id) != 0) return 2;
    if (TimerSet(id, 0, 10000 * kMs, 0) != 0) return 3;
    std::string env = "POSIX_TIMER_EXEC_PROBE_ID=" + std::to_string(id);
    std::string self = SelfExe();
    char* argv[] = {const_cast<char*>(self.c_str()),
                    const_cast<char*>("--gtest_filter=PosixTimerExecProbe.*"), nullptr};
    char* envp[] = {const_cast<char*>(env.c_str()), nullptr};
    execve(self.c_str(), argv, envp);
    return 4;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// Runs only in the image DeletedByExec execs: its timer must be gone.
TEST(PosixTimerExecProbe, TimerIsGone) {
  const char* id = getenv("POSIX_TIMER_EXEC_PROBE_ID");
  if (id == nullptr) GTEST_SKIP() << "run by DeletedByExec only";
  itimerspec v{};
  EXPECT_ERRNO(EINVAL, TimerGet(atoi(id), &v));
}

TEST_F(PosixTimerTest, DeleteDropsThePendingSignal) {
  sigevent ev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &ev);
  ASSERT_EQ(TimerSet(id, 0, 1 * kMs, 0), 0);
  int64_t end = Now(CLOCK_MONOTONIC) + 5000 * kMs;
  while (!Pending(SIGUSR1) && Now(CLOCK_MONOTONIC) < end) usleep(1000);
  ASSERT_TRUE(Pending(SIGUSR1));
  ASSERT_EQ(TimerDelete(id), 0);
  ids_.clear();
  siginfo_t info{};
  EXPECT_EQ(Wait(SIGUSR1, &info, 0), 0) << "a deleted timer's signal was delivered";
}

}  // namespace
}  // namespace syscall_test
