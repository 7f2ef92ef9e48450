// Resources of a process: rlimits, CPU time and usage, sysinfo, nice values.
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {

namespace {

// check_prlimit_permission() in kernel/sys.c: the limits of any task but the
// caller itself (another thread of its own process included), to read or to
// set, need the caller's uid and gid to be that task's real, effective and
// saved ones, or CAP_SYS_RESOURCE. (Without it, a guest user could set pid
// 1's RLIMIT_CPU to 0 and so SIGKILL the sandbox's init.)
// `target` null: a process whose every thread has exited (a zombie), with
// no credentials left to check (its limits no longer matter).
bool MayPrlimit(Task& t, const Task* target) {
  if (target == &t || target == nullptr) return true;
  const Credentials& c = t.creds();
  const Credentials& d = target->creds();
  const bool id_match = c.ruid == d.euid && c.ruid == d.suid && c.ruid == d.ruid &&
                        c.rgid == d.egid && c.rgid == d.sgid && c.rgid == d.rgid;
  return id_match || c.HasCap(CAP_SYS_RESOURCE);
}

}  // namespace

SyscallReturn SysPrlimit64(Task& t, const SyscallArgs& a) {
  struct rlimit newlim;
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyInObj(a.Addr(2), &newlim));
  // pid names any task, a thread id too (find_task_by_vpid() in prlimit64):
  // the limits are its process's, the permission is checked against the
  // named thread's own credentials. A process whose leader has exited (a
  // zombie, or a leader gone before its other threads) is still named by
  // its pid, as Linux keeps the leader's task until the process is reaped;
  // the credentials checked are then a live thread's (a process's threads
  // share them unless a raw setuid syscall split them).
  absl::MutexLock l(&t.kernel().mu());
  std::shared_ptr<Task> target;
  std::shared_ptr<ThreadGroup> tg;
  if (a.Int(0) == 0) {
    tg = t.shared_tg();
  } else if ((target = t.kernel().TaskByVtid(t.pid_ns(), a.Int(0))) != nullptr) {
    tg = target->shared_tg();
  } else if ((tg = t.kernel().ThreadGroupByVtgid(t.pid_ns(), a.Int(0))) != nullptr) {
    if (!tg->tasks.empty()) target = t.kernel().TaskByTid(tg->tasks[0]->tid());
  } else {
    return Errno(ESRCH);
  }
  if (!MayPrlimit(t, a.Int(0) == 0 ? &t : target.get())) return Errno(EPERM);
  // do_prlimit() then checks the resource and the new values.
  const unsigned resource = static_cast<unsigned>(a.Int(1));
  if (resource >= RLIM_NLIMITS) return Errno(EINVAL);
  if (!a.Addr(2).IsNull() && newlim.rlim_cur > newlim.rlim_max) return Errno(EINVAL);
  if (!a.Addr(2).IsNull() && resource == RLIMIT_NOFILE && newlim.rlim_max > Kernel::kNrOpen) {
    return Errno(EPERM);  // past fs.nr_open, root too
  }
  struct rlimit old = tg->rlimits[resource];
  if (!a.Addr(2).IsNull()) {
    if (newlim.rlim_max > old.rlim_max && !t.creds().HasCap(CAP_SYS_RESOURCE)) return Errno(EPERM);
    tg->rlimits[resource] = newlim;
    if (resource == RLIMIT_CPU) {
      // The host refused the thread that enforces it: the limit stays as it was.
      if (Status s = t.kernel().timers().WatchCpuLimit(tg); !s.ok()) {
        tg->rlimits[resource] = old;
        return s.error();
      }
    }
  }
  if (!a.Addr(3).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(3), old));
  return 0;
}

SyscallReturn SysGetrlimit(Task& t, const SyscallArgs& a) {
  SyscallArgs b;
  b.raw[0] = 0;
  b.raw[1] = a.raw[0];
  b.raw[2] = 0;
  b.raw[3] = a.raw[1];
  return SysPrlimit64(t, b);
}

