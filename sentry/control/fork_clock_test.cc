// The seed's fork-path clock (ForkWatch's, the Fork handler's deadlines:
// sentry/base/mono_clock.h) is usable in a forked sentry even when another
// thread of the seed was inside abseil's clock at the host fork, holding its
// process-wide lock (time_state.lock in absl/time/clock.cc). Issue 9: with
// absl::Now() as that clock, such a fork's first clock read waited forever.
//
// The lock is held on purpose, not by chance: this binary's clock_gettime
// (which abseil's clock calls, through the PLT or the static link, only
// while it holds that lock to resample the kernel's clock) blocks on the
// one thread chosen to hold it.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"
#include "sentry/control/fork_watch.h"

namespace {

std::atomic<long> g_holder_tid{0};  // whose CLOCK_REALTIME read blocks
std::atomic<bool> g_holding{false};
std::atomic<bool> g_release{false};

}  // namespace

// Interposes libc's: the chosen thread's CLOCK_REALTIME read waits for
// g_release (inside abseil's resampling, its lock held). Every other read
// is the kernel's.
extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
  if (clock == CLOCK_REALTIME && g_holder_tid.load() != 0 &&
      syscall(SYS_gettid) == g_holder_tid.load()) {
    g_holding.store(true);
    while (!g_release.load()) usleep(100);
  }
  return static_cast<int>(syscall(SYS_clock_gettime, clock, ts));
}

namespace seedvisor::control {
namespace {

// Host-forks; the child runs `child` and exits 0. Whether it exited within
// 5 s (it is killed otherwise).
bool ChildFinishes(const std::function<void()>& child) {
  const pid_t pid = fork();
  if (pid == 0) {
    child();
    _exit(0);
  }
  if (pid < 0) return false;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd p = {.fd = pidfd, .events = POLLIN, .revents = 0};
  const bool finished = pidfd >= 0 && poll(&p, 1, 5000) == 1;
  if (!finished) kill(pid, SIGKILL);
  if (pidfd >= 0) close(pidfd);
  int status = 0;
  waitpid(pid, &status, 0);
  return finished && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(ForkClock, TheForkPathClockRunsInAChildForkedWhileAbseilsClockLockWasHeld) {
  // A thread of the "seed" enters abseil's clock until it resamples (at
  // once, or within abseil's sample interval of about 2 s) and stays there.
  std::thread holder([] {
    g_holder_tid.store(syscall(SYS_gettid));
    while (!g_release.load()) (void)absl::Now();
  });
  for (int i = 0; i < 10000 && !g_holding.load(); ++i) usleep(1000);
  ASSERT_TRUE(g_holding.load()) << "abseil's clock never read the kernel's in 10 s";

  // What a forked sentry does with its clock: a Fork's steps and deadlines
  // on its new control server's watch, the watchdog's look.
  EXPECT_TRUE(ChildFinishes([] {
    ForkWatch w;
    const absl::Duration deadline = sentry::MonotonicNow() + absl::Seconds(10);
    ForkWatch::Token t = w.Begin("the Fork into \"c1\"");
    w.Step(t, "waiting for the fork lock");
    w.Locked(t);
    (void)w.Stalled(absl::Seconds(5));
    w.Unlocked();
    w.End(t);
    if (sentry::MonotonicNow() >= deadline) _exit(1);
  })) << "a child forked while abseil's clock lock was held did not finish its fork-path clock reads";

  // Not an assertion: that the lock was held (abseil's own clock in such a
  // child; a newer abseil that reads the kernel's clock without a lock
  // would not hang).
  std::printf("absl::Now() in a child forked while the holder was inside abseil's clock: %s\n",
              ChildFinishes([] { (void)absl::Now(); }) ? "returned" : "hung (the lock was held)");

  g_release.store(true);
  holder.join();
}

}  // namespace
}  // namespace seedvisor::control
