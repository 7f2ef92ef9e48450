// Identity and resources: uid/gid, capabilities, rlimits, uname, sysinfo,
// scheduling, getrandom.
#include <linux/capability.h>
#include <sched.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "sentry/base/cpus.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

constexpr uint32_t kNoChange = static_cast<uint32_t>(-1);

}  // namespace

SyscallReturn SysGetuid(Task& t, const SyscallArgs&) { return t.creds().ruid; }
SyscallReturn SysGeteuid(Task& t, const SyscallArgs&) { return t.creds().euid; }
SyscallReturn SysGetgid(Task& t, const SyscallArgs&) { return t.creds().rgid; }
SyscallReturn SysGetegid(Task& t, const SyscallArgs&) { return t.creds().egid; }

SyscallReturn SysGetresuid(Task& t, const SyscallArgs& a) {
  const Credentials& c = t.creds();
  SV_TRY(t.CopyOutObj(a.Addr(0), c.ruid));
  SV_TRY(t.CopyOutObj(a.Addr(1), c.euid));
  SV_TRY(t.CopyOutObj(a.Addr(2), c.suid));
  return 0;
}

SyscallReturn SysGetresgid(Task& t, const SyscallArgs& a) {
  const Credentials& c = t.creds();
  SV_TRY(t.CopyOutObj(a.Addr(0), c.rgid));
  SV_TRY(t.CopyOutObj(a.Addr(1), c.egid));
  SV_TRY(t.CopyOutObj(a.Addr(2), c.sgid));
  return 0;
}

namespace {

// commit_creds(): a change of the effective or filesystem ids makes the
// process non-dumpable (suid_dumpable is 0).
class DumpableGuard {
 public:
  explicit DumpableGuard(Task& t)
      : t_(t), euid_(t.creds().euid), fsuid_(t.creds().fsuid), egid_(t.creds().egid),
        fsgid_(t.creds().fsgid) {}
  ~DumpableGuard() {
    const Credentials& c = t_.creds();
    if (c.euid != euid_ || c.fsuid != fsuid_ || c.egid != egid_ || c.fsgid != fsgid_) {
      t_.tg().dumpable = false;
    }
  }

 private:
  Task& t_;
  const uid_t euid_, fsuid_;
  const gid_t egid_, fsgid_;
};

}  // namespace

