// A sandbox fork's host cgroup (`seedsc fork --cgroup PATH`, seedd's cgroup
// pool): the fork's host processes join it, and its pids.max becomes the
// fork's guest task limit, as an OCI container's pids.limit is (runsc/
// container/cgroup.h, HostPidsMax), so that a fork bomb in the fork gets
// EAGAIN from the sandbox while the host still has room for the sentry's
// own threads.
//
//   RETURN_IF_ERROR(JoinCgroup(path, pids));
//   if (auto limit = GuestPidsLimitFromCgroup(path, charged); limit.ok() && *limit > 0) ...
#ifndef SEEDVISOR_SENTRY_CONTROL_FORK_CGROUP_H_
#define SEEDVISOR_SENTRY_CONTROL_FORK_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedvisor::control {

// Moves `pids` (of this pid namespace) into the existing v1 cgroup `path`
// of every controller that has it.
absl::Status JoinCgroup(const std::string& path, const std::vector<pid_t>& pids);

// Host tasks a further guest task may take (a sentry thread, a stub thread
// or process), and those kept for the sentry's service threads (timers,
// network, control requests), as runsc/container's HostPidsMax counts them.
inline constexpr int64_t kHostTasksPerGuestTask = 3;
inline constexpr int64_t kHostTasksReserved = 16;

// The guest task limit for a sandbox whose host cgroup allows `host_max`
// tasks and holds `host_current`, with `guest_tasks` guest tasks counted
// now: those plus what the room left takes (never fewer than it has).
int64_t GuestPidsLimit(int64_t host_max, int64_t host_current, int64_t guest_tasks);

// GuestPidsLimit from the pids controller's pids.max and pids.current of
// `path`; 0 when pids.max is "max" or the cgroup has no pids controller.
absl::StatusOr<int64_t> GuestPidsLimitFromCgroup(const std::string& path, int64_t guest_tasks);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_FORK_CGROUP_H_
