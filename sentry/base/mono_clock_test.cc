// A host fork while another thread holds abseil's clock lock (inside
// absl::Now(), which samples the kernel's clock under it): the child hangs
// in absl::Now() (why the sentry reads its clocks with clock_gettime,
// mono_clock.h), and abseil's timed waits, which the sentry uses beside its
// host forks (timers.cc, kernel_lifecycle.cc), still return: this abseil
// makes their deadline with gettimeofday. A newer abseil that takes the
// lock there fails this test.
#include "sentry/base/mono_clock.h"  // what this test justifies

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace {

// The thread whose next CLOCK_REALTIME read stops until g_gate is written.
std::atomic<pid_t> g_stop_tid{0};
int g_gate[2] = {-1, -1};

}  // namespace

// Interposes libc's clock_gettime for abseil's clock (absl/time/clock.cc
// reads CLOCK_REALTIME inside its SpinLock): the test stops a thread there.
extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
  pid_t me = static_cast<pid_t>(syscall(SYS_gettid));
  if (clock == CLOCK_REALTIME && g_stop_tid.load() == me) {
    g_stop_tid = 0;
    char b;
    while (read(g_gate[0], &b, 1) < 0) {
    }
  }
  return static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
}

namespace seedvisor::sentry {
namespace {

// How child `pid` ended: 0 if it exited 0 within its alarm, else its status.
int Ended(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : status;
}

// A child that does `what` (alarm: a child spinning on a copied lock dies
// of SIGALRM).
enum class What { kCondVarWait, kMutexAwait, kNow };
pid_t ForkChild(What what) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(3);
    absl::Mutex mu;
    absl::CondVar cv;
    bool never = false;
    absl::MutexLock l(&mu);
    switch (what) {
      case What::kCondVarWait:
        cv.WaitWithTimeout(&mu, absl::Milliseconds(1));
        break;
      case What::kMutexAwait:
        mu.AwaitWithTimeout(absl::Condition(&never), absl::Milliseconds(1));
        break;
      case What::kNow:
        absl::Now();
        break;
    }
    _exit(0);
  }
  return pid;
}

TEST(MonoClock, AbseilTimedWaitsNeedNoClockLockAfterAFork) {
  // Abseil samples the kernel's clock under its lock on its first call in
  // a process: run fresh, through exec.
  constexpr char kFresh[] = "SEEDVISOR_MONO_CLOCK_FRESH";
  if (std::getenv(kFresh) == nullptr) {
    const pid_t pid = fork();
    if (pid == 0) {
      setenv(kFresh, "1", 1);
      execl("/proc/self/exe", "mono_clock_test",
            "--gtest_filter=MonoClock.AbseilTimedWaitsNeedNoClockLockAfterAFork", nullptr);
      _exit(127);
    }
    ASSERT_GT(pid, 0);
    EXPECT_EQ(Ended(pid), 0) << "the fresh run failed";
    return;
  }
  ASSERT_EQ(pipe(g_gate), 0);
  std::atomic<pid_t> tid{0};
  std::thread sampler([&tid] {
    g_stop_tid = static_cast<pid_t>(syscall(SYS_gettid));
    tid = g_stop_tid.load();
    absl::Now();  // stops inside, holding abseil's clock lock
  });
  while (tid.load() == 0) usleep(10);
  // Stopped: in read(2) on the gate (its /proc/self/task/TID/syscall).
  const std::string file = "/proc/self/task/" + std::to_string(tid.load()) + "/syscall";
  bool stopped = false;
  for (int i = 0; i < 100000 && !stopped; ++i) {
    std::FILE* f = std::fopen(file.c_str(), "r");
    long nr = -1;
    stopped = f != nullptr && std::fscanf(f, "%ld", &nr) == 1 && nr == SYS_read;
    if (f != nullptr) std::fclose(f);
  }
  const pid_t waits = stopped ? ForkChild(What::kCondVarWait) : -1;
  const pid_t awaits = stopped ? ForkChild(What::kMutexAwait) : -1;
  const pid_t now = stopped ? ForkChild(What::kNow) : -1;
  ASSERT_EQ(write(g_gate[1], "x", 1), 1);
  sampler.join();
  if (!stopped) GTEST_SKIP() << "abseil's absl::Now() never read the clock in our hook";
  ASSERT_GT(waits, 0);
  ASSERT_GT(awaits, 0);
  ASSERT_GT(now, 0);
  const int now_status = Ended(now);
  EXPECT_EQ(Ended(waits), 0) << "CondVar::WaitWithTimeout hung after the fork";
  EXPECT_EQ(Ended(awaits), 0) << "Mutex::AwaitWithTimeout hung after the fork";
  // The lock was held at the fork (what makes the two lines above mean
  // something): absl::Now() never returns in the child.
  EXPECT_TRUE(WIFSIGNALED(now_status) && WTERMSIG(now_status) == SIGALRM)
      << "absl::Now() returned in the child (status " << now_status << ")";
}

}  // namespace
}  // namespace seedvisor::sentry
