// What a sandbox leaves behind when a seedsc, or the sandbox itself, is
// killed at the wrong moment, and how `seedsc delete` (and seedd) find it
// and remove it without ending a process that is not the sandbox's:
//
//   - a state dir without state.json: a create or fork killed before it
//     recorded the container, maybe with a control socket and a sandbox
//     serving it that no state names (RemoveLeftover);
//   - stubs in the sandbox's own cgroup that outlived their zygote and
//     sentry, waiting forever (EndOrphanedStubs);
//   - a state from an older seedsc that does not say which process its
//     sandbox was (WarnIfSandboxUnknown: nothing is signalled for it).
//
//   absl::Status s = container::RemoveLeftover(root, id, /*end_sandbox=*/force);
//   container::EndOrphanedStubs(st.cgroups_path);  // once the sentry is gone
#ifndef SEEDVISOR_RUNSC_CONTAINER_LEFTOVER_H_
#define SEEDVISOR_RUNSC_CONTAINER_LEFTOVER_H_

#include <string>

#include "absl/status/status.h"
#include "runsc/container/state.h"

namespace seedvisor::container {

// What a create or fork leaves when its seedsc is killed before it has
// recorded the container (issue 9): <root>/<id> without state.json, maybe
// a control socket (beside it, or under /tmp for a long dir), maybe a
// sandbox still serving it that no state names. Removes all three: the
// sandbox only if it is a seedsc sandbox started after the dir was made and
// not one a state under `root` names, and only if `end_sandbox` (delete's
// --force: runc deletes no running container without it). NotFound if
// there is no such dir; FailedPrecondition if it has a state (not a
// leftover), a seedsc still holds its lock (making it), or its sandbox
// runs and `end_sandbox` is false.
absl::Status RemoveLeftover(const std::string& root, const std::string& id, bool end_sandbox);

// Ends the stub processes in the cgroup `cgroups_path` (a sandbox's own)
// whose zygote is gone (host_process.h, OrphanedStubs), by identity, in up
// to three rounds; best effort. For after the sandbox's sentry has exited.
void EndOrphanedStubs(const std::string& cgroups_path);

// A state from an older seedsc records the sandbox's pid without its start
// time: no process counts as that sandbox (host_process.h). Says so on
// stderr, once, for delete.
void WarnIfSandboxUnknown(const State& st);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_LEFTOVER_H_
