// Kernel::RunOnParkedTasks is bounded (kernel_quiesce.cc,
// kParkedWorkBound): a task whose work on its own host thread does not
// finish (a stub that does not answer) makes the call fail within the
// bound, naming that task, instead of blocking its caller (a sandbox fork
// holding the fork lock) for as long as the task is stuck; once the task
// comes back, the next call works. A real kernel over the host's root
// (ptrace platform), quiesced as a seed is.
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/sleeping_init_kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

// kernel_quiesce.cc's test hook: RunOnParkedTasks' bound (<= 0: the default).
void SetParkedWorkBoundForTest(absl::Duration bound);
// kernel_quiesce.cc: whether work a call gave up on is still running.
bool ParkedWorkStillRunning();

namespace {

TEST(ParkedWorkTest, AStuckTaskFailsTheCallWithinTheBoundNamingIt) {
  absl::StatusOr<SleepingInitKernel> made = StartSleepingInitKernel();
  ASSERT_TRUE(made.ok()) << made.status();
  Kernel* kernel = made->kernel;
  absl::StatusOr<std::shared_ptr<ThreadGroup>> other = kernel->StartProcess(SleeperSpec());
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(kernel->Quiesce(absl::Seconds(60)).ok());
  std::vector<std::shared_ptr<Task>> tasks;
  {
    absl::MutexLock l(&kernel->mu());
    tasks = kernel->Tasks();
  }
  ASSERT_EQ(tasks.size(), 2u);

  // The first task's work waits for the test (a stub that does not answer);
  // the other's is done at once. Held by the work, not by this frame alone.
  auto release = std::make_shared<absl::Notification>();
  const absl::Duration bound = absl::Seconds(1);
  SetParkedWorkBoundForTest(bound);
  const absl::Duration t0 = MonotonicNow();
  absl::Status s = kernel->RunOnParkedTasks(tasks, [release](Task&, size_t i) {
    if (i == 0) release->WaitForNotificationWithTimeout(absl::Seconds(120));
    return absl::OkStatus();
  });
  const absl::Duration took = MonotonicNow() - t0;
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(s.message().rfind("task " + std::to_string(tasks[0]->tid()) + " did not finish", 0), 0u)
      << s;
  EXPECT_NE(s.message().find("within 1s"), std::string::npos) << s;
  EXPECT_GE(took, bound);
  // Generous for a loaded machine; the old code waited for the work (120 s).
  EXPECT_LT(took, absl::Seconds(30));

  // While the stuck task is still at its work, a new call is refused at
  // once, naming why (the work may hold the platform's locks), and runs
  // nothing.
  ASSERT_TRUE(ParkedWorkStillRunning());
  std::vector<int> ran(tasks.size(), 0);
  s = kernel->RunOnParkedTasks(tasks, [&ran](Task&, size_t i) {
    ++ran[i];
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find("still at work"), std::string::npos) << s;
  EXPECT_EQ(ran, (std::vector<int>{0, 0}));

  // The stuck task comes back: its late work finishes (on the task's own
  // thread, so the test waits for it), and the next call (on the same
  // tasks, still parked) works and returns its result.
  release->Notify();
  const absl::Duration late_deadline = MonotonicNow() + absl::Seconds(30);
  while (ParkedWorkStillRunning() && MonotonicNow() < late_deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_FALSE(ParkedWorkStillRunning()) << "the released work did not end within 30s";
  SetParkedWorkBoundForTest(absl::Seconds(60));
  s = kernel->RunOnParkedTasks(tasks, [&ran](Task&, size_t i) {
    ++ran[i];
    return i == 1 ? absl::InternalError("second") : absl::OkStatus();
  });
  EXPECT_EQ(s, absl::InternalError("second"));
  EXPECT_EQ(ran, (std::vector<int>{1, 1}));
  SetParkedWorkBoundForTest(absl::ZeroDuration());

  kernel->Unquiesce();
  kernel->KillProcess(**other);
  kernel->KillProcess(*made->init);
  const int status = kernel->WaitInit();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  kernel->platform().StopHostProcesses();
}

}  // namespace
}  // namespace seedvisor::sentry
