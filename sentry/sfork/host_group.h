// Ending a host process group and knowing it has ended: how a sandbox's
// Shutdown makes sure that its host processes (a fork's anchor group: its
// zygote and stubs; each spare's group) are gone before it answers, so
// that `seedsc delete` returns only once its cgroup is empty.
//
// Killing is not enough: SIGKILL only starts an exit, and a stub's exit
// can take long (on kvm it tears down the VM, its vCPUs and shadow page
// tables: up to seconds on a loaded machine). An exited process is out of
// every cgroup even before its parent reaps it (a zombie is in no
// cgroup.procs), so "gone" here is "exited": its pidfd polls readable.
//
//   SV: if (!KillGroupAndWait(anchor, MonotonicNow() + absl::Seconds(10))) {
//         Log::Warning("%s", DescribeGroup(anchor));  // ... still there
//       }
#ifndef SEEDVISOR_SENTRY_SFORK_HOST_GROUP_H_
#define SEEDVISOR_SENTRY_SFORK_HOST_GROUP_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace seedvisor::sentry {

// The processes of group `pgid` (in this process's /proc) that have not
// exited, by pid: a zombie leader whose other threads still run counts.
std::vector<pid_t> LiveGroupMembers(pid_t pgid);

// Sends SIGKILL to group `pgid` and returns true once none of its processes
// is left, or false at `deadline`. No process can join a group while it is
// being killed (a fork in a member fails once its SIGKILL is pending), so
// the members found right after the kill are all there is to wait for.
// `deadline` is on sentry::MonotonicNow()'s clock (mono_clock.h).
// The caller must know that `pgid` is still the group it means: its leader
// (whose pid the group bears) is alive, or a zombie not reaped yet.
bool KillGroupAndWait(pid_t pgid, absl::Duration deadline);

// Waits until every process whose pidfd is in `pidfds` has exited as a
// whole (its pidfd polls readable), or until `deadline` (MonotonicNow()'s
// clock); true if all have. Closes the pidfds either way.
bool WaitPidfdsBy(std::vector<int> pidfds, absl::Duration deadline);

// "pid (comm) state S" for each live member of `pgid`, for a warning.
std::string DescribeGroup(pid_t pgid);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_HOST_GROUP_H_