namespace {

// The set*id rules of kernel/sys.c, for uids and gids alike, in one place.
// `priv` is CAP_SETUID (CAP_SETGID for gids). kNoChange (-1) leaves an id as
// it is; it is also the one invalid id (uid_valid() in the sandbox's single
// user namespace). Each rule checks every requested id against the OLD ids
// before changing any, and sets the filesystem id to the new effective id.
struct Ids {
  uint32_t r, e, s, fs;
};

// __sys_setresuid(): an unprivileged caller may pick each id among its
// current real, effective and saved ids. A call that changes nothing (the
// effective id requested equal to both the effective and the filesystem id)
// leaves the filesystem id alone.
int SetRes(Ids& c, bool priv, uint32_t r, uint32_t e, uint32_t s) {
  auto same = [&](uint32_t id) { return id == kNoChange || id == c.r || id == c.e || id == c.s; };
  if ((r == kNoChange || r == c.r) && (e == kNoChange || (e == c.e && e == c.fs)) &&
      (s == kNoChange || s == c.s)) {
    return 0;
  }
  if (!priv && !(same(r) && same(e) && same(s))) return EPERM;
  if (r != kNoChange) c.r = r;
  if (e != kNoChange) c.e = e;
  if (s != kNoChange) c.s = s;
  c.fs = c.e;
  return 0;
}

// __sys_setreuid()/__sys_setregid(): the real id may become the real or the
// effective id, the effective id any of the three; the saved id follows the
// new effective id when the real id is set or the effective id is set to
// something other than the old real id.
int SetRe(Ids& c, bool priv, uint32_t r, uint32_t e) {
  if (!priv) {
    if (r != kNoChange && r != c.r && r != c.e) return EPERM;
    if (e != kNoChange && e != c.r && e != c.e && e != c.s) return EPERM;
  }
  const uint32_t old_r = c.r;
  if (r != kNoChange) c.r = r;
  if (e != kNoChange) c.e = e;
  if (r != kNoChange || (e != kNoChange && e != old_r)) c.s = c.e;
  c.fs = c.e;
  return 0;
}

// __sys_setuid()/__sys_setgid(): privileged, all four ids; otherwise the
// effective (and filesystem) id may become the real or the saved id.
int Set(Ids& c, bool priv, uint32_t id) {
  if (id == kNoChange) return EINVAL;
  if (priv) {
    c.r = c.s = id;
  } else if (id != c.r && id != c.s) {
    return EPERM;
  }
  c.e = c.fs = id;
  return 0;
}

// __sys_setfsuid()/__sys_setfsgid(): never fails; an id that is invalid or
// not allowed (not one of the four current ids, unprivileged) changes
// nothing. The caller returns the old filesystem id either way.
void SetFs(Ids& c, bool priv, uint32_t id) {
  if (id == kNoChange) return;
  if (priv || id == c.r || id == c.e || id == c.s || id == c.fs) c.fs = id;
}

Ids UidsOf(const Credentials& c) { return {c.ruid, c.euid, c.suid, c.fsuid}; }
Ids GidsOf(const Credentials& c) { return {c.rgid, c.egid, c.sgid, c.fsgid}; }

// Installs new uids, with the capability changes that follow
// (cap_task_fix_setuid(): LSM_SETID_FS for setfsuid, cap_emulate_setxuid()
// for the others, which look at the real, effective and saved ids only)
// and the per-user task count.
void CommitUids(Task& t, const Ids& n, bool fs_only) {
  Credentials& c = t.mutable_creds();
  const uid_t old_r = c.ruid, old_e = c.euid, old_s = c.suid, old_fs = c.fsuid;
  c.ruid = n.r;
  c.euid = n.e;
  c.suid = n.s;
  c.fsuid = n.fs;
  if (fs_only) {
    c.FixupAfterSetfsuid(old_fs);
  } else {
    c.FixupAfterSetuid(old_r, old_e, old_s);
  }
  if (c.ruid != old_r) t.kernel().RecountTaskUid(t);
}

void CommitGids(Task& t, const Ids& n) {
  Credentials& c = t.mutable_creds();
  c.rgid = n.r;
  c.egid = n.e;
  c.sgid = n.s;
  c.fsgid = n.fs;
}

SyscallReturn UidResult(Task& t, int err, const Ids& n) {
  if (err != 0) return Errno(err);
  CommitUids(t, n, /*fs_only=*/false);
  return 0;
}

SyscallReturn GidResult(Task& t, int err, const Ids& n) {
  if (err != 0) return Errno(err);
  CommitGids(t, n);
  return 0;
}

}  // namespace

SyscallReturn SysSetresuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  int err = SetRes(n, t.creds().HasCap(CAP_SETUID), a.Uint(0), a.Uint(1), a.Uint(2));
  return UidResult(t, err, n);
}

SyscallReturn SysSetresgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  int err = SetRes(n, t.creds().HasCap(CAP_SETGID), a.Uint(0), a.Uint(1), a.Uint(2));
  return GidResult(t, err, n);
}

SyscallReturn SysSetuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  return UidResult(t, Set(n, t.creds().HasCap(CAP_SETUID), a.Uint(0)), n);
}

SyscallReturn SysSetgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  return GidResult(t, Set(n, t.creds().HasCap(CAP_SETGID), a.Uint(0)), n);
}

SyscallReturn SysSetreuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  return UidResult(t, SetRe(n, t.creds().HasCap(CAP_SETUID), a.Uint(0), a.Uint(1)), n);
}

SyscallReturn SysSetregid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  return GidResult(t, SetRe(n, t.creds().HasCap(CAP_SETGID), a.Uint(0), a.Uint(1)), n);
}

