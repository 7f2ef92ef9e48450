// What sandbox_create.cc (a sandbox of its own) and sandbox_join.cc (a
// pod's container in its pod's running sandbox) share. Private to
// runsc/container.
#ifndef SEEDVISOR_RUNSC_CONTAINER_SANDBOX_INTERNAL_H_
#define SEEDVISOR_RUNSC_CONTAINER_SANDBOX_INTERNAL_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runsc/container/sandbox.h"
#include "runsc/container/state.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

// <root>/<id> with the saved config.json, and the state's fields that do
// not depend on where the container runs. `*lock` holds the dir's lock
// until the caller is done: a dir without a state whose lock nobody holds
// is a leftover (RemoveLeftover).
absl::StatusOr<State> NewStateDir(const CreateOptions& o, const oci::Spec& spec,
                                  std::optional<Lock>* lock);

// --pid-file: `pid`, written atomically; nothing for an empty path.
absl::Status WritePidFile(const std::string& path, pid_t pid);

// CreateSandbox for a pod's application container: CreateContainer in the
// running sandbox of container `sandbox_id` (sandbox_join.cc).
absl::StatusOr<State> JoinSandbox(const CreateOptions& o, const oci::Spec& spec,
                                  const std::string& sandbox_id);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_SANDBOX_INTERNAL_H_
