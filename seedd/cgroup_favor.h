// Keeps the kernel's cgroup migrations out of the RCU grace period with the
// kernel's own switch, favordynmods, for as long as seedd runs.
//
// Every instance's sentry moves its host processes into the instance's
// pooled cgroups (cgroup.procs writes) before it reports. A migration
// write-locks cgroup_threadgroup_rwsem; without favordynmods that percpu
// rwsem returns to its fast reader mode one grace period after its last
// writer, and the next writer then waits a whole grace period (5-24 ms on
// our 2-core VM, HZ=250). A hierarchy mounted with favordynmods keeps the
// rwsem out of the fast reader mode (Linux >= 6.0: rcu_sync_enter), and from
// Linux 6.18 cgroup.procs writes take a rwsem of the moved thread group
// instead of the global one; the price is paid by every fork and exit on the
// host (the rwsem's reader slow path: a full barrier; bench/RESULTS.md).
//
// The v1 hierarchies the host mounted (memory, cpu, pids) cannot take it:
// cgroup v1 refuses changed flags on remount, and a new mount of a bound
// controller reuses its root with the old flags. So seedd mounts a hierarchy
// of its own, named and without controllers (`none,name=NAME,favordynmods`),
// which no process is ever moved into: its root's flag is what counts, the
// rwsem being one for the whole host. Unmounting it (Stop, or the last
// mount of NAME going) gives the flag back; Linux 6.18's per-thread-group
// mode, once on, stays on until reboot (the kernel warns
// "per threadgroup rwsem mechanism can't be disabled").
//
//   CgroupFavor favor({.dir = state_dir + "/cgroup-favordynmods"});
//   if (absl::Status s = favor.Start(); !s.ok()) ...   // EINVAL: an older kernel
//   ... serve calls ...
//   favor.Stop();                                      // also the destructor
#ifndef SEEDVISOR_SEEDD_CGROUP_FAVOR_H_
#define SEEDVISOR_SEEDD_CGROUP_FAVOR_H_

#include <string>

#include "absl/status/status.h"

namespace seedvisor::seedd {

struct CgroupFavorOptions {
  std::string dir;                             // the mount point (made if missing)
  std::string name = "seedd_favordynmods";     // the hierarchy's name=
  std::string mountinfo = "/proc/self/mountinfo";
};

class CgroupFavor {
 public:
  explicit CgroupFavor(CgroupFavorOptions o);
  ~CgroupFavor();  // Stop()
  CgroupFavor(const CgroupFavor&) = delete;
  CgroupFavor& operator=(const CgroupFavor&) = delete;

  // Mounts the hierarchy at `dir` (one an earlier seedd left there is
  // unmounted first) and checks that the kernel shows favordynmods among
  // its options; an error names the mount and the kernel's answer.
  absl::Status Start();
  // Whether `mountinfo` shows a cgroup mount at `dir` with favordynmods
  // (the kernel's own word that the switch is on).
  bool Active() const;
  // Unmounts it (lazily: a reader of the directory does not keep it).
  void Stop();
  const std::string& dir() const { return opts_.dir; }

 private:
  const CgroupFavorOptions opts_;
  bool mounted_ = false;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_CGROUP_FAVOR_H_
