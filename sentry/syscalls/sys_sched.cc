// The sched_* family: policies and their parameters, affinity, the CPU a
// thread runs on, yield. The host schedules the sandbox's threads; policies,
// priorities and masks are kept per thread with Linux's checks and reported
// back (sched(7)), never applied to host threads.
#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "sentry/base/cpus.h"
#include "sentry/kernel/host_affinity.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {

namespace {

// A sched_* target: 0 is the caller, else a thread id (ESRCH if none).
Result<std::shared_ptr<Task>> SchedTarget(Task& t, int pid) {
  if (pid < 0) return Errno(EINVAL);
  if (pid == 0) return t.shared_from_this();
  absl::MutexLock l(&t.kernel().mu());
  auto task = t.kernel().TaskByVtid(t.pid_ns(), pid);  // in the caller's namespace
  if (!task) return Errno(ESRCH);
  return task;
}

}  // namespace

// A guest's sched_yield(2) offers its CPU to the guest's own runnable
// threads, as a VM's kernel offers its vCPU to its own tasks. The host call
// cannot say that: it offers the CPU to every host thread, and under EEVDF
// (Linux >= 6.6, yield_task_fair()) it also pushes the caller's deadline a
// whole slice back, so beside a CPU-bound process of another tenant the
// task sat out that slice on every yield. stress-ng's epoll client yields
// once per connection: beside `stress-ng --cpu 2` that made seedsc's epoll
// rate 166..258 bogo-ops/s where the same binary without the host yield
// made 785..885 (native: 448..465; bench/RESULTS.md, 2026-12-06). The
// guest's threads are host threads that the host already time-slices, so
// nothing waits for this yield; gVisor's Task.Yield (runtime.Gosched())
// never gives its host thread away either.
SyscallReturn SysSchedYield(Task&, const SyscallArgs&) { return 0; }

SyscallReturn SysGetcpu(Task& t, const SyscallArgs& a) {
  // The guest thread's CPU is its stub thread's, which asks the host itself
  // (the sentry's own thread may run anywhere else), straight into guest
  // memory: only below UserTop.
  const uint64_t top = t.mm().address_space().UserTop().value();
  for (int i = 0; i < 2; ++i) {
    if (a.raw[i] > top - sizeof(unsigned)) return Errno(EFAULT);
  }
  const long r = t.ctx_->Getcpu(a.Addr(0), a.Addr(1));
  if (r < 0) return Errno(static_cast<int>(-r));
  return 0;
}

namespace {

// The affinity calls look a negative pid up like any other (no such task:
// ESRCH), unlike sched_getparam's EINVAL (find_process_by_pid()).
Result<std::shared_ptr<Task>> AffinityTarget(Task& t, int pid) {
  if (pid < 0) return Errno(ESRCH);
  return SchedTarget(t, pid);
}

}  // namespace

SyscallReturn SysSchedGetaffinity(Task& t, const SyscallArgs& a) {
  const SandboxCpuSet& cpus = SandboxCpus();
  // sched_getaffinity(2): EINVAL if the buffer cannot hold nr_cpu_ids bits
  // or is not a multiple of a long (checked before the pid); it gets at
  // most the kernel's cpumask.
  size_t len = a.Size(1);
  if (len < cpus.min_bytes || len % sizeof(uint64_t) != 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, AffinityTarget(t, a.Int(0)));
  cpu_set_t set;
  {
    absl::MutexLock l(&t.kernel().mu());
    set = target->affinity_.value_or(cpus.set);
  }
  const size_t n = std::min(len, cpus.mask_bytes);
  SV_TRY(t.CopyOut(a.Addr(2), &set, n));
  return n;
}

