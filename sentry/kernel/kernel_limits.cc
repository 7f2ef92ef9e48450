// Limits on making tasks: the sandbox's pids limit (a pids cgroup's
// pids.max and pids.current), each pod container's own, and RLIMIT_NPROC
// per real uid (copy_process()'s checks).
#include <sys/resource.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

Status Kernel::CheckTaskLimits(const Task& parent) {
  // pids_can_fork(): the container's limit binds root too.
  if (PidsLimitReachedLocked(parent.tg().container_pids.get()) > 0) return Errno(EAGAIN);
  const Credentials& c = parent.creds();
  const rlim_t limit = parent.tg().rlimits[RLIMIT_NPROC].rlim_cur;
  if (limit == RLIM_INFINITY || c.ruid == 0 || c.HasCap(CAP_SYS_RESOURCE) ||
      c.HasCap(CAP_SYS_ADMIN)) {
    return {};
  }
  auto it = tasks_per_uid_.find(c.ruid);
  const int64_t n = it == tasks_per_uid_.end() ? 0 : it->second;
  if (static_cast<uint64_t>(n) >= limit) return Errno(EAGAIN);
  return {};
}

void Kernel::ChargePidsLocked(ContainerPids* container, int64_t delta) {
  pids_charged_ += delta;
  if (container != nullptr) container->charged += delta;
}

std::shared_ptr<ContainerPids> Kernel::ContainerPidsOfLocked(const std::string& container) {
  if (container.empty()) return nullptr;
  std::shared_ptr<ContainerPids>& c = container_pids_[container];
  if (!c) c = std::make_shared<ContainerPids>();
  return c;
}

void Kernel::SetContainerPidsLimit(const std::string& container, int64_t limit) {
  if (container.empty()) return;
  ContainerPidsOfLocked(container)->limit = limit > 0 ? limit : 0;
}

void Kernel::SetContainerHostCgroupsLocked(const std::string& container,
                                           std::shared_ptr<const HostCgroups> cgroups) {
  if (container.empty()) return;
  ContainerPidsOfLocked(container)->host_cgroups = std::move(cgroups);
}

int64_t Kernel::ContainerPidsLimitLocked(const std::string& container) const {
  auto it = container_pids_.find(container);
  return it == container_pids_.end() ? 0 : it->second->limit;
}

int64_t Kernel::ContainerPidsChargedLocked(const std::string& container) const {
  auto it = container_pids_.find(container);
  return it == container_pids_.end() ? 0 : it->second->charged;
}

int64_t Kernel::PidsLimitReachedLocked(const ContainerPids* container) const {
  if (const int64_t limit = pids_limit(); limit > 0 && pids_charged_ >= limit) return limit;
  if (container != nullptr && container->limit > 0 && container->charged >= container->limit) {
    return container->limit;
  }
  return 0;
}

void Kernel::RecountTaskUid(Task& t) {
  absl::MutexLock l(&mu_);
  if (tasks_.count(t.tid()) == 0 || t.counted_uid_ == t.creds().ruid) return;
  if (--tasks_per_uid_[t.counted_uid_] <= 0) tasks_per_uid_.erase(t.counted_uid_);
  t.counted_uid_ = t.creds().ruid;
  ++tasks_per_uid_[t.counted_uid_];
}

}  // namespace seedvisor::sentry
