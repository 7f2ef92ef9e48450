// OCI hooks.startContainer, run inside the sandbox at Start before the
// container's init (runtime-spec config.md, "POSIX-platform Hooks": the path
// resolves in the container's namespaces and the hook runs there). Each is a
// guest process with the init's credentials, cwd and rlimits, the hook's own
// path, args and env, the state JSON on stdin and /dev/null as stdout and
// stderr (runc keeps a hook's output to itself too); it never becomes pid 1.
//
//   if (auto s = RunStartHooks(kernel_, cfg_.init, req); !s.ok()) return s;
#ifndef SEEDVISOR_SENTRY_CONTROL_START_HOOKS_H_
#define SEEDVISOR_SENTRY_CONTROL_START_HOOKS_H_

#include "absl/status/status.h"
#include "sentry/control/control.pb.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::control {

// Runs req.start_container_hooks() in order; the first that does not exit 0
// (or outlives its timeout, then is killed) fails with an error naming
// "hooks.startContainer[i]", as seedsc's host-side hooks do.
absl::Status RunStartHooks(sentry::Kernel& kernel, const sentry::ProcessSpec& init,
                           const v1::StartRequest& req);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_START_HOOKS_H_
