// The container's extra mounts (config.json "mounts") inside the sandbox's
// VFS. The sandbox already has /proc, /dev (our devfs) and /dev/shm; of the
// rest, bind mounts of host directories, tmpfs, sysfs (synthetic, read-only)
// and mqueue (the sandbox's POSIX message queues) are made, and the filesystems the
// sentry does not have (devpts, cgroup) are skipped with a debug log line.
//
//   for (auto& m : spec.mounts) mounts.push_back({m.destination, m.type, ...});
//   RETURN_IF_ERROR(control::ApplyMounts(kernel->vfs(), mounts));
#ifndef SEEDVISOR_SENTRY_CONTROL_MOUNTS_H_
#define SEEDVISOR_SENTRY_CONTROL_MOUNTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace seedvisor::sentry {
class Vfs;
}

namespace seedvisor::control {

struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

// A bind mount (type "bind", or option bind/rbind): its source is a host path.
bool IsBindMount(const MountSpec& m);

// `under`: where the container's root is mounted in the sandbox's VFS
// ("" = the sandbox's own root; Vfs::AddContainerRoot otherwise).
absl::Status ApplyMounts(sentry::Vfs& vfs, const std::vector<MountSpec>& mounts,
                         const std::string& under = "");

// linux.readonlyPaths, then linux.maskedPaths (runc's order), after the
// mounts; see Vfs::ReadOnlyPath and Vfs::MaskPath.
absl::Status ApplyPathRules(sentry::Vfs& vfs, const std::vector<std::string>& readonly_paths,
                            const std::vector<std::string>& masked_paths,
                            const std::string& under = "");

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_MOUNTS_H_
