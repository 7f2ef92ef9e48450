// Processes and threads: clone, exec, exit, wait, and process ids.
#include <asm/prctl.h>
#include <limits.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/wait.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

SyscallReturn SysFork(Task& t, const SyscallArgs&) {
  Task::CloneArgs c;
  c.flags = SIGCHLD;
  SV_ASSIGN_OR_RETURN(int tid, t.Clone(c));
  return static_cast<uint64_t>(tid);
}

SyscallReturn SysVfork(Task& t, const SyscallArgs&) {
  Task::CloneArgs c;
  c.flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  SV_ASSIGN_OR_RETURN(int tid, t.Clone(c));
  return static_cast<uint64_t>(tid);
}

SyscallReturn SysExecve(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string path, t.CopyInString(a.Addr(0)));
  SV_ASSIGN_OR_RETURN(std::vector<std::string> argv, t.CopyInStringArray(a.Addr(1)));
  SV_ASSIGN_OR_RETURN(std::vector<std::string> envp, t.CopyInStringArray(a.Addr(2)));
  if (path.empty()) return Errno(ENOENT);
  SV_TRY(t.Execve(path, std::move(argv), std::move(envp)));
  return 0;
}

SyscallReturn SysExecveat(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string path, t.CopyInString(a.Addr(1)));
  SV_ASSIGN_OR_RETURN(std::vector<std::string> argv, t.CopyInStringArray(a.Addr(2)));
  SV_ASSIGN_OR_RETURN(std::vector<std::string> envp, t.CopyInStringArray(a.Addr(3)));
  int dirfd = a.Int(0);
  int flags = a.Int(4);
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return Errno(EINVAL);
  if (path.empty() && !(flags & AT_EMPTY_PATH)) return Errno(ENOENT);
  // do_open_execat()'s walk and its errors first: a dirfd that is no open
  // fd (EBADF) or no directory under a relative path (ENOTDIR), a final
  // symlink not to be followed (may_open(): ELOOP).
  SV_ASSIGN_OR_RETURN(DentryRef d, t.kernel().vfs().ResolveAt(t, dirfd, path, flags));
  if ((flags & AT_SYMLINK_NOFOLLOW) && d->inode()->Type() == S_IFLNK) return Errno(ELOOP);
  // Resolve relative to dirfd through /proc/self/fd, which the VFS resolves
  // inside the sandbox (Linux's bprm->filename is /dev/fd/N[/path]).
  if (path.empty() && dirfd == AT_FDCWD) {
    path = ".";  // the working directory itself: no regular file (EACCES)
  } else if (path.empty()) {
    path = "/proc/self/fd/" + std::to_string(dirfd);
  } else if (path[0] != '/' && dirfd != AT_FDCWD) {
    path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + path;
  }
  SV_TRY(t.Execve(path, std::move(argv), std::move(envp)));
  return 0;
}

SyscallReturn SysExit(Task& t, const SyscallArgs& a) {
  t.ExitThread(a.Int(0));
  return 0;
}

SyscallReturn SysExitGroup(Task& t, const SyscallArgs& a) {
  t.ExitGroup(a.Int(0));
  return 0;
}

namespace {

// An id the caller gave, in its pid namespace, as a global id; -1 for one
// its namespace does not have (it then matches nothing: ECHILD, ESRCH).
int GlobalId(Task& t, int local) {
  if (t.pid_ns() == nullptr || local <= 0) return local;
  absl::MutexLock l(&t.kernel().mu());
  const int global = Kernel::IdFrom(t.pid_ns(), local);
  return global != 0 ? global : -1;
}

WaitRequest FromWait4(Task& t, int pid, int options) {
  WaitRequest r;
  if (pid == -1) {
    r.idtype = P_ALL;
  } else if (pid > 0) {
    r.idtype = P_PID;
    r.id = GlobalId(t, pid);
  } else {
    r.idtype = P_PGID;
    r.id = pid == 0 ? 0 : GlobalId(t, -pid);  // 0 means the caller's group
  }
  r.options = options | WEXITED;
  return r;
}

}  // namespace