SyscallReturn SysSetrlimit(Task& t, const SyscallArgs& a) {
  SyscallArgs b;
  b.raw[0] = 0;
  b.raw[1] = a.raw[0];
  b.raw[2] = a.raw[1];
  b.raw[3] = 0;
  return SysPrlimit64(t, b);
}

SyscallReturn SysGetrusage(Task& t, const SyscallArgs& a) {
  int who = a.Int(0);
  if (who != RUSAGE_SELF && who != RUSAGE_CHILDREN && who != RUSAGE_THREAD) return Errno(EINVAL);
  struct rusage ru {};
  // User time is guest code's, as the platform measured it; system time is
  // the sentry's work for the guest (Task::SentryCpuNs).
  int64_t ns = who == RUSAGE_CHILDREN ? t.ChildrenCpuNs()
               : who == RUSAGE_THREAD ? t.OwnThreadCpuNs()
                                      : t.OwnProcessCpuNs();
  ru.ru_utime.tv_sec = ns / 1000000000LL;
  ru.ru_utime.tv_usec = (ns % 1000000000LL) / 1000;
  int64_t sys = 0;
  if (who == RUSAGE_THREAD) {
    sys = t.SentryCpuNs();
  } else {
    absl::MutexLock l(&t.kernel().mu());
    sys = who == RUSAGE_CHILDREN ? t.tg().children_sys_ns : t.ProcessSentryCpuNsLocked();
  }
  ru.ru_stime.tv_sec = sys / 1000000000LL;
  ru.ru_stime.tv_usec = (sys % 1000000000LL) / 1000;
  // k_getrusage(): the children's largest peak; else the process's over
  // the images it left (exec keeps it, signal->maxrss) and its current one.
  if (who == RUSAGE_CHILDREN) {
    absl::MutexLock l(&t.kernel().mu());
    ru.ru_maxrss = t.tg().children_maxrss_kb;
  } else {
    ru.ru_maxrss = t.mm().address_space().MaxRssKb();
    absl::MutexLock l(&t.kernel().mu());
    ru.ru_maxrss = std::max<long>(ru.ru_maxrss, t.tg().maxrss_kb);
  }
  SV_TRY(t.CopyOutObj(a.Addr(1), ru));
  return 0;
}

SyscallReturn SysTimes(Task& t, const SyscallArgs& a) {
  struct tms host;
  clock_t ticks = times(&host);
  if (!a.Addr(0).IsNull()) {
    const int64_t ns_per_tick = 1000000000LL / sysconf(_SC_CLK_TCK);
    struct tms out {};
    out.tms_utime = static_cast<clock_t>(t.OwnProcessCpuNs() / ns_per_tick);
    out.tms_cutime = static_cast<clock_t>(t.ChildrenCpuNs() / ns_per_tick);
    // System time: the sentry's for the process and for its reaped children.
    absl::MutexLock l(&t.kernel().mu());
    out.tms_stime = static_cast<clock_t>(t.ProcessSentryCpuNsLocked() / ns_per_tick);
    out.tms_cstime = static_cast<clock_t>(t.tg().children_sys_ns / ns_per_tick);
    SV_TRY(t.CopyOutObj(a.Addr(0), out));
  }
  return static_cast<uint64_t>(ticks);
}

// sysinfo(2) says what /proc does (LTP's sysinfo01 compares them): the
// sandbox's uptime (/proc/uptime, rounded up as do_sysinfo() rounds) and
// load (/proc/loadavg: none), the host's memory (/proc/meminfo), the
// sandbox's task count. The host's uptime and load are not shown.
SyscallReturn SysSysinfo(Task& t, const SyscallArgs& a) {
  struct sysinfo si;
  sysinfo(&si);
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  // In the caller's time namespace (timens_add_boottime()).
  const int64_t up_ns = now.tv_sec * 1000000000LL + now.tv_nsec - t.kernel().boot_time_ns() +
                        TimeNamespace::OffsetOf(t.time_ns().get(), CLOCK_BOOTTIME);
  si.uptime = (up_ns + 999999999) / 1000000000;
  si.loads[0] = si.loads[1] = si.loads[2] = 0;
  {
    absl::MutexLock l(&t.kernel().mu());
    si.procs = static_cast<uint16_t>(t.kernel().Tasks().size());
  }
  SV_TRY(t.CopyOutObj(a.Addr(0), si));
  return 0;
}

