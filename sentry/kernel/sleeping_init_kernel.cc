#include "sentry/kernel/sleeping_init_kernel.h"

#include <utility>

namespace seedvisor::sentry {

ProcessSpec SleeperSpec() {
  ProcessSpec spec;
  spec.argv = {"/bin/sleep", "1000"};
  return spec;
}

absl::StatusOr<SleepingInitKernel> StartSleepingInitKernel() {
  KernelOptions opts;
  opts.platform = "ptrace";
  absl::StatusOr<std::unique_ptr<Kernel>> made = Kernel::Create(opts);
  if (!made.ok()) return made.status();
  SleepingInitKernel k;
  k.kernel = made->release();
  absl::StatusOr<std::shared_ptr<ThreadGroup>> init = k.kernel->StartProcess(SleeperSpec());
  if (!init.ok()) return init.status();
  k.init = *std::move(init);
  return k;
}

}  // namespace seedvisor::sentry
