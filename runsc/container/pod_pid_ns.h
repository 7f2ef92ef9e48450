// Which pid namespace a pod's application container joins, and the host
// id it is known by. A pod's containers share one sandbox process, so the
// host pid containerd's CRI plugin puts in a config.json's
// linux.namespaces "pid" path (/proc/<pid>/ns/pid: the pod sandbox's for
// NamespaceMode POD, the target container's for TARGET) is told apart by
// the pids seedsc reported: the sandbox's, or the host thread of a
// container outside the sandbox's pid namespace (State::container_pid).
//
//   absl::StatusOr<PidNamespaceChoice> ns = PidNamespaceOf(root, pod, spec);
//   if (ns->own) ...                       // "pid" without a path
//   else if (!ns->of.empty()) ...          // container ns->of's namespace
//   absl::StatusOr<pid_t> id = ContainerHostId(*ns, pod.sandbox_pid, resp.host_thread());
#ifndef SEEDVISOR_RUNSC_CONTAINER_POD_PID_NS_H_
#define SEEDVISOR_RUNSC_CONTAINER_POD_PID_NS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "runsc/container/state.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

struct PidNamespaceChoice {
  bool own = false;  // "pid" without a path: a namespace of its own
  // A path naming the pid of this container of the pod (not the pod
  // sandbox's own): that container's namespace. "" with own false: the
  // sandbox's (a path naming the sandbox's pid, or no "pid" entry).
  std::string of;
};

// For container `spec` joining the sandbox of `pod` (its state, under
// `root`). InvalidArgument for a "pid" path that names no container of the
// pod (another host process's namespace cannot be joined from a sandbox).
absl::StatusOr<PidNamespaceChoice> PidNamespaceOf(const std::string& root, const State& pod,
                                                  const oci::Spec& spec);

// The host id (as this process's /proc names it) of thread `ns_tid`, an id
// in the pid namespace of process `pid`'s threads; 0 if none has it.
pid_t HostTidOf(pid_t pid, pid_t ns_tid);

// The pid a container joining sandbox process `sandbox_pid` in namespace
// `ns` is known by apart from the sandbox's: 0 (the sandbox's) for the
// sandbox's namespace; else the host id of the sandbox's thread
// `host_thread` (CreateContainerResponse.host_thread). Internal when it
// has none: its pid would be the sandbox's, and a TARGET container aimed
// at it would quietly share the sandbox's namespace.
absl::StatusOr<pid_t> ContainerHostId(const PidNamespaceChoice& ns, pid_t sandbox_pid,
                                      pid_t host_thread);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_POD_PID_NS_H_
