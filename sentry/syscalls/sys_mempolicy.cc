// set_mempolicy, get_mempolicy, mbind, set_mempolicy_home_node,
// migrate_pages and move_pages (mm/mempolicy.c, mm/migrate.c) on a machine
// with one memory node, node 0, that every task may use (Mems_allowed 0).
//
// The policies are kept (sys_mempolicy_state.cc) and reported back with
// Linux's checks and errnos. They do not change where guest memory comes
// from: on one node there is nowhere else for it to come from, and no page
// is ever misplaced, so nothing migrates.
#include <linux/capability.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_mempolicy.h"

namespace seedvisor::sentry {

namespace {

constexpr uint64_t kPage = 4096;
constexpr int kWeightedInterleave = 6;  // MPOL_WEIGHTED_INTERLEAVE (Linux 6.9)
constexpr int kMpolMax = 7;             // MPOL_MAX of the kernel we present
constexpr int kNrNodeIds = 1;           // nr_node_ids: node 0 only
constexpr int kModeFlags = MPOL_MODE_FLAGS;

// cpuset_current_mems_allowed and node_states[N_MEMORY]: node 0.
NodeMask AllowedNodes() {
  NodeMask m;
  m.set(0);
  return m;
}

int FirstNode(const NodeMask& m) {
  for (int i = 0; i < kMaxNumNodes; ++i) {
    if (m.test(i)) return i;
  }
  return kMaxNumNodes;
}

// sanitize_mpol_flags(): splits `mode` into the mode and its flags.
Status SanitizeMode(int* mode, int* flags) {
  *flags = *mode & kModeFlags;
  *mode &= ~kModeFlags;
  if (static_cast<unsigned>(*mode) >= kMpolMax) return Errno(EINVAL);
  if ((*flags & MPOL_F_STATIC_NODES) && (*flags & MPOL_F_RELATIVE_NODES)) return Errno(EINVAL);
  if ((*flags & MPOL_F_NUMA_BALANCING) && *mode != MPOL_BIND && *mode != MPOL_PREFERRED_MANY) {
    return Errno(EINVAL);
  }
  return {};
}

// get_nodes(): a user nodemask of `maxnode` - 1 bits (the kernel's
// historical off-by-one). Bits past MAX_NUMNODES must be clear; more than
// a page of bits is EINVAL.
Result<NodeMask> GetNodes(Task& t, UserAddr nmask, uint64_t maxnode) {
  NodeMask nodes;
  --maxnode;
  if (maxnode == 0 || nmask.IsNull()) return nodes;
  if (maxnode > kPage * 8) return Errno(EINVAL);
  // The part past MAX_NUMNODES, one word at a time from the end.
  while (maxnode > kMaxNumNodes) {
    uint64_t bits = std::min<uint64_t>(maxnode, 64);
    uint64_t word;
    SV_TRY(t.CopyInObj(nmask + (maxnode - 1) / 64 * 8, &word));
    if (bits < 64) word &= (uint64_t{1} << bits) - 1;
    if (maxnode - bits >= kMaxNumNodes) {
      maxnode -= bits;
    } else {
      maxnode = kMaxNumNodes;  // a multiple of 64: the whole word is past it
    }
    if (word != 0) return Errno(EINVAL);
  }
  const uint64_t words = (maxnode + 63) / 64;
  uint64_t buf[kMaxNumNodes / 64] = {};
  SV_TRY(t.CopyIn(nmask, buf, words * 8));
  if (maxnode % 64) buf[words - 1] &= (uint64_t{1} << (maxnode % 64)) - 1;
  for (uint64_t i = 0; i < maxnode; ++i) {
    if (buf[i / 64] >> (i % 64) & 1) nodes.set(i);
  }
  return nodes;
}

// copy_nodes_to_user(): the first nr_node_ids bits (a whole long), the rest
// of the caller's ALIGN(maxnode - 1, 64) bits zeroed; more than a page of
// them is EINVAL.
Status CopyNodesOut(Task& t, UserAddr mask, uint64_t maxnode, const NodeMask& nodes) {
  uint64_t copy = ((maxnode - 1 + 63) & ~uint64_t{63}) / 8;
  const uint64_t nbytes = (kNrNodeIds + 63) / 64 * 8;
  if (copy > nbytes) {
    if (copy > kPage) return Errno(EINVAL);
    std::vector<char> zeros(copy - nbytes, 0);
    SV_TRY(t.CopyOut(mask + nbytes, zeros.data(), zeros.size()));
    copy = nbytes;
  }
  uint64_t word = 0;
  for (int i = 0; i < 64; ++i) {
    if (nodes.test(i)) word |= uint64_t{1} << i;
  }
  return t.CopyOut(mask, &word, copy);
}

// mpol_new() and mpol_set_nodemask(): the policy `mode` with `flags` over
// `nodes`, or none for MPOL_DEFAULT. EINVAL when no allowed node is left.
Result<std::optional<MemPolicy>> NewPolicy(int mode, int flags, const NodeMask& nodes) {
  const bool static_or_relative = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
  if (mode == MPOL_DEFAULT) {
    if (nodes.any()) return Errno(EINVAL);
    return std::optional<MemPolicy>();
  }
  if (mode == MPOL_PREFERRED) {
    if (nodes.none()) {
      if (static_or_relative) return Errno(EINVAL);
      mode = MPOL_LOCAL;
    }
  } else if (mode == MPOL_LOCAL) {
    if (nodes.any() || static_or_relative) return Errno(EINVAL);
  } else if (nodes.none()) {
    return Errno(EINVAL);
  }
  MemPolicy p;
  p.mode = mode;
  p.flags = flags;
  if (mode == MPOL_LOCAL) return std::optional<MemPolicy>(p);
  const NodeMask allowed = AllowedNodes();
  NodeMask effective;
  if (flags & MPOL_F_RELATIVE_NODES) {
    // mpol_relative_nodemask(): the nodes folded onto as many as are
    // allowed (one), then mapped onto the allowed ones: any node is node 0.
    if (nodes.any()) effective.set(FirstNode(allowed));
  } else {
    effective = nodes & allowed;
  }
  if (flags & kModeFlags) p.user_nodes = nodes;  // mpol_store_user_nodemask()
  if (effective.none()) return Errno(EINVAL);
  if (mode == MPOL_PREFERRED) {
    p.nodes.set(FirstNode(effective));  // mpol_new_preferred()
  } else {
    p.nodes = effective;
  }
  return std::optional<MemPolicy>(p);
}

// What get_mempolicy(2) reports as the nodes of `p` (none: the default).
NodeMask ReportedNodes(const std::optional<MemPolicy>& p) {
  if (!p) return {};
  if (p->flags & kModeFlags) return p->user_nodes;
  if (p->mode == MPOL_LOCAL) return {};
  return p->nodes;
}

// The task `pid` names (0: the caller) if the caller may look at its
// memory (ptrace_may_access(PTRACE_MODE_READ_REALCREDS)): ESRCH, EPERM.
Result<std::shared_ptr<Task>> TargetTask(Task& t, int pid) {
  if (pid == 0) return t.shared_from_this();
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  std::shared_ptr<Task> target = k.TaskByVtid(t.pid_ns(), pid);
  if (target == nullptr || target->exited()) return Errno(ESRCH);
  if (!MayPtraceAccess(t, target->tg(), target->creds(), PtraceCreds::kReal)) {
    return Errno(EPERM);
  }
  return target;
}

// move_pages(2)'s status of one page: its node (0) if it is in memory,
// -ENOENT if not, -EFAULT where nothing is mapped.
int PageStatus(MM& mm, uint64_t addr) {
  addr &= ~(kPage - 1);
  if (!mm.WithVmaAt(UserAddr(addr), [](const Vma&) {})) return -EFAULT;
  unsigned char resident = 0;
  if (!mm.Mincore(addr, 1, &resident).ok()) return -EFAULT;
  return (resident & 1) ? 0 : -ENOENT;
}

// Whether a page of [start, end) (all mapped) is in memory.
bool AnyResident(MM& mm, uint64_t start, uint64_t end) {
  constexpr uint64_t kChunk = 1024;
  unsigned char vec[kChunk];
  for (uint64_t a = start; a < end; a += kChunk * kPage) {
    const uint64_t n = std::min<uint64_t>(kChunk, (end - a) / kPage);
    if (!mm.Mincore(a, n, vec).ok()) return false;
    for (uint64_t i = 0; i < n; ++i) {
      if (vec[i] & 1) return true;
    }
  }
  return false;
}

// The mapped pieces of [start, end), in address order.
std::vector<std::pair<uint64_t, uint64_t>> MappedPieces(MM& mm, uint64_t start, uint64_t end) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const Vma& v : mm.Vmas()) {
    if (v.end <= start || v.start >= end) continue;
    out.emplace_back(std::max(start, v.start), std::min(end, v.end));
  }
  return out;
}

}  // namespace

