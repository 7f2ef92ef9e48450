// cgroup v1 limits for a sandbox (this host mounts v1 controllers under
// /sys/fs/cgroup/<controller>): linux.resources memory, cpu, cpuset and pids
// from config.json, applied to the whole sandbox process (sentry and stubs,
// so the guest's memory is charged there too), later changes to them, their
// usage, and OOM notification.
//
//   RETURN_IF_ERROR(container::ApplyCgroups(spec, path, root));  // `seedsc boot`:
//                                                                 // enters them itself
//   RETURN_IF_ERROR(container::UpdateCgroups(new_resources, path));  // update
//   CgroupStats st = container::ReadCgroupStats(path);
//   int efd = *container::RegisterOomEventFd(path);  // readable on each OOM
//   container::RemoveCgroups(state.cgroups_path, root);   // in `delete`
//
// seedsc removes only the directories it made (review 35): each one it
// makes goes into the record under its --root (cgroup_record.h), shared by
// all its containers, and a parent goes with the last container that
// leaves it empty. A parent that was there before (kubelet's pod or QoS
// cgroup, a user's slice) stays, even empty, as runc leaves it.
#ifndef SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_
#define SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

// The cgroup path (relative to each controller's root) for the container:
// linux.cgroupsPath, or "seedsc/<id>" when resources are set without one,
// or "" when there is nothing to apply.
std::string CgroupPathFor(const oci::Spec& spec, const std::string& id);

// The host pids.max for a container whose linux.resources.pids.limit is
// `limit` (> 0). The sandbox counts its guest tasks itself and refuses the
// one past the limit (sentry KernelOptions::pids_limit, as Linux's pids
// cgroup); the host cgroup holds more than the guest's tasks (a sentry
// thread and a stub thread or process for each, the sentry's own service
// threads, the zygote), so its limit only stops a sandbox that goes far
// beyond what its guest may have.
int64_t HostPidsMax(int64_t limit);

// Creates the cgroups for `path` in memory, cpu, cpuacct, pids and cpuset
// and writes the limits (the containerd shim, for a sandbox forked into
// them). Every directory it makes (the leaf, and parents that were not
// there) is recorded under `root`, seedsc's --root. On error removes what
// it made.
absl::Status CreateCgroups(const oci::Spec& spec, const std::string& path,
                           const std::string& root,
                           const std::string& mount_root = "/sys/fs/cgroup");
// CreateCgroups, then moves the calling process into them. On error removes
// what it made.
absl::Status ApplyCgroups(const oci::Spec& spec, const std::string& path,
                          const std::string& root,
                          const std::string& mount_root = "/sys/fs/cgroup");
// Whether `r` sets a limit the host cgroup keeps (memory, cpu, cpuset),
// not only the pids limit (which the sandbox keeps for its guest).
bool SetsHostLimits(const oci::Resources& r);
// A container in its pod's sandbox without cgroups of its own (its
// memory is the sandbox's: kvm): the error for host limits `r` sets, or OK
// if it sets none.
absl::Status PodMemberHostLimits(const oci::Resources& r, const std::string& id);
// Writes the limits `r` sets (the rest stay) into the existing cgroups of
// `path`; errors name the OCI field ("memory.limit: cgroup: writing ...").
absl::Status UpdateCgroups(const oci::Resources& r, const std::string& path,
                           const std::string& mount_root = "/sys/fs/cgroup");
// `runc update` of container `id` (`seedsc update`, the shim's
// Task.Update): host limits go into the container's cgroups at
// `cgroup_path` (UpdateCgroups): a sandbox's own, or those of a container
// that joined its pod's sandbox, whose stubs live there. A joined
// container without one (its sandbox keeps guest memory in the sentry:
// kvm) may set only its pids limit (PodMemberHostLimits); for another ""
// is an error. Then
// a pids limit other than 0 (runc: 0 leaves it as it is) goes to
// `set_guest_pids_limit`: the sandbox keeps it (it counts its guest tasks;
// the host cgroup only has room for them, HostPidsMax), over its control
// socket (Update).
absl::Status ApplyUpdate(const oci::Resources& r, const std::string& id, bool joined,
                         const std::string& cgroup_path,
                         const std::function<absl::Status(int64_t)>& set_guest_pids_limit,
                         const std::string& mount_root = "/sys/fs/cgroup");

// What the cgroups of `path` account; has_* is false where a controller's
// files could not be read. Limits of 0 mean none.
struct CgroupStats {
  bool has_memory = false, has_cpu = false, has_pids = false;
  uint64_t memory_usage = 0, memory_max_usage = 0, memory_limit = 0, memory_failcnt = 0;
  uint64_t memory_rss = 0, memory_cache = 0;  // memory.stat total_rss, total_cache
  uint64_t oom_kills = 0;                     // memory.oom_control oom_kill
  uint64_t cpu_usage_ns = 0, cpu_user_ns = 0, cpu_system_ns = 0;  // cpuacct
  uint64_t pids_current = 0, pids_limit = 0;  // host tasks (sentry threads, stubs)
};
CgroupStats ReadCgroupStats(const std::string& path,
                            const std::string& mount_root = "/sys/fs/cgroup");

// An eventfd (close-on-exec) that becomes readable (an 8-byte count) each
// time the memory cgroup of `path` hits OOM, and also when that cgroup is
// removed: check that it still exists before reporting an OOM.
absl::StatusOr<int> RegisterOomEventFd(const std::string& path,
                                       const std::string& mount_root = "/sys/fs/cgroup");

// The host pids in the cgroup `path` of any controller (their union).
std::vector<pid_t> CgroupProcs(const std::string& path,
                               const std::string& mount_root = "/sys/fs/cgroup");

// Removes the cgroups of `path` that the record under `root` says seedsc
// made: per controller the leaf (waiting up to ~2 s for exiting processes
// to leave), then its parents that seedsc made and are now empty, up to
// the first that is not seedsc's or holds another cgroup. A directory
// seedsc did not make stays, the leaf too. An error if a leaf of seedsc's
// stays.
absl::Status RemoveCgroups(const std::string& path, const std::string& root,
                           const std::string& mount_root = "/sys/fs/cgroup");

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_CGROUP_H_