SyscallReturn SysWait4(Task& t, const SyscallArgs& a) {
  int options = a.Int(2);
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE)) {
    return Errno(EINVAL);
  }
  // kernel_wait4(): the group -INT_MIN does not exist.
  if (a.Int(0) == INT_MIN) return Errno(ESRCH);
  SV_ASSIGN_OR_RETURN(std::optional<WaitResult> r,
                      WaitForChild(t, FromWait4(t, a.Int(0), options & (WNOHANG | WUNTRACED | WCONTINUED |
                                                                     __WNOTHREAD | __WALL | __WCLONE))));
  if (!r) return 0;
  if (!a.Addr(1).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(1), static_cast<int32_t>(r->status)));
  if (!a.Addr(3).IsNull()) {
    struct rusage ru {};
    SV_TRY(t.CopyOutObj(a.Addr(3), ru));
  }
  return static_cast<uint64_t>(r->pid);
}

SyscallReturn SysWaitid(Task& t, const SyscallArgs& a) {
  WaitRequest r;
  r.idtype = a.Int(0);
  r.id = a.Int(1);
  r.options = a.Int(3);
  bool nonblocking_pidfd = false;
  if (r.idtype == P_PIDFD) {
    // waitid(2): P_PIDFD waits for the pidfd's process (a child, or
    // ECHILD); a non-blocking pidfd makes the wait fail with EAGAIN instead
    // of blocking.
    SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(r.id));
    absl::MutexLock l(&t.kernel().mu());
    auto tg = PidfdGroup(*f);
    if (!tg.ok()) return tg.error() == Errno(ESRCH) ? Errno(ECHILD) : tg.error();
    r.idtype = P_PID;
    r.id = (*tg)->tgid();
    nonblocking_pidfd = f->nonblocking();
  } else if (r.idtype != P_ALL && r.idtype != P_PID && r.idtype != P_PGID) {
    return Errno(EINVAL);
  } else if (r.idtype != P_ALL) {
    r.id = r.idtype == P_PGID && r.id == 0 ? 0 : GlobalId(t, r.id);
  }
  if (r.options & ~(WNOHANG | WEXITED | WSTOPPED | WCONTINUED | WNOWAIT | __WALL | __WCLONE |
                    __WNOTHREAD)) {
    return Errno(EINVAL);
  }
  if (!(r.options & (WEXITED | WSTOPPED | WCONTINUED))) return Errno(EINVAL);
  if (nonblocking_pidfd) r.options |= WNOHANG;
  SV_ASSIGN_OR_RETURN(std::optional<WaitResult> res, WaitForChild(t, r));
  if (!res && nonblocking_pidfd && !(a.Int(3) & WNOHANG)) return Errno(EAGAIN);
  siginfo_t info{};
  if (res) {
    info.si_signo = SIGCHLD;
    info.si_code = res->code;
    info.si_pid = res->pid;
    info.si_uid = 0;
    info.si_status = res->child_status;
  }
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), info));
  return 0;
}

SyscallReturn SysGetpid(Task& t, const SyscallArgs&) { return static_cast<uint64_t>(t.vtgid()); }
SyscallReturn SysGettid(Task& t, const SyscallArgs&) { return static_cast<uint64_t>(t.vtid()); }

SyscallReturn SysGetppid(Task& t, const SyscallArgs&) {
  absl::MutexLock l(&t.kernel().mu());
  auto p = t.tg().parent.lock();
  // 0 for a parent outside the caller's pid namespace (a namespace's init).
  return static_cast<uint64_t>(p ? Kernel::IdIn(t.pid_ns(), p->tgid()) : 0);
}

namespace {

// The thread group `pid` (in the caller's pid namespace) names (0 = the
// caller's), under Kernel::mu().
std::shared_ptr<ThreadGroup> GroupOf(Task& t, int pid) {
  if (pid == 0) return t.shared_tg();
  const int global = Kernel::IdFrom(t.pid_ns(), pid);
  return global > 0 ? t.kernel().ThreadGroupByTgid(global) : nullptr;
}

}  // namespace

SyscallReturn SysGetpgid(Task& t, const SyscallArgs& a) {
  absl::MutexLock l(&t.kernel().mu());
  auto tg = GroupOf(t, a.Int(0));
  if (!tg) return Errno(ESRCH);
  return static_cast<uint64_t>(Kernel::IdIn(t.pid_ns(), tg->pgid));
}

SyscallReturn SysGetpgrp(Task& t, const SyscallArgs&) {
  absl::MutexLock l(&t.kernel().mu());
  return static_cast<uint64_t>(Kernel::IdIn(t.pid_ns(), t.tg().pgid));
}

