// A pod container's own host cgroups inside its pod's one sandbox (issue 14):
// the host process that holds each address space of the container's
// processes (a stub: its guest memory and the CPU time of its guest code)
// lives in the container's memory, cpu, cpuacct and cpuset cgroups, so the
// host enforces that container's linux.resources (memory limit and OOM
// kill, cpu shares/quota, cpuset) while the sentry and the pod's other
// containers stay in the pod sandbox container's cgroup.
//
// The control server opens the container's cgroup.procs files once, at
// CreateContainer (before its first process); the kernel moves a new stub in
// when a task of the container gets an address space from the zygote (its
// first image: Task::Execve). Forks and later execs fork the stub that is
// already there, and the host keeps the child in its parent's cgroups.
//
// The cgroups are the seed's alone: a sandbox fork inherits this object
// (and its fds) with the rest of the sentry's memory, but its stubs belong
// to the fork, never to the seed's containers. Join refuses to move a
// process from any other sentry than the one that opened them. A fork of a
// pod opens its own for each such container (ForkRequest.member_cgroups),
// moves that container's stub copies there before its guest runs and
// drops the seed's object, closing its fds (sentry/control/
// server_fork_pod.cc); should one still be the seed's, a task of the fork
// that starts a first image keeps its stub where the fork's zygote is: the
// fork's own cgroup (ForkRequest.cgroup), or, without one, the sentry's.
//
//   SV_ASSIGN_OR_RETURN(auto cg, HostCgroups::Open("kubepods/pod1/c1"));
//   kernel.SetContainerHostCgroupsLocked("c1", cg);
//   ... cg->Join(stub_pid);   // before the stub maps anything
#ifndef SEEDVISOR_SENTRY_KERNEL_HOST_CGROUPS_H_
#define SEEDVISOR_SENTRY_KERNEL_HOST_CGROUPS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedvisor::sentry {

class HostCgroups {
 public:
  // The controllers a container's stubs join. Not pids: the sandbox counts
  // each container's guest tasks itself (Kernel::SetContainerPidsLimit),
  // and its host pids cgroup (the pod sandbox's) has room for all stubs.
  static constexpr const char* kControllers[] = {"memory", "cpu", "cpuacct", "cpuset"};

  // Opens <mount_root>/<controller>/<path>/cgroup.procs for writing in each
  // controller that has the directory (cpu and cpuacct, one v1 hierarchy
  // on most hosts, are the same file twice: a second move is a no-op).
  // InvalidArgument for a path
  // with "..", NotFound (naming the path) if no controller has it.
  static absl::StatusOr<std::shared_ptr<const HostCgroups>> Open(
      const std::string& path, const std::string& mount_root = "/sys/fs/cgroup");
  ~HostCgroups();
  HostCgroups(const HostCgroups&) = delete;
  HostCgroups& operator=(const HostCgroups&) = delete;

  // Moves host process `pid` (all its threads; a pid of the caller's pid
  // namespace) into every cgroup opened. Pages it has charged so far stay
  // where they were (cgroup v1 memory.move_charge_at_immigrate 0): call it
  // before the process touches the memory it should be charged for.
  // FailedPrecondition, moving nothing, when called in another host process
  // than Open's (a sandbox fork of the sentry that opened them).
  absl::Status Join(pid_t pid) const;
  // Whether this host process opened them (false in a sandbox fork).
  bool OpenedHere() const;
  const std::string& path() const { return path_; }

 private:
  HostCgroups(std::string path, pid_t opener) : path_(std::move(path)), opener_(opener) {}
  std::string path_;
  pid_t opener_;  // the host process (a sentry) whose cgroups these are
  struct Procs {
    std::string file;  // for errors
    int fd;
  };
  std::vector<Procs> procs_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_HOST_CGROUPS_H_