SyscallReturn SysSchedSetaffinity(Task& t, const SyscallArgs& a) {
  // A shorter mask means the CPUs past it are cleared; a longer one is read
  // only as far as any CPU can be (sched_setaffinity(2)). The mask is read
  // before the pid is looked up (get_user_cpu_mask()).
  cpu_set_t want;
  CPU_ZERO(&want);
  SV_TRY(t.CopyIn(a.Addr(2), &want, std::min(a.Size(1), sizeof(want))));
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, AffinityTarget(t, a.Int(0)));
  // check_same_owner(), else CAP_SYS_NICE: EPERM.
  const Credentials& c = t.creds();
  const Credentials& tc = target->creds();
  if (c.euid != tc.euid && c.euid != tc.ruid && !c.HasCap(CAP_SYS_NICE)) return Errno(EPERM);
  cpu_set_t set;
  CPU_AND(&set, &want, &SandboxCpus().set);
  // No CPU of the sandbox's left: EINVAL, as for a mask of offline CPUs.
  if (CPU_COUNT(&set) == 0) return Errno(EINVAL);
  {
    absl::MutexLock l(&t.kernel().mu());
    target->affinity_ = set;
  }
  // The caller's own host thread follows now; another task's when its
  // context is next made (it may be running guest code this moment, and
  // only its own sentry thread may drive its context).
  if (target.get() == &t) ApplyHostAffinity(t);
  return 0;
}

namespace {

// SCHED_DEADLINE and the sched_attr of sched_setattr(2)/sched_getattr(2)
// (include/uapi/linux/sched/types.h; glibc 2.36 has neither).
constexpr int kSchedDeadline = 6;
constexpr uint64_t kSchedFlagResetOnFork = 0x01;
constexpr uint64_t kSchedFlagKeepPolicy = 0x08;
constexpr uint64_t kSchedFlagKeepParams = 0x10;
constexpr uint64_t kSchedFlagsKnown = 0x7f;  // SCHED_FLAG_ALL
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};
constexpr uint32_t kSchedAttrSizeVer0 = 48;
static_assert(sizeof(SchedAttr) == 56);  // SCHED_ATTR_SIZE_VER1

// A fair task's slice as sched_getattr() reports it (sched_runtime):
// EEVDF's base slice, 0.7 ms scaled by 1 + log2 of the online CPUs (at
// most 8), sched_tunable_scaling's default (update_sysctl()).
uint64_t FairSliceNs() {
  static const uint64_t slice = [] {
    const int cpus = std::min(get_nprocs(), 8);
    int log2 = 0;
    while ((2 << log2) <= cpus) ++log2;
    return 700000ull * static_cast<uint64_t>(1 + log2);
  }();
  return slice;
}

bool RtPolicy(int p) { return p == SCHED_FIFO || p == SCHED_RR; }
bool FairPolicy(int p) { return p == SCHED_OTHER || p == SCHED_BATCH || p == SCHED_IDLE; }

// What __sched_setscheduler() is asked for.
struct SchedRequest {
  int policy = 0;
  int priority = 0;
  bool reset_on_fork = false;
  bool keep_policy = false, keep_params = false;
  std::optional<int> nice;  // sched_setattr's, for the fair policies
  uint64_t runtime = 0, deadline = 0, period = 0;
};

// can_nice(): a lower nice than RLIMIT_NICE allows needs CAP_SYS_NICE.
bool CanNice(const Task& caller, const ThreadGroup& tg, int nice)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(caller.kernel().mu()) {
  return static_cast<rlim_t>(20 - nice) <= tg.rlimits[RLIMIT_NICE].rlim_cur ||
         caller.creds().HasCap(CAP_SYS_NICE);
}