SyscallReturn SysSetpgid(Task& t, const SyscallArgs& a) {
  int pid = a.Int(0), pgid = a.Int(1);
  if (pgid < 0) return Errno(EINVAL);
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  // ksys_setpgid(): `pid` names a task (a thread too: EINVAL).
  std::shared_ptr<ThreadGroup> tg = t.shared_tg();
  if (pid != 0) {
    std::shared_ptr<Task> task = k.TaskByVtid(t.pid_ns(), pid);
    tg = task ? task->shared_tg() : k.ThreadGroupByVtgid(t.pid_ns(), pid);
    if (!tg) return Errno(ESRCH);
    if (tg->tgid() != Kernel::IdFrom(t.pid_ns(), pid)) return Errno(EINVAL);
  }
  // The caller or one of its children, in the caller's session, that has
  // not exec'd.
  if (tg->parent.lock().get() == &t.tg()) {
    if (tg->sid != t.tg().sid) return Errno(EPERM);
    if (tg->did_exec) return Errno(EACCES);
  } else if (tg.get() != &t.tg()) {
    return Errno(ESRCH);
  }
  if (tg->sid == tg->tgid()) return Errno(EPERM);  // a session leader
  if (pgid == 0) {
    pgid = tg->tgid();
  } else if ((pgid = Kernel::IdFrom(t.pid_ns(), pgid)) == 0) {
    return Errno(EPERM);
  }
  // Joining another group: it must exist (a zombie member will do) in the
  // caller's session.
  if (pgid != tg->tgid() && k.ProcessGroupSessionLocked(pgid) != t.tg().sid) {
    return Errno(EPERM);
  }
  k.SetGroupIdsLocked(*tg, pgid, tg->sid);
  return 0;
}

SyscallReturn SysGetsid(Task& t, const SyscallArgs& a) {
  absl::MutexLock l(&t.kernel().mu());
  auto tg = GroupOf(t, a.Int(0));
  if (!tg) return Errno(ESRCH);
  return static_cast<uint64_t>(Kernel::IdIn(t.pid_ns(), tg->sid));
}

SyscallReturn SysSetsid(Task& t, const SyscallArgs&) {
  absl::MutexLock l(&t.kernel().mu());
  ThreadGroup& tg = t.tg();
  // ksys_setsid(): EPERM if a process group of our pid exists, a zombie's
  // too (a session leader's own group is one).
  if (t.kernel().ProcessGroupSessionLocked(tg.tgid()) != 0) return Errno(EPERM);
  t.kernel().SetGroupIdsLocked(tg, tg.tgid(), tg.tgid());
  return static_cast<uint64_t>(tg.vtgid());
}

SyscallReturn SysSetTidAddress(Task& t, const SyscallArgs& a) {
  t.clear_child_tid_ = a.Addr(0);
  return static_cast<uint64_t>(t.vtid());
}

SyscallReturn SysSetRobustList(Task& t, const SyscallArgs& a) {
  if (a.Ulong(1) != 24) return Errno(EINVAL);  // sizeof(struct robust_list_head)
  t.robust_list_ = a.Addr(0);
  return 0;
}

SyscallReturn SysRseq(Task& t, const SyscallArgs& a) {
  return t.Rseq(a.Addr(0), static_cast<uint32_t>(a.raw[1]), a.Int(2),
                static_cast<uint32_t>(a.raw[3]));
}

SyscallReturn SysGetRobustList(Task& t, const SyscallArgs& a) {
  std::shared_ptr<Task> target;
  if (a.Int(0) == 0) {
    target = t.shared_from_this();
  } else {
    absl::MutexLock l(&t.kernel().mu());
    target = t.kernel().TaskByVtid(t.pid_ns(), a.Int(0));
  }
  if (!target) return Errno(ESRCH);
  {
    // PTRACE_MODE_READ_REALCREDS on the target: EPERM.
    absl::MutexLock l(&t.kernel().mu());
    if (!MayPtraceAccess(t, target->tg(), target->creds(), PtraceCreds::kReal)) {
      return Errno(EPERM);
    }
  }
  SV_TRY(t.CopyOutObj(a.Addr(1), target->robust_list_.value()));
  SV_TRY(t.CopyOutObj(a.Addr(2), uint64_t{24}));
  return 0;
}

