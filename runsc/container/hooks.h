// OCI hooks, run the way runc runs them: each hook's path is exec'd with its
// args (args[0] is argv[0]) and env, the container's state JSON on stdin,
// in seedsc's own (runtime) namespaces, or (createContainer) in those of a
// process (the sandbox's) with the path still resolved in seedsc's; a
// timeout kills it.
//
//   RETURN_IF_ERROR(container::RunHooks("prestart", spec.hooks.prestart, json));
#ifndef SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_
#define SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

// Runs `hooks` in order; stops at the first that fails (non-zero exit,
// killed, timeout, cannot exec) with an error naming "hooks.<kind>[i]".
// ns_pid > 0: each hook runs in the uts, ipc, net, pid and mount namespaces
// of that process (/proc/<ns_pid>/ns/*), after its path was opened in ours.
absl::Status RunHooks(const std::string& kind, const std::vector<oci::Hook>& hooks,
                      const std::string& state_json, pid_t ns_pid = 0);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_HOOKS_H_
