// Kernel::StartProcess against a real kernel over the host's root (ptrace
// platform): once RefuseNewProcessesLocked has run (sentry/control's
// Shutdown, in the mu() section of its kill sweep), no process starts, of
// any kind a caller can ask for. (A guest's own clone after that sweep is
// refused by its thread group's group_exiting, which the sweep's SIGKILL
// set under the same lock: task_clone.cc.)
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/sleeping_init_kernel.h"

namespace seedvisor::sentry {
namespace {

TEST(KernelLifecycleTest, NoProcessStartsOnceNewOnesAreRefused) {
  absl::StatusOr<SleepingInitKernel> made = StartSleepingInitKernel();
  ASSERT_TRUE(made.ok()) << made.status();
  Kernel* kernel = made->kernel;
  const std::shared_ptr<ThreadGroup>& init_tg = made->init;
  ProcessSpec exec;
  exec.argv = {"/bin/true"};
  // Until then a process starts (and runs).
  absl::StatusOr<std::shared_ptr<ThreadGroup>> before = kernel->StartProcess(exec);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(kernel->WaitProcess(*before), 0);

  {
    absl::MutexLock l(&kernel->mu());
    kernel->RefuseNewProcessesLocked();
  }
  ProcessSpec hook = exec;  // an OCI startContainer hook's
  hook.before_init = true;
  ProcessSpec pod = exec;  // a pod's container, in a pid namespace of its own
  pod.container_id = "c2";
  pod.pid_ns = std::make_shared<PidNamespace>(nullptr);
  for (const ProcessSpec& spec : {exec, hook, pod}) {
    absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = kernel->StartProcess(spec);
    EXPECT_TRUE(absl::IsFailedPrecondition(tg.status())) << tg.status();
    EXPECT_EQ(tg.status().message(), "the sandbox is shutting down");
  }
  // What was running runs on (ending it is the kill sweep's part).
  EXPECT_FALSE(kernel->WaitProcessFor(init_tg, absl::ZeroDuration()).has_value());
  kernel->KillProcess(*init_tg);
  const int status = kernel->WaitInit();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  kernel->platform().StopHostProcesses();
}

}  // namespace
}  // namespace seedvisor::sentry