SyscallReturn SysArchPrctl(Task& t, const SyscallArgs& a) {
  switch (a.Int(0)) {
    case ARCH_SET_FS:
      if (a.Ulong(1) >= (uint64_t{1} << 47)) return Errno(EPERM);
      t.regs().fs_base = a.Ulong(1);
      return 0;
    case ARCH_GET_FS:
      SV_TRY(t.CopyOutObj(a.Addr(1), static_cast<uint64_t>(t.regs().fs_base)));
      return 0;
    case ARCH_SET_GS:
      if (a.Ulong(1) >= (uint64_t{1} << 47)) return Errno(EPERM);
      t.regs().gs_base = a.Ulong(1);
      return 0;
    case ARCH_GET_GS:
      SV_TRY(t.CopyOutObj(a.Addr(1), static_cast<uint64_t>(t.regs().gs_base)));
      return 0;
    case ARCH_GET_CPUID:
      return 1;
    case ARCH_SET_CPUID:
      return Errno(ENODEV);  // no CPUID faulting here
    default:
      return Errno(EINVAL);
  }
}

// personality(2) (kernel/exec_domain.c): 0xffffffff only asks; any other
// value is taken as it is. The old persona is the result, as an unsigned
// int.
SyscallReturn SysPersonality(Task& t, const SyscallArgs& a) {
  const uint32_t old = t.personality();
  if (a.Uint(0) != 0xffffffffu) t.set_personality(a.Uint(0));
  return old;
}