SyscallReturn SysSetMempolicy(Task& t, const SyscallArgs& a) {
  int mode = a.Int(0), flags;
  SV_TRY(SanitizeMode(&mode, &flags));
  SV_ASSIGN_OR_RETURN(NodeMask nodes, GetNodes(t, a.Addr(1), a.Ulong(2)));
  SV_ASSIGN_OR_RETURN(std::optional<MemPolicy> p, NewPolicy(mode, flags, nodes));
  mempolicy::SetTaskPolicy(t, p);
  return 0;
}

SyscallReturn SysGetMempolicy(Task& t, const SyscallArgs& a) {
  const UserAddr policy_out = a.Addr(0), nmask = a.Addr(1);
  const uint64_t maxnode = a.Ulong(2), addr = a.Ulong(3), flags = a.Ulong(4);
  if (!nmask.IsNull() && maxnode < kNrNodeIds) return Errno(EINVAL);
  if (flags & ~uint64_t{MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED}) return Errno(EINVAL);
  int value = 0;
  NodeMask nodes;
  if (flags & MPOL_F_MEMS_ALLOWED) {
    if (flags & (MPOL_F_NODE | MPOL_F_ADDR)) return Errno(EINVAL);
    nodes = AllowedNodes();
  } else {
    std::optional<MemPolicy> pol;
    const bool task_policy = !(flags & MPOL_F_ADDR);
    if (flags & MPOL_F_ADDR) {
      // The VMA's own policy, never the task's it falls back to: a range
      // without one reports MPOL_DEFAULT.
      if (!t.mm().WithVmaAt(UserAddr(addr), [](const Vma&) {})) return Errno(EFAULT);
      mempolicy::WithRanges(t, [&](RangePolicies& r) {
        if (const MemPolicy* p = r.At(addr)) pol = *p;
      });
    } else if (addr != 0) {
      return Errno(EINVAL);
    } else {
      pol = mempolicy::TaskPolicy(t);
    }
    if (flags & MPOL_F_NODE) {
      if (flags & MPOL_F_ADDR) {
        // lookup_node(): the node of the page at `addr`, faulted in for
        // reading; one the guest cannot read is EFAULT.
        if (!t.mm().Accessible(UserAddr(addr & ~(kPage - 1)), kPage, PROT_READ)) {
          return Errno(EFAULT);
        }
        value = 0;
      } else if (task_policy && pol &&
                 (pol->mode == MPOL_INTERLEAVE || pol->mode == kWeightedInterleave)) {
        value = FirstNode(pol->nodes);  // the next node to interleave on
      } else {
        return Errno(EINVAL);
      }
    } else {
      value = pol ? (pol->mode | (pol->flags & kModeFlags)) : MPOL_DEFAULT;
    }
    nodes = ReportedNodes(pol);
  }
  if (!policy_out.IsNull()) SV_TRY(t.CopyOutObj(policy_out, static_cast<int32_t>(value)));
  if (!nmask.IsNull()) SV_TRY(CopyNodesOut(t, nmask, maxnode, nodes));
  return 0;
}

