// Watches the memory cgroups (v1) of the shim's sandboxes for OOM: one
// thread waits (epoll) on an eventfd per sandbox registered through
// cgroup.event_control on memory.oom_control, and calls `on_oom(id)` each
// time the kernel signals it — unless the cgroup is gone (its removal
// signals the eventfd too), in which case the watch ends.
//
//   OomWatcher oom([&](const std::string& id) { publish /tasks/oom });
//   RETURN_IF_ERROR(oom.Watch("c1", "default/c1"));   // after create
//   oom.Unwatch("c1");                                 // before delete
#ifndef SEEDVISOR_SHIM_OOM_WATCHER_H_
#define SEEDVISOR_SHIM_OOM_WATCHER_H_

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::shim {

class OomWatcher {
 public:
  // mount_root: where the v1 controllers are mounted (tests use a fake tree).
  explicit OomWatcher(std::function<void(const std::string& id)> on_oom,
                      std::string mount_root = "/sys/fs/cgroup");
  ~OomWatcher();
  OomWatcher(const OomWatcher&) = delete;
  OomWatcher& operator=(const OomWatcher&) = delete;

  // Starts watching the memory cgroup `cgroup_path` (relative to the
  // controller's root) for container `id`; the thread starts on first use.
  absl::Status Watch(const std::string& id, const std::string& cgroup_path);
  // Stops watching `id` (no-op when not watched).
  void Unwatch(const std::string& id);
  // Registers an already-made eventfd (tests: any eventfd they can signal).
  absl::Status WatchFd(const std::string& id, const std::string& cgroup_path, int efd);

 private:
  struct Entry {
    std::string id;
    std::string cgroup_path;
  };
  void Loop();
  void Drop(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<void(const std::string&)> on_oom_;
  const std::string mount_root_;
  int epoll_ = -1;
  int wake_ = -1;  // an eventfd that ends the loop
  std::thread thread_;
  absl::Mutex mu_;
  std::map<int, Entry> fds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_OOM_WATCHER_H_
