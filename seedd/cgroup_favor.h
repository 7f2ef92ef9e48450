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
// controller reuses its root with the old flags. So seedd makes a hierarchy
// of its own, named and without controllers (`none,name=NAME,favordynmods`),
// which no process is ever moved into: its root's flag is what counts, the
// rwsem being one for the whole host.
//
// The mount is detached: fsopen/fsconfig/fsmount give a mount that no mount
// namespace holds, only seedd's fd (close-on-exec). The sandboxes seedd
// boots copy its mount tree without it, and when that fd goes (Stop, exit,
// SIGKILL) the kernel drops the mount and the hierarchy, which has no child
// cgroups, with it (cgroup_kill_sb): nothing is left in any directory.
// Dropping it gives the flag back; Linux 6.18's per-thread-group mode, once
// on, stays on for the whole host until reboot (the kernel warns "per
// threadgroup rwsem mechanism can't be disabled").
//
// A hierarchy of that name the kernel already has is reused with its own
// flags: cgroup1_root_to_use ignores the new options (a warning in dmesg
// only; fsconfig and fsmount succeed). So Start asks the kernel whether the
// root has favordynmods: it reconfigures the mount with exactly the same
// options through fspick, which cgroup1_reconfigure refuses (EINVAL, "option
// or name mismatch") when the root's flags differ, and is a no-op otherwise.
//
//   CgroupFavor favor({.name = "seedd_favordynmods_" + hash});
//   if (absl::Status s = favor.Start(); !s.ok()) ...   // older kernel: says why
//   ... serve calls ...
//   favor.Stop();                                      // also the destructor
#ifndef SEEDVISOR_SEEDD_CGROUP_FAVOR_H_
#define SEEDVISOR_SEEDD_CGROUP_FAVOR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedvisor::seedd {

struct CgroupFavorOptions {
  std::string name = "seedd_favordynmods";  // the hierarchy's name= ([A-Za-z0-9_.-], < 64)
};

class CgroupFavor {
 public:
  explicit CgroupFavor(CgroupFavorOptions o);
  ~CgroupFavor();  // Stop()
  CgroupFavor(const CgroupFavor&) = delete;
  CgroupFavor& operator=(const CgroupFavor&) = delete;

  // Makes the hierarchy (or takes the one of that name the kernel has) as a
  // detached mount held by an fd, and checks that its root has
  // favordynmods; an error names the hierarchy, the call and the kernel's
  // answer (an older kernel: no fsopen, or fsconfig refuses the option).
  absl::Status Start();
  // Whether the hierarchy is held and the kernel says its root has
  // favordynmods.
  bool Active() const;
  // Closes the fd: the kernel drops the mount and, if no other mount holds
  // it, the hierarchy.
  void Stop();
  const std::string& name() const { return opts_.name; }

 private:
  // OK when the root of the held hierarchy has favordynmods.
  absl::Status CheckFlag() const;

  const CgroupFavorOptions opts_;
  int fd_ = -1;  // the detached mount (fsmount), close-on-exec
};

// Unmounts the cgroup mounts at `dir` (an older seedd attached its
// hierarchy there and left it when killed) and removes `dir`; returns how
// many it unmounted. `mountinfo` is read to find them.
absl::StatusOr<int> RemoveLeftoverFavorMounts(
    const std::string& dir, const std::string& mountinfo = "/proc/self/mountinfo");

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_CGROUP_FAVOR_H_