SyscallReturn SysSetfsuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  const uint32_t old = t.creds().fsuid;
  Ids n = UidsOf(t.creds());
  SetFs(n, t.creds().HasCap(CAP_SETUID), a.Uint(0));
  CommitUids(t, n, /*fs_only=*/true);
  return old;
}

SyscallReturn SysSetfsgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  const uint32_t old = t.creds().fsgid;
  Ids n = GidsOf(t.creds());
  SetFs(n, t.creds().HasCap(CAP_SETGID), a.Uint(0));
  CommitGids(t, n);
  return old;
}

SyscallReturn SysGetgroups(Task& t, const SyscallArgs& a) {
  const auto& g = t.creds().groups;
  int size = a.Int(0);
  if (size < 0) return Errno(EINVAL);
  if (size == 0) return g.size();
  if (static_cast<size_t>(size) < g.size()) return Errno(EINVAL);
  SV_TRY(t.CopyOut(a.Addr(1), g.data(), g.size() * sizeof(gid_t)));
  return g.size();
}

SyscallReturn SysSetgroups(Task& t, const SyscallArgs& a) {
  if (!t.creds().HasCap(CAP_SETGID)) return Errno(EPERM);
  int size = a.Int(0);
  if (size < 0 || size > 65536) return Errno(EINVAL);
  std::vector<gid_t> g(static_cast<size_t>(size));
  SV_TRY(t.CopyIn(a.Addr(1), g.data(), g.size() * sizeof(gid_t)));
  t.mutable_creds().groups = std::move(g);
  return 0;
}

namespace {

// capget(2)/capset(2)'s header: EINVAL (and the preferred version written
// back) for an unknown version; pid 0 or the caller's own tid for capset.
Result<int> CapVersionWords(Task& t, UserAddr hdr_addr, __user_cap_header_struct* hdr) {
  SV_TRY(t.CopyInObj(hdr_addr, hdr));
  switch (hdr->version) {
    case _LINUX_CAPABILITY_VERSION_1: return 1;
    case _LINUX_CAPABILITY_VERSION_2:
    case _LINUX_CAPABILITY_VERSION_3: return 2;
    default:
      hdr->version = _LINUX_CAPABILITY_VERSION_3;
      SV_TRY(t.CopyOutObj(hdr_addr, *hdr));
      return Errno(EINVAL);
  }
}

}  // namespace

