// OCI hooks, run the way runc runs them: each hook's path is exec'd with its
// args (args[0] is argv[0]) and env, the container's state JSON on stdin,
// in seedsc's own (runtime) namespaces; a timeout kills it.
//
//   RETURN_IF_ERROR(container::RunHooks("prestart", spec.hooks.prestart, json));
#ifndef SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_
#define SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

// Runs `hooks` in order; stops at the first that fails (non-zero exit,
// killed, timeout, cannot exec) with an error naming "hooks.<kind>[i]".
absl::Status RunHooks(const std::string& kind, const std::vector<oci::Hook>& hooks,
                      const std::string& state_json);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_
