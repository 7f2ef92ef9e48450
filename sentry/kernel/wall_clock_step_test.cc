// The sentry's own timed waits end on the monotonic clock: a step of the
// host's wall clock (NTP, a VM restore, `date -s`) neither stretches a
// guest's interval timer nor a control thread's wait for a process
// (issue 16). With abseil's timed waits (a CLOCK_REALTIME futex deadline
// computed from gettimeofday()), a step forward of an hour made both wait
// an hour. A real kernel over the host's root (ptrace platform);
// wall_clock_step interposes this process's CLOCK_REALTIME only.
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/wall_clock_step.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {
namespace {

Kernel* LeakedPtraceKernel() {
  KernelOptions opts;
  opts.platform = "ptrace";
  absl::StatusOr<std::unique_ptr<Kernel>> made = Kernel::Create(opts);
  if (!made.ok()) {
    ADD_FAILURE() << made.status();
    return nullptr;
  }
  // Guest threads may outlive the test body: the kernel is never freed.
  return made->release();
}

class WallClockStepTest : public ::testing::Test {
 protected:
  void TearDown() override { ResetWallClock(); }
};

TEST_F(WallClockStepTest, WaitProcessForEndsOnTime) {
  Kernel* kernel = LeakedPtraceKernel();
  ASSERT_NE(kernel, nullptr);
  ProcessSpec init;
  init.argv = {"/bin/sleep", "1000"};
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = kernel->StartProcess(init);
  ASSERT_TRUE(tg.ok()) << tg.status();
  StepWallClock(absl::Hours(1));
  const absl::Duration t0 = MonotonicNow();
  EXPECT_FALSE(kernel->WaitProcessFor(*tg, absl::Milliseconds(300)).has_value());
  const absl::Duration took = MonotonicNow() - t0;
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(20));  // an hour with abseil's wait
  kernel->KillProcess(**tg);
  const int status = kernel->WaitInit();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  kernel->platform().StopHostProcesses();
}

TEST_F(WallClockStepTest, AGuestIntervalTimerFiresOnTime) {
  Kernel* kernel = LeakedPtraceKernel();
  ASSERT_NE(kernel, nullptr);
  // The step comes before the guest arms its timer, so the timer thread's
  // first wait for it already sees the stepped clock.
  StepWallClock(absl::Hours(1));
  ProcessSpec init;
  init.argv = {"/bin/sleep", "1000"};
  absl::StatusOr<std::shared_ptr<ThreadGroup>> init_tg = kernel->StartProcess(init);
  ASSERT_TRUE(init_tg.ok()) << init_tg.status();
  // Not the init, which ignores a signal it has no handler for (as a pid
  // namespace's init does): SIGALRM's default action ends this one, 300 ms
  // after setitimer.
  ProcessSpec guest;
  guest.argv = {"/usr/bin/python3", "-c",
                "import signal, time\n"
                "signal.setitimer(signal.ITIMER_REAL, 0.3)\n"
                "time.sleep(1000)\n"};
  const absl::Duration t0 = MonotonicNow();
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = kernel->StartProcess(guest);
  ASSERT_TRUE(tg.ok()) << tg.status();
  std::optional<int> status = kernel->WaitProcessFor(*tg, absl::Seconds(60));
  const absl::Duration took = MonotonicNow() - t0;
  EXPECT_TRUE(status.has_value()) << "the guest's 300 ms timer did not fire within 60 s";
  if (status.has_value()) {
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGALRM) << *status;
    EXPECT_GE(took, absl::Milliseconds(300));
  } else {
    kernel->KillProcess(**tg);
  }
  kernel->KillProcess(**init_tg);
  const int init_status = kernel->WaitInit();
  EXPECT_TRUE(WIFSIGNALED(init_status) && WTERMSIG(init_status) == SIGKILL) << init_status;
  kernel->platform().StopHostProcesses();
}

}  // namespace
}  // namespace seedvisor::sentry
