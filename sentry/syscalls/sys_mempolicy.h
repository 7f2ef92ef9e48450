// NUMA memory policy (sys_mempolicy.cc, sys_mempolicy_state.cc) as Linux
// gives it on a machine with one memory node: set_mempolicy(2),
// get_mempolicy(2), mbind(2), set_mempolicy_home_node(2), migrate_pages(2)
// and move_pages(2), with mm/mempolicy.c's checks and errnos. The sandbox
// shows one node (node 0: /sys/devices/system/node, Mems_allowed), so a
// policy never changes where memory comes from; it is kept as sentry state
// and reported back: per thread (inherited by clone, kept across exec) and
// per address range of an mm (copied by fork, dropped by a new mapping or
// munmap, moved by mremap).
//
// The state lives in tables keyed by the task and the mm, not in Task or
// MM themselves (their headers rebuild the whole sentry): an entry holds a
// weak reference to its owner, so an entry of a task or mm that is gone is
// never taken for a new one at the same address, and is swept later.
//
//   MemPolicyOnClone(parent, *child);            // Task::Clone, before the child runs
//   MemPolicyRemapped(t, addr, len, addr, 0);    // munmap: the range is default again
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_MEMPOLICY_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_MEMPOLICY_H_

#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

class Task;

// MAX_NUMNODES of the kernel the sandbox presents (CONFIG_NODES_SHIFT=10),
// the width /proc/PID/status's Mems_allowed shows.
inline constexpr int kMaxNumNodes = 1024;
using NodeMask = std::bitset<kMaxNumNodes>;

// One policy, as Linux's struct mempolicy holds it. MPOL_DEFAULT is never
// stored: it is the absence of a policy.
struct MemPolicy {
  int mode = 0;          // MPOL_PREFERRED ... MPOL_WEIGHTED_INTERLEAVE
  int flags = 0;         // MPOL_F_STATIC_NODES / _RELATIVE_NODES / _NUMA_BALANCING
  NodeMask nodes;        // the nodes it uses (pol->nodes)
  NodeMask user_nodes;   // as the caller gave them, with STATIC or RELATIVE
  int home_node = -1;    // set_mempolicy_home_node(2), NUMA_NO_NODE until set
  bool operator==(const MemPolicy&) const = default;
};

// The policies of one mm's address ranges: disjoint [start, end) ranges,
// each with the policy mbind(2) gave it. A range without one has the
// default policy (get_mempolicy(MPOL_F_ADDR) reports MPOL_DEFAULT).
class RangePolicies {
 public:
  struct Range {
    uint64_t end;
    MemPolicy policy;
  };
  const MemPolicy* At(uint64_t addr) const;
  // [start, end) gets `p`, or the default policy when `p` is empty.
  void Set(uint64_t start, uint64_t end, const std::optional<MemPolicy>& p);
  bool empty() const { return ranges_.empty(); }
  const std::map<uint64_t, Range>& ranges() const { return ranges_; }

 private:
  // Makes `addr` a range boundary if a range straddles it.
  void SplitAt(uint64_t addr);
  std::map<uint64_t, Range> ranges_;  // keyed by start
};

// Task::Clone, after the child has its mm and before it runs
// (copy_process()): the child's thread policy is a copy of the parent's,
// and a child with an mm of its own (fork) copies the parent mm's range
// policies (dup_mmap(): vma_dup_policy()).
void MemPolicyOnClone(const Task& parent, const Task& child);
// A mapping call of `t` moved [from, from + from_len) to
// [to, to + to_len): the old range loses its policy and the new one takes
// it (mremap(2): copy_vma(); growing in place keeps the VMA's policy).
// With to_len 0 the range is unmapped (munmap); with from_len 0 a new
// mapping at `to` has the default policy (mmap, brk, shmat).
void MemPolicyRemapped(const Task& t, uint64_t from, uint64_t from_len, uint64_t to,
                       uint64_t to_len);

SyscallReturn SysMbind(Task& t, const SyscallArgs& a);
SyscallReturn SysSetMempolicy(Task& t, const SyscallArgs& a);
SyscallReturn SysGetMempolicy(Task& t, const SyscallArgs& a);
SyscallReturn SysMigratePages(Task& t, const SyscallArgs& a);
SyscallReturn SysMovePages(Task& t, const SyscallArgs& a);
SyscallReturn SysSetMempolicyHomeNode(Task& t, const SyscallArgs& a);

// The state behind the calls (sys_mempolicy_state.cc).
namespace mempolicy {
// The thread policy of `t`; empty for the default.
std::optional<MemPolicy> TaskPolicy(const Task& t);
void SetTaskPolicy(const Task& t, const std::optional<MemPolicy>& p);
// Calls `f` with the range policies of `t`'s mm, under the table's lock
// (so `f` must not call back into this state).
void WithRanges(const Task& t, const std::function<void(RangePolicies&)>& f);
}  // namespace mempolicy

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_MEMPOLICY_H_
