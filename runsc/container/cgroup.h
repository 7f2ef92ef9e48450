// cgroup v1 limits for a sandbox (this host mounts v1 controllers under
// /sys/fs/cgroup/<controller>): linux.resources memory, cpu and pids from
// config.json, applied to the whole sandbox process (sentry and stubs).
//
//   RETURN_IF_ERROR(container::ApplyCgroups(spec, id));  // in `seedsc boot`:
//                                                         // enters them itself
//   container::RemoveCgroups(state.cgroups_path);         // in `delete`
#ifndef SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_
#define SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_

#include <string>

#include "absl/status/status.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

// The cgroup path (relative to each controller's root) for the container:
// linux.cgroupsPath, or "seedsc/<id>" when resources are set without one,
// or "" when there is nothing to apply.
std::string CgroupPathFor(const oci::Spec& spec, const std::string& id);

// Creates the cgroups for `path` in memory, cpu and pids, writes the limits,
// and moves the calling process into them. On error removes what it made.
absl::Status ApplyCgroups(const oci::Spec& spec, const std::string& path,
                          const std::string& mount_root = "/sys/fs/cgroup");
// Removes those cgroups (waiting up to ~2 s for exiting processes to leave),
// and the now-empty parents that the path named.
absl::Status RemoveCgroups(const std::string& path,
                           const std::string& mount_root = "/sys/fs/cgroup");

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_