SyscallReturn SysPrctl(Task& t, const SyscallArgs& a) {
  switch (a.Int(0)) {
    case PR_SET_TIMERSLACK:
      // 0 restores the value inherited at clone. (Linux ignores the call
      // for realtime tasks; there are none in the sandbox.)
      t.set_timer_slack_ns(a.Ulong(1));
      return 0;
    case PR_GET_TIMERSLACK:
      return t.timer_slack_ns();
    case PR_GET_TID_ADDRESS: {
      // The thread's clear_child_tid, as set_tid_address(2) or clone set it.
      const uint64_t addr = t.clear_child_tid_.value();  // the thread's own
      SV_TRY(t.CopyOutObj(a.Addr(1), addr));
      return 0;
    }
    case PR_SET_THP_DISABLE: {
      if (a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
      absl::MutexLock l(&t.kernel().mu());
      t.tg().thp_disable = a.Ulong(1) != 0;
      return 0;
    }
    case PR_GET_THP_DISABLE: {
      if (a.Ulong(1) || a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
      absl::MutexLock l(&t.kernel().mu());
      return t.tg().thp_disable ? 1 : 0;
    }
    case PR_GET_TSC: {
      // The time stamp counter is readable (no CPUID/TSC faulting here).
      const int32_t v = PR_TSC_ENABLE;
      SV_TRY(t.CopyOutObj(a.Addr(1), v));
      return 0;
    }
    case PR_MCE_KILL_GET:
      if (a.Ulong(1) || a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
      return PR_MCE_KILL_DEFAULT;  // no machine-check policy of its own
    case PR_SET_NAME: {
      char name[16] = {};
      Result<size_t> n = t.mm().CopyInPartial(a.Addr(1), name, 15);
      if (!n.ok()) return n.error();
      t.set_comm(std::string(name, strnlen(name, 15)));
      return 0;
    }
    case PR_GET_NAME: {
      char name[16] = {};
      std::string c = t.comm();
      c.copy(name, 15);
      SV_TRY(t.CopyOut(a.Addr(1), name, sizeof(name)));
      return 0;
    }
    case PR_SET_PDEATHSIG: {
      if (a.Int(1) < 0 || a.Int(1) > kNumSignals) return Errno(EINVAL);
      // Kept per process (Linux keeps it per thread and fires it when the
      // parent thread exits; callers set it right after fork, where the two
      // agree). Sent from Task::ExitTask when the parent process ends.
      absl::MutexLock l(&t.kernel().mu());
      t.tg().pdeath_signal = a.Int(1);
      return 0;
    }
    case PR_GET_PDEATHSIG: {
      int32_t sig;
      {
        absl::MutexLock l(&t.kernel().mu());
        sig = t.tg().pdeath_signal;
      }
      SV_TRY(t.CopyOutObj(a.Addr(1), sig));
      return 0;
    }
    case PR_SET_NO_NEW_PRIVS:
      if (a.Ulong(1) != 1 || a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
      t.mutable_creds().no_new_privs = true;
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      if (a.Ulong(1) || a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
      return t.creds().no_new_privs ? 1 : 0;
    case PR_SET_DUMPABLE:
      if (a.Ulong(1) > 1) return Errno(EINVAL);  // SUID_DUMP_ROOT is not for prctl
      t.tg().dumpable = a.Ulong(1) == 1;
      return 0;
    case PR_GET_DUMPABLE:
      return t.tg().dumpable ? 1 : 0;
    case PR_SET_KEEPCAPS: {
      if (a.Ulong(1) > 1) return Errno(EINVAL);
      Credentials& c = t.mutable_creds();
      if (c.securebits & (kSecbitKeepCaps << 1)) return Errno(EPERM);  // SECURE_KEEP_CAPS_LOCKED
      c.securebits = a.Ulong(1) ? c.securebits | kSecbitKeepCaps : c.securebits & ~kSecbitKeepCaps;
      return 0;
    }
    case PR_GET_KEEPCAPS:
      return (t.creds().securebits & kSecbitKeepCaps) ? 1 : 0;
    case PR_GET_SECUREBITS:
      return t.creds().securebits;
    case PR_SET_SECUREBITS: {
      // cap_task_prctl(): with CAP_SETPCAP, known bits only, no change to
      // a locked bit (each bit's lock is the bit above it), no unlocking.
      constexpr uint64_t kBits =
          kSecbitNoroot | kSecbitNoSetuidFixup | kSecbitKeepCaps | kSecbitNoCapAmbientRaise;
      constexpr uint64_t kLocks = kBits << 1;
      Credentials& c = t.mutable_creds();
      const uint64_t old = c.securebits, want = a.Ulong(1);
      if ((((old & kLocks) >> 1) & (old ^ want)) || (old & kLocks & ~want) ||
          (want & ~(kBits | kLocks)) || !c.HasCap(CAP_SETPCAP)) {
        return Errno(EPERM);
      }
      c.securebits = static_cast<uint32_t>(want);
      return 0;
    }
    case PR_CAPBSET_DROP: {
      if (a.Ulong(1) > static_cast<uint64_t>(kLastCap)) return Errno(EINVAL);
      Credentials& c = t.mutable_creds();
      if (!c.HasCap(CAP_SETPCAP)) return Errno(EPERM);
      c.cap_bounding &= ~CapBit(a.Int(1));
      return 0;
    }
    case PR_CAP_AMBIENT: {
      // prctl(2) PR_CAP_AMBIENT; cap_task_prctl() in security/commoncap.c.
      Credentials& c = t.mutable_creds();
      if (a.Ulong(1) == PR_CAP_AMBIENT_CLEAR_ALL) {
        if (a.Ulong(2) || a.Ulong(3) || a.Ulong(4)) return Errno(EINVAL);
        c.cap_ambient = 0;
        return 0;
      }
      if (a.Ulong(3) || a.Ulong(4) || a.Ulong(2) > static_cast<uint64_t>(kLastCap)) {
        return Errno(EINVAL);
      }
      uint64_t bit = CapBit(a.Int(2));
      switch (a.Ulong(1)) {
        case PR_CAP_AMBIENT_IS_SET: return (c.cap_ambient & bit) ? 1 : 0;
        case PR_CAP_AMBIENT_LOWER: c.cap_ambient &= ~bit; return 0;
        case PR_CAP_AMBIENT_RAISE:
          if (!(c.cap_permitted & bit) || !(c.cap_inheritable & bit) ||
              (c.securebits & kSecbitNoCapAmbientRaise)) {
            return Errno(EPERM);
          }
          c.cap_ambient |= bit;
          return 0;
        default: return Errno(EINVAL);
      }
    }
    case PR_SET_CHILD_SUBREAPER: {
      absl::MutexLock l(&t.kernel().mu());
      t.tg().child_subreaper = a.Ulong(1) != 0;
      return 0;
    }
    case PR_GET_CHILD_SUBREAPER: {
      int32_t v;
      {
        absl::MutexLock l(&t.kernel().mu());
        v = t.tg().child_subreaper ? 1 : 0;
      }
      SV_TRY(t.CopyOutObj(a.Addr(1), v));
      return 0;
    }
    case PR_CAPBSET_READ:
      if (a.Ulong(1) > static_cast<uint64_t>(kLastCap)) return Errno(EINVAL);
      return (t.creds().cap_bounding & CapBit(a.Int(1))) ? 1 : 0;
    case PR_GET_SECCOMP:
      return t.seccomp().mode;
    case PR_SET_SECCOMP:
      return PrctlSetSeccomp(t, a);
    default:
      return Errno(EINVAL);
  }
}

}  // namespace seedvisor::sentry
