// PidNamespace: a pid namespace below the sandbox's own (pid_namespaces(7)).
//
// The sandbox's pid namespace is the kernel's id space itself (Kernel's
// tids, "global" ids here): a task there has no PidNamespace (null). A task
// with CAP_SYS_ADMIN makes a new one with clone(CLONE_NEWPID) or
// unshare(CLONE_NEWPID) + fork; its first process is its init (id 1). A
// task then has one id per level, as Linux's struct pid's numbers[]: its
// global id and a local one in each namespace from its own up to the
// sandbox's. Every call that takes or shows an id translates it for the
// calling task's namespace (Kernel::IdIn / Kernel::IdFrom); an id of a task
// outside it is 0 there (getppid() of the init, a sender's si_pid).
//
//   int local = k.IdIn(viewer_ns, global);   // 0: not visible there
//   int global = k.IdFrom(viewer_ns, local); // 0: no such id there
//
// Everything but the constant parent, level and inode is guarded by
// Kernel::mu().
#ifndef SEEDVISOR_SENTRY_KERNEL_PID_NAMESPACE_H_
#define SEEDVISOR_SENTRY_KERNEL_PID_NAMESPACE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace seedvisor::sentry {

class ThreadGroup;

class PidNamespace {
 public:
  // MAX_PID_NS_LEVEL: the sandbox's own namespace is level 0.
  static constexpr int kMaxLevel = 32;

  // A child of `parent` (null: of the sandbox's namespace).
  explicit PidNamespace(std::shared_ptr<PidNamespace> parent);
  PidNamespace(const PidNamespace&) = delete;
  PidNamespace& operator=(const PidNamespace&) = delete;

  const std::shared_ptr<PidNamespace>& parent() const { return parent_; }
  int level() const { return level_; }
  // Its nsfs inode number (/proc/PID/ns/pid).
  uint64_t ino() const { return ino_; }
  // Whether `this` is `other` or one of its ancestors.
  bool Contains(const PidNamespace* other) const;

  // ---- Ids (guarded by Kernel::mu()) ----
  // The next free local id (alloc_pid()'s cyclic allocation from 1), or
  // `want` (clone3's set_tid) if it is free; -EEXIST when `want` is taken,
  // -1 when the namespace is full.
  int Allocate(int want = 0);
  // The id the cyclic allocation gave last (a `want` does not count), as
  // /proc/loadavg shows it (idr_get_cursor() - 1); 0 before any.
  int last_allocated() const { return last_; }
  // /proc/sys/kernel/ns_last_pid's write: the cyclic allocation goes on
  // after `last` (idr_set_cursor()).
  void set_last_allocated(int last);
  void Add(int local, int global);
  // The local id of `global`, 0 if it has none here.
  int Local(int global) const;
  // The global id of `local`, 0 if none.
  int Global(int local) const;
  void Remove(int global);

  // ---- Its init (child_reaper) and its end (zap_pid_namespace()) ----
  // The namespace's first process; its orphans' reaper. Set at clone.
  std::weak_ptr<ThreadGroup> init;
  // PIDNS_ADDING: cleared when the init exits; a fork into the namespace
  // then fails with ENOMEM (alloc_pid()).
  bool adding = true;
  // Live tasks in this namespace or below that are not its init's.
  int64_t others = 0;
  // The init exited while `others` were alive: its parent hears of it
  // when the last of them is gone, as zap_pid_namespace() waits for them.
  std::shared_ptr<ThreadGroup> exit_pending;

 private:
  const std::shared_ptr<PidNamespace> parent_;
  const int level_;
  const uint64_t ino_;
  int next_ = 1;
  int last_ = 0;
  std::map<int, int> local_to_global_;
  std::map<int, int> global_to_local_;
};

// One id's numbers, one per level from the sandbox's namespace down to its
// task's own, as they were given to it (Linux's struct pid and its
// numbers[]). One object per id while it is in use (Kernel::
// NumbersOfLocked): a thread's, a process's (its leader's), and a process
// group's or session's (the id it was made with). What shows an id long
// after it was named keeps one: SysV IPC's creator and last pids (ipc/shm.c,
// msg.c, sem.c keep a struct pid and show pid_vnr() of it), a file's owner
// (fown_struct), a terminal's session and foreground group. Linux frees the
// numbers at the reap (free_pid()) and may give them out again, yet
// pid_nr_ns() of a kept struct pid still answers the number it had; so does
// In(). A later holder of the same id gets another object: comparing
// objects tells them apart. Immutable; shared freely.
//
//   std::shared_ptr<const PidNumbers> who = t.tg().pid_numbers;
//   int shown = PidNumbers::In(who.get(), reader->pid_ns());  // 0: none there
class PidNumbers {
 public:
  // `numbers[level]`: the id in the namespace of that level on the way from
  // the sandbox's (level 0, the global id) down to `ns` (null: the sandbox's).
  PidNumbers(std::shared_ptr<PidNamespace> ns, std::vector<int> numbers)
      : ns_(std::move(ns)), numbers_(std::move(numbers)) {}

  // pid_nr_ns(): the number `p` had in `reader` (null: the sandbox's
  // namespace); 0 if it had none there, or if `p` is null (nobody yet).
  static int In(const PidNumbers* p, const PidNamespace* reader);
  // Its id in the sandbox's namespace (the kernel's), numbers[0].
  int global() const { return numbers_.front(); }

 private:
  const std::shared_ptr<PidNamespace> ns_;  // keeps the namespaces compared
  const std::vector<int> numbers_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_PID_NAMESPACE_H_