namespace {

// The thread groups a getpriority/setpriority (which, who) names; empty if none.
std::vector<ThreadGroup*> PriorityTargets(Task& t, int which, int who)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  std::vector<ThreadGroup*> out;
  // A process or group id is the caller's pid namespace's (find_vpid()).
  if (which != PRIO_USER && who != 0 && (who = Kernel::IdFrom(t.pid_ns(), who)) == 0) return out;
  for (auto& task : t.kernel().Tasks()) {
    ThreadGroup& tg = task->tg();
    bool match = false;
    switch (which) {
      case PRIO_PROCESS: match = who == 0 ? &tg == &t.tg() : task->tid() == who; break;
      case PRIO_PGRP: match = tg.pgid == (who == 0 ? t.tg().pgid : who); break;
      default:  // setpriority()/getpriority(): only tasks the caller's namespace sees
        match = task->creds().ruid == static_cast<uid_t>(who == 0 ? t.creds().ruid : who) &&
                Kernel::IdIn(t.pid_ns(), task->tid()) != 0;
    }
    if (match && std::find(out.begin(), out.end(), &tg) == out.end()) out.push_back(&tg);
  }
  return out;
}

}  // namespace

SyscallReturn SysGetpriority(Task& t, const SyscallArgs& a) {
  int which = a.Int(0);
  if (which < PRIO_PROCESS || which > PRIO_USER) return Errno(EINVAL);
  absl::MutexLock l(&t.kernel().mu());
  std::vector<ThreadGroup*> targets = PriorityTargets(t, which, a.Int(1));
  if (targets.empty()) return Errno(ESRCH);
  // The highest priority (lowest nice) among them, in the syscall's 40-nice
  // encoding (getpriority(2), "C library/kernel differences").
  int best = 19;
  for (ThreadGroup* tg : targets) best = std::min(best, tg->nice);
  return static_cast<uint64_t>(20 - best);
}

SyscallReturn SysSetpriority(Task& t, const SyscallArgs& a) {
  int which = a.Int(0);
  if (which < PRIO_PROCESS || which > PRIO_USER) return Errno(EINVAL);
  int nice = std::clamp(a.Int(2), -20, 19);
  absl::MutexLock l(&t.kernel().mu());
  std::vector<ThreadGroup*> targets = PriorityTargets(t, which, a.Int(1));
  if (targets.empty()) return Errno(ESRCH);
  // set_one_prio() for each: a process of another user is EPERM, raising
  // the priority past RLIMIT_NICE without CAP_SYS_NICE is EACCES; the
  // others change, and the call reports the last refusal.
  const Credentials& c = t.creds();
  int error = 0;
  for (ThreadGroup* tg : targets) {
    const Task* who = tg->leader != nullptr ? tg->leader
                      : tg->tasks.empty()   ? nullptr
                                            : tg->tasks.front();
    const Credentials& pc = who != nullptr ? who->creds() : tg->zombie_creds;
    if (pc.ruid != c.euid && pc.euid != c.euid && !c.HasCap(CAP_SYS_NICE)) {
      error = EPERM;
      continue;
    }
    const rlim_t nice_rlim = static_cast<rlim_t>(20 - nice);  // nice_to_rlimit()
    if (nice < tg->nice && nice_rlim > tg->rlimits[RLIMIT_NICE].rlim_cur &&
        !c.HasCap(CAP_SYS_NICE)) {
      error = EACCES;
      continue;
    }
    tg->nice = nice;
  }
  if (error != 0) return Errno(error);
  return 0;
}

}  // namespace seedvisor::sentry
