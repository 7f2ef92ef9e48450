// For tests that need a real kernel with a live init: a kernel over the
// host's root (ptrace platform) whose init is `/bin/sleep 1000`.
//
//   absl::StatusOr<SleepingInitKernel> k = StartSleepingInitKernel();
//   ASSERT_TRUE(k.ok()) << k.status();
//   k->kernel->StartProcess(SleeperSpec());  // a second sleeper
//   ...
//   k->kernel->KillProcess(*k->init);
//
// The kernel is never freed: guest threads may outlive the test body, and a
// Kernel destroyed under them would be a use after free.
#ifndef SEEDVISOR_SENTRY_KERNEL_SLEEPING_INIT_KERNEL_H_
#define SEEDVISOR_SENTRY_KERNEL_SLEEPING_INIT_KERNEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

struct SleepingInitKernel {
  Kernel* kernel = nullptr;  // leaked on purpose (above)
  std::shared_ptr<ThreadGroup> init;
};

// `/bin/sleep 1000`: a process that stays until it is killed.
ProcessSpec SleeperSpec();

// A new kernel (ptrace platform) with SleeperSpec() started as its init.
absl::StatusOr<SleepingInitKernel> StartSleepingInitKernel();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_SLEEPING_INIT_KERNEL_H_