SyscallReturn SysMbind(Task& t, const SyscallArgs& a) {
  const uint64_t start = a.Ulong(0);
  uint64_t len = a.Ulong(1);
  int mode = a.Int(2), mode_flags;
  uint64_t flags = a.Uint(5);
  SV_TRY(SanitizeMode(&mode, &mode_flags));
  SV_ASSIGN_OR_RETURN(NodeMask nodes, GetNodes(t, a.Addr(3), a.Ulong(4)));
  // do_mbind()
  if (flags & ~uint64_t{MPOL_MF_VALID}) return Errno(EINVAL);
  if ((flags & MPOL_MF_MOVE_ALL) && !t.creds().HasCap(CAP_SYS_NICE)) return Errno(EPERM);
  if (start & (kPage - 1)) return Errno(EINVAL);
  if (mode == MPOL_DEFAULT) flags &= ~uint64_t{MPOL_MF_STRICT};
  len = (len + kPage - 1) & ~(kPage - 1);
  const uint64_t end = start + len;
  if (end < start) return Errno(EINVAL);
  if (end == start) return 0;
  SV_ASSIGN_OR_RETURN(std::optional<MemPolicy> p, NewPolicy(mode, mode_flags, nodes));
  // queue_pages_range(): a hole in the range is EFAULT, except that the
  // default policy may span holes as long as something is mapped.
  MM& mm = t.mm();
  if (!mm.Accessible(UserAddr(start), len, 0)) {
    if (p || MappedPieces(mm, start, end).empty()) return Errno(EFAULT);
  }
  // MPOL_MF_STRICT alone: a page in memory on a node outside `nodes` (as
  // the caller gave them: none for MPOL_LOCAL) is misplaced, EIO before
  // the policy is set (queue_pages_range() fails the walk). Every page is
  // on node 0; with MOVE it would migrate onto node 0 again.
  if ((flags & MPOL_MF_STRICT) && !(flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL)) &&
      !nodes.test(0) && AnyResident(mm, start, end)) {
    return Errno(EIO);
  }
  mempolicy::WithRanges(t, [&](RangePolicies& r) { r.Set(start, end, p); });
  return 0;
}