SyscallReturn SysCapget(Task& t, const SyscallArgs& a) {
  __user_cap_header_struct hdr;
  auto words = CapVersionWords(t, a.Addr(0), &hdr);
  if (!words.ok()) return a.Addr(1).IsNull() ? Result<uint64_t>(0) : Result<uint64_t>(words.error());
  if (hdr.pid < 0) return Errno(EINVAL);
  Credentials c;
  if (hdr.pid == 0 || hdr.pid == t.vtid()) {
    c = t.creds();
  } else {
    absl::MutexLock l(&t.kernel().mu());
    auto target = t.kernel().TaskByVtid(t.pid_ns(), hdr.pid);
    if (!target) return Errno(ESRCH);
    c = target->creds();
  }
  if (a.Addr(1).IsNull()) return 0;
  __user_cap_data_struct data[2];
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(c.cap_effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(c.cap_permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(c.cap_inheritable >> (32 * i));
  }
  SV_TRY(t.CopyOut(a.Addr(1), data, *words * sizeof(data[0])));
  return 0;
}

SyscallReturn SysCapset(Task& t, const SyscallArgs& a) {
  __user_cap_header_struct hdr;
  SV_ASSIGN_OR_RETURN(int words, CapVersionWords(t, a.Addr(0), &hdr));
  // Only one's own capabilities can be set (capset(2): EPERM otherwise).
  if (hdr.pid != 0 && hdr.pid != t.tid()) return Errno(EPERM);
  __user_cap_data_struct data[2] = {};
  SV_TRY(t.CopyIn(a.Addr(1), data, words * sizeof(data[0])));
  auto join = [&](uint32_t __user_cap_data_struct::*f) {
    return uint64_t{data[0].*f} | (uint64_t{data[1].*f} << 32);
  };
  int e = t.mutable_creds().Capset(join(&__user_cap_data_struct::effective),
                                   join(&__user_cap_data_struct::permitted),
                                   join(&__user_cap_data_struct::inheritable));
  if (e != 0) return Errno(e);
  return 0;
}

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
  // Guest CPU time is what the platform measured; it is all reported as
  // user time (the sentry's own work on the guest's behalf is not counted).
  int64_t ns = who == RUSAGE_CHILDREN ? t.ChildrenCpuNs()
               : who == RUSAGE_THREAD ? t.OwnThreadCpuNs()
                                      : t.OwnProcessCpuNs();
  ru.ru_utime.tv_sec = ns / 1000000000LL;
  ru.ru_utime.tv_usec = (ns % 1000000000LL) / 1000;
  if (who != RUSAGE_CHILDREN) ru.ru_maxrss = t.mm().address_space().MaxRssKb();
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
  const int64_t up_ns = now.tv_sec * 1000000000LL + now.tv_nsec - t.kernel().boot_time_ns();
  si.uptime = (up_ns + 999999999) / 1000000000;
  si.loads[0] = si.loads[1] = si.loads[2] = 0;
  {
    absl::MutexLock l(&t.kernel().mu());
    si.procs = static_cast<uint16_t>(t.kernel().Tasks().size());
  }
  SV_TRY(t.CopyOutObj(a.Addr(0), si));
  return 0;
}

SyscallReturn SysUname(Task& t, const SyscallArgs& a) {
  struct utsname u {};
  std::strncpy(u.sysname, "Linux", sizeof(u.sysname) - 1);
  std::strncpy(u.nodename, t.uts().hostname().c_str(), sizeof(u.nodename) - 1);
  std::strncpy(u.release, Kernel::kRelease, sizeof(u.release) - 1);
  std::strncpy(u.version, Kernel::kVersion, sizeof(u.version) - 1);
  std::strncpy(u.machine, "x86_64", sizeof(u.machine) - 1);
  std::strncpy(u.domainname, t.uts().domainname().c_str(), sizeof(u.domainname) - 1);
  SV_TRY(t.CopyOutObj(a.Addr(0), u));
  return 0;
}

namespace {

// sethostname(2)/setdomainname(2): CAP_SYS_ADMIN (of the sandbox's user
// namespace), in the caller's UTS namespace, at most __NEW_UTS_LEN (64) bytes, not NUL-terminated.
Result<std::string> CopyInUtsName(Task& t, const SyscallArgs& a) {
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  size_t len = a.Size(1);
  if (len > 64) return Errno(EINVAL);
  std::string name(len, '\0');
  SV_TRY(t.CopyIn(a.Addr(0), name.data(), len));
  return name;
}

}  // namespace

SyscallReturn SysSethostname(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string name, CopyInUtsName(t, a));
  t.uts().set_hostname(std::move(name));
  return 0;
}

SyscallReturn SysSetdomainname(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string name, CopyInUtsName(t, a));
  t.uts().set_domainname(std::move(name));
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

SyscallReturn SysGetrandom(Task& t, const SyscallArgs& a) {
  unsigned flags = a.Uint(2);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return Errno(EINVAL);
  size_t len = std::min<size_t>(a.Size(1), 32 * 1024 * 1024);
  std::vector<char> buf(std::min<size_t>(len, 1 << 20));
  size_t done = 0;
  while (done < len) {
    size_t chunk = std::min(buf.size(), len - done);
    ssize_t n = getrandom(buf.data(), chunk, 0);
    if (n <= 0) return done > 0 ? Result<uint64_t>(done) : Result<uint64_t>(Errno(EIO));
    SV_TRY(t.CopyOut(a.Addr(0) + done, buf.data(), static_cast<size_t>(n)));
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace seedvisor::sentry