// __sched_setscheduler()'s checks and its effect on the kept parameters.
SyscallReturn SetScheduler(Task& t, Task& target, SchedRequest r) {
  absl::MutexLock l(&t.kernel().mu());
  Task::SchedParams& cur = target.sched_;
  if (r.keep_policy) r.policy = cur.policy;
  if (r.policy != SCHED_OTHER && r.policy != SCHED_FIFO && r.policy != SCHED_RR &&
      r.policy != SCHED_BATCH && r.policy != SCHED_IDLE && r.policy != kSchedDeadline) {
    return Errno(EINVAL);
  }
  if (r.keep_params) {
    r.priority = cur.priority;
    r.runtime = cur.runtime, r.deadline = cur.deadline, r.period = cur.period;
  }
  // Priorities: 1..99 for the realtime policies, 0 for the others.
  if (r.priority < 0 || r.priority > 99 || RtPolicy(r.policy) != (r.priority != 0)) {
    return Errno(EINVAL);
  }
  if (r.policy == kSchedDeadline && !r.keep_params) {
    // __checkparam_dl().
    const uint64_t period = r.period ? r.period : r.deadline;
    if (r.deadline == 0 || r.runtime < 1024 || (r.deadline >> 63) || (r.period >> 63) ||
        period < r.deadline || r.deadline < r.runtime) {
      return Errno(EINVAL);
    }
  }
  const Credentials& c = t.creds();
  if (!c.HasCap(CAP_SYS_NICE)) {
    // Another user's task: check_same_owner().
    const Credentials& tc = target.creds();
    if (&target != &t && c.euid != tc.euid && c.euid != tc.ruid) return Errno(EPERM);
    if (r.nice && *r.nice < target.tg().nice && !CanNice(t, target.tg(), *r.nice)) {
      return Errno(EPERM);
    }
    if (RtPolicy(r.policy)) {
      const rlim_t rtprio = target.tg().rlimits[RLIMIT_RTPRIO].rlim_cur;
      if (r.policy != cur.policy && rtprio == 0) return Errno(EPERM);
      if (r.priority > cur.priority && static_cast<rlim_t>(r.priority) > rtprio) {
        return Errno(EPERM);
      }
    }
    if (r.policy == kSchedDeadline) return Errno(EPERM);
    if (cur.policy == SCHED_IDLE && r.policy != SCHED_IDLE &&
        !CanNice(t, target.tg(), target.tg().nice)) {
      return Errno(EPERM);
    }
    if (cur.reset_on_fork && !r.reset_on_fork) return Errno(EPERM);
  }
  cur.policy = r.policy;
  cur.priority = r.priority;
  cur.reset_on_fork = r.reset_on_fork;
  if (r.policy == kSchedDeadline) {
    cur.runtime = r.runtime, cur.deadline = r.deadline;
    cur.period = r.period ? r.period : r.deadline;
  } else {
    cur.runtime = cur.deadline = cur.period = 0;
  }
  if (r.nice && FairPolicy(r.policy)) target.tg().nice = std::clamp(*r.nice, -20, 19);
  return 0;
}

// do_sched_setscheduler(): a null param or negative pid is EINVAL before
// anything else; policy -1 (sched_setparam) keeps the policy.
SyscallReturn SetSchedulerCall(Task& t, int pid, int policy, UserAddr param) {
  if (param.IsNull() || pid < 0) return Errno(EINVAL);
  struct sched_param p;
  SV_TRY(t.CopyInObj(param, &p));
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, pid));
  SchedRequest r;
  if (policy < 0) {
    absl::MutexLock l(&t.kernel().mu());
    r.policy = target->sched_.policy;
    r.reset_on_fork = target->sched_.reset_on_fork;
    if (r.policy == kSchedDeadline) r.keep_params = true;
  } else {
    r.reset_on_fork = (policy & SCHED_RESET_ON_FORK) != 0;
    r.policy = policy & ~SCHED_RESET_ON_FORK;
    // Not by this call (it has no runtime/deadline): EINVAL.
    if (r.policy == kSchedDeadline) return Errno(EINVAL);
  }
  r.priority = p.sched_priority;
  return SetScheduler(t, *target, r);
}

}  // namespace

SyscallReturn SysSchedGetscheduler(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, a.Int(0)));
  absl::MutexLock l(&t.kernel().mu());
  return static_cast<uint64_t>(target->sched_.policy |
                               (target->sched_.reset_on_fork ? SCHED_RESET_ON_FORK : 0));
}

SyscallReturn SysSchedSetscheduler(Task& t, const SyscallArgs& a) {
  if (a.Int(1) < 0) return Errno(EINVAL);
  return SetSchedulerCall(t, a.Int(0), a.Int(1), a.Addr(2));
}

SyscallReturn SysSchedGetparam(Task& t, const SyscallArgs& a) {
  if (a.Addr(1).IsNull() || a.Int(0) < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, a.Int(0)));
  struct sched_param p {};
  {
    absl::MutexLock l(&t.kernel().mu());
    p.sched_priority = target->sched_.priority;
  }
  SV_TRY(t.CopyOutObj(a.Addr(1), p));
  return 0;
}

SyscallReturn SysSchedSetparam(Task& t, const SyscallArgs& a) {
  return SetSchedulerCall(t, a.Int(0), -1, a.Addr(1));
}