SyscallReturn SysSetMempolicyHomeNode(Task& t, const SyscallArgs& a) {
  const uint64_t start = a.Ulong(0), home = a.Ulong(2), flags = a.Ulong(3);
  uint64_t len = a.Ulong(1);
  if (start & (kPage - 1)) return Errno(EINVAL);
  if (flags != 0) return Errno(EINVAL);
  if (home >= kMaxNumNodes || !AllowedNodes().test(home)) return Errno(EINVAL);  // node_online()
  len = (len + kPage - 1) & ~(kPage - 1);
  const uint64_t end = start + len;
  if (end < start) return Errno(EINVAL);
  if (end == start) return 0;
  // Each VMA of the range (a piece of uniform policy) with a policy of its
  // own: BIND and PREFERRED_MANY take the home node; another mode stops
  // with EOPNOTSUPP (what came before keeps it). No such VMA: ENOENT.
  Errno err(ENOENT);
  bool any = false;
  std::vector<std::pair<uint64_t, uint64_t>> pieces = MappedPieces(t.mm(), start, end);
  mempolicy::WithRanges(t, [&](RangePolicies& r) {
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, MemPolicy>> updates;
    for (auto [s, e] : pieces) {
      // The policy ranges inside this VMA piece.
      uint64_t at = s;
      while (at < e) {
        auto next = r.ranges().upper_bound(at);
        const MemPolicy* p = r.At(at);
        uint64_t stop = e;
        if (p != nullptr) {
          stop = std::min(e, std::prev(next)->second.end);
        } else if (next != r.ranges().end()) {
          stop = std::min(e, next->first);
        }
        if (p != nullptr) {
          if (p->mode != MPOL_BIND && p->mode != MPOL_PREFERRED_MANY) {
            err = Errno(EOPNOTSUPP);
            goto done;
          }
          MemPolicy q = *p;
          q.home_node = static_cast<int>(home);
          updates.push_back({{at, stop}, q});
          any = true;
        }
        at = stop;
      }
    }
  done:
    for (auto& [range, q] : updates) r.Set(range.first, range.second, q);
  });
  if (err.value() == EOPNOTSUPP) return err;
  return any ? Result<uint64_t>(0) : Result<uint64_t>(err);
}

SyscallReturn SysMigratePages(Task& t, const SyscallArgs& a) {
  const int pid = a.Int(0);
  const uint64_t maxnode = a.Ulong(1);
  SV_ASSIGN_OR_RETURN(NodeMask from, GetNodes(t, a.Addr(2), maxnode));
  SV_ASSIGN_OR_RETURN(NodeMask to, GetNodes(t, a.Addr(3), maxnode));
  (void)from;  // every page is on node 0, which is the only place to go
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, TargetTask(t, pid));
  const NodeMask allowed = AllowedNodes();
  if ((to & ~allowed).any() && !t.creds().HasCap(CAP_SYS_NICE)) return Errno(EPERM);
  if ((to & allowed).none()) return Errno(EINVAL);
  if (target->shared_mm() == nullptr) return Errno(EINVAL);
  return 0;  // do_migrate_pages(): no page is left behind
}

SyscallReturn SysMovePages(Task& t, const SyscallArgs& a) {
  const int pid = a.Int(0);
  const uint64_t nr = a.Ulong(1), flags = a.Ulong(5);
  const UserAddr pages = a.Addr(2), nodes = a.Addr(3), status = a.Addr(4);
  if (flags & ~uint64_t{MPOL_MF_MOVE | MPOL_MF_MOVE_ALL}) return Errno(EINVAL);
  if ((flags & MPOL_MF_MOVE_ALL) && !t.creds().HasCap(CAP_SYS_NICE)) return Errno(EPERM);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, TargetTask(t, pid));
  std::shared_ptr<MM> mm = target->shared_mm();
  if (mm == nullptr) return Errno(EINVAL);
  const NodeMask allowed = AllowedNodes();
  for (uint64_t i = 0; i < nr; ++i) {
    uint64_t page;
    SV_TRY(t.CopyInObj(pages + i * 8, &page));
    if (!nodes.IsNull()) {
      // do_pages_move(): a node that cannot hold memory ends the call.
      int32_t node;
      SV_TRY(t.CopyInObj(nodes + i * 4, &node));
      if (node < 0 || node >= kMaxNumNodes || !allowed.test(node)) return Errno(ENODEV);
    }
    // A page in memory is on node 0 already, where it was asked to go.
    const int32_t st = PageStatus(*mm, page);
    SV_TRY(t.CopyOutObj(status + i * 4, st));
  }
  return 0;
}

}  // namespace seedvisor::sentry
