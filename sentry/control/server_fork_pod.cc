// The Fork RPC for a pod seed (a sandbox with application containers,
// CreateContainer; issue 14): which member cgroups the fork needs, and, in
// the forked sentry, taking them.
//
// A member with host cgroups of its own has its processes' stubs there
// (sentry/kernel/host_cgroups.h). The fork's copies of those stubs are made
// by the seed's stubs, so the host puts them in the seed's member cgroups;
// and the forked sentry inherits the seed's HostCgroups (their fds) with
// the rest of its memory. Neither may stay: the fork's processes would be
// charged to, and OOM-killed by, the seed's container's limits. So the
// Fork's caller names a cgroup of the fork's own for each member
// (ForkRequest.member_cgroups), the forked sentry opens those itself, moves
// each member's stub copies there before its guest runs, and drops the
// seed's (closing their fds). The copies are in the seed's member cgroups
// only between the spare made at the Fork (a pod keeps none ahead:
// SpareLoop) and that move.
#include <set>

#include "absl/strings/str_cat.h"
#include "sentry/control/server.h"
#include "sentry/kernel/host_cgroups.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"
#include "sentry/mm/mm.h"

namespace seedvisor::control {

absl::Status ControlServer::CheckPodForkLocked(const v1::ForkRequest& req) const {
  if (auto it = containers_.find(req.new_id()); it != containers_.end() && it->second != first_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sandbox fork: new_id \"", req.new_id(), "\" is the id of a container of the pod, which "
        "the fork's container keeps"));
  }
  for (const auto& [id, path] : req.member_cgroups()) {
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second == first_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sandbox fork: member_cgroups: \"", id, "\" is no application container of \"",
          cfg_.id, "\"'s pod", it == containers_.end() ? "" : " (its first container's is cgroup)"));
    }
    if (path.empty() || path.find("..") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("sandbox fork: member_cgroups: container \"",
                                                     id, "\": \"", path, "\" is not a cgroup path"));
    }
  }
  for (const auto& [id, c] : containers_) {
    if (c == first_) continue;
    if (c->phase == Phase::kCreated || c->starting) {
      // Its init waits for a Start with stdio the seed holds.
      return absl::FailedPreconditionError(absl::StrCat(
          "sandbox fork: container \"", id, "\" of the pod is created but not started: a pod is "
          "forked with its containers running or stopped"));
    }
    if (!c->host_cgroup.empty() && req.member_cgroups().count(id) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sandbox fork: container \"", id, "\" of the pod has a host cgroup of its own (\"",
          c->host_cgroup, "\"): the fork needs one for it too (ForkRequest.member_cgroups, "
          "seedsc fork --member-cgroup ", id, "=PATH)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ControlServer::TakeMemberCgroupsInForkChild(const v1::ForkRequest& req) {
  // On kvm the guest's memory is the sentry's: a member has none of its
  // own there (CreateContainer), and the fork's cgroup holds it all.
  if (kernel_.platform().name() == "kvm") return absl::OkStatus();
  for (const auto& [id, path] : req.member_cgroups()) {
    auto named = [&id](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("sandbox fork: container \"", id, "\": ",
                                                 s.message()));
    };
    // Opened here: their fds and their Join are this sentry's.
    absl::StatusOr<std::shared_ptr<const sentry::HostCgroups>> cg = sentry::HostCgroups::Open(path);
    if (!cg.ok()) return named(cg.status());
    // The host process of each address space of the member's processes
    // (the spare's stub copies, adopted by now; the guest is still parked).
    std::set<pid_t> stubs;
    {
      absl::MutexLock l(&kernel_.mu());
      for (const std::shared_ptr<sentry::Task>& t : kernel_.Tasks()) {
        if (t->exited() || t->tg().container_id != id) continue;
        std::shared_ptr<sentry::MM> mm = t->shared_mm();
        if (mm != nullptr) stubs.insert(mm->address_space().host_pid());
      }
    }
    for (pid_t stub : stubs) {
      if (absl::Status s = (*cg)->Join(stub); !s.ok()) return named(s);
    }
    // Its first images from now on join them (Task::Execve); the seed's
    // are let go of, and their fds closed, here.
    {
      absl::MutexLock l(&kernel_.mu());
      kernel_.SetContainerHostCgroupsLocked(id, std::move(*cg));
    }
    if (auto it = containers_.find(id); it != containers_.end()) it->second->host_cgroup = path;
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::control