SyscallReturn SysSchedGetattr(Task& t, const SyscallArgs& a) {
  // sched_getattr(2): EINVAL for a null attr, a size below the first
  // version's or above a page, flags, or a negative pid.
  const size_t usize = a.Size(2);
  if (a.Addr(1).IsNull() || usize < kSchedAttrSizeVer0 || usize > kPageSize || a.Uint(3) != 0 ||
      a.Int(0) < 0) {
    return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, a.Int(0)));
  SchedAttr attr{};
  {
    absl::MutexLock l(&t.kernel().mu());
    const Task::SchedParams& s = target->sched_;
    attr.sched_policy = static_cast<uint32_t>(s.policy);
    attr.sched_flags = s.reset_on_fork ? kSchedFlagResetOnFork : 0;
    if (FairPolicy(s.policy)) attr.sched_nice = target->tg().nice;
    attr.sched_priority = static_cast<uint32_t>(s.priority);
    attr.sched_runtime = FairPolicy(s.policy) ? FairSliceNs() : s.runtime;
    attr.sched_deadline = s.deadline;
    attr.sched_period = s.period;
    // sched_util_min/max stay 0: no utilization clamping (!UCLAMP_TASK).
  }
  // sched_attr_copy_to_user(): as much as both sides know, and that size.
  const size_t n = std::min(usize, sizeof(attr));
  attr.size = static_cast<uint32_t>(n);
  SV_TRY(t.CopyOut(a.Addr(1), &attr, n));
  return 0;
}

SyscallReturn SysSchedSetattr(Task& t, const SyscallArgs& a) {
  if (a.Addr(1).IsNull() || a.Int(0) < 0 || a.Uint(2) != 0) return Errno(EINVAL);
  // sched_copy_attr(): size 0 means the first version; a size below it or
  // above a page, or a larger struct with bytes we do not know set, is
  // E2BIG with our size written back.
  uint32_t size;
  SV_TRY(t.CopyInObj(a.Addr(1), &size));
  if (size == 0) size = kSchedAttrSizeVer0;
  auto too_big = [&]() -> SyscallReturn {
    const uint32_t ours = sizeof(SchedAttr);
    SV_TRY(t.CopyOutObj(a.Addr(1), ours));
    return Errno(E2BIG);
  };
  if (size < kSchedAttrSizeVer0 || size > kPageSize) return too_big();
  SchedAttr attr{};
  SV_TRY(t.CopyIn(a.Addr(1), &attr, std::min<size_t>(size, sizeof(attr))));
  if (size > sizeof(attr)) {
    std::vector<char> rest(size - sizeof(attr));
    SV_TRY(t.CopyIn(a.Addr(1) + sizeof(attr), rest.data(), rest.size()));
    for (char c : rest) {
      if (c != 0) return too_big();
    }
  }
  if (attr.sched_flags & ~kSchedFlagsKnown) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, a.Int(0)));
  SchedRequest r;
  r.policy = static_cast<int>(attr.sched_policy);
  r.priority = static_cast<int>(attr.sched_priority);
  r.reset_on_fork = (attr.sched_flags & kSchedFlagResetOnFork) != 0;
  r.keep_policy = (attr.sched_flags & kSchedFlagKeepPolicy) != 0;
  r.keep_params = (attr.sched_flags & kSchedFlagKeepParams) != 0;
  r.runtime = attr.sched_runtime, r.deadline = attr.sched_deadline, r.period = attr.sched_period;
  if (!r.keep_params) r.nice = attr.sched_nice;
  return SetScheduler(t, *target, r);
}

SyscallReturn SysSchedGetPriorityMax(Task&, const SyscallArgs& a) {
  int p = a.Int(0);
  if (RtPolicy(p)) return 99;
  if (FairPolicy(p) || p == kSchedDeadline) return 0;
  return Errno(EINVAL);
}

SyscallReturn SysSchedGetPriorityMin(Task&, const SyscallArgs& a) {
  int p = a.Int(0);
  if (RtPolicy(p)) return 1;
  if (FairPolicy(p) || p == kSchedDeadline) return 0;
  return Errno(EINVAL);
}

SyscallReturn SysSchedRrGetInterval(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::shared_ptr<Task> target, SchedTarget(t, a.Int(0)));
  // A SCHED_RR task's quantum (sched_rr_timeslice_ms, 100 ms by default);
  // 0 for FIFO and, as this host reports it, for the fair policies.
  int policy;
  {
    absl::MutexLock l(&t.kernel().mu());
    policy = target->sched_.policy;
  }
  timespec ts{0, policy == SCHED_RR ? 100000000L : 0};
  SV_TRY(t.CopyOutObj(a.Addr(1), ts));
  return 0;
}

}  // namespace seedvisor::sentry
