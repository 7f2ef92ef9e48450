// Signals: actions, masks, sending, waiting.
#include <signal.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_signal.h"

namespace seedvisor::sentry {
namespace {

constexpr int kSsAutodisarm = 1 << 31;  // SS_AUTODISARM (linux/signal.h)
constexpr size_t kMinSigStkSz = 2048;   // MINSIGSTKSZ, the kernel's constant

bool ValidSignal(int sig) { return sig >= 1 && sig <= kNumSignals; }

siginfo_t UserInfo(Task& t, int sig, int code) {
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = code;
  info.si_pid = t.vtgid();  // task_tgid_vnr(): as the sender sees itself
  info.si_uid = t.creds().ruid;
  return info;
}

// send_signal_locked(): a sender outside the target's pid namespace (in an
// ancestor of it) shows as si_pid 0 there, and its signal is "forced": it
// may kill or stop the namespace's init (SignalSender::kKernel's rule).
SignalSender SenderFor(Task& t, const ThreadGroup& target, siginfo_t& info)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  if (Kernel::IdIn(target.pid_ns.get(), t.tgid()) != 0) return SignalSender::kSandboxTask;
  info.si_pid = 0;
  return SignalSender::kKernel;
}

// An id the caller gave in its pid namespace, as a global id (0: none).
int GlobalId(Task& t, int local) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  return Kernel::IdFrom(t.pid_ns(), local);
}

Status SendToGroup(Task& t, ThreadGroup& tg, siginfo_t info)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  const SignalSender from = SenderFor(t, tg, info);
  return t.kernel().SendGroupSignal(tg, info, nullptr, from);
}

Status SendToTask(Task& t, Task& target, siginfo_t info)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  const SignalSender from = SenderFor(t, target.tg(), info);
  return t.kernel().SendTaskSignal(target, info, nullptr, from);
}

// check_kill_permission() in kernel/signal.c: the sender's real or
// effective uid must match the target's real or saved uid, or the sender has
// CAP_KILL; SIGCONT within one session is always allowed.
bool MaySignal(Task& t, Task& target, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  if (&target.tg() == &t.tg()) return true;
  const Credentials& s = t.creds();
  const Credentials& d = target.creds();
  if (s.euid == d.suid || s.euid == d.ruid || s.ruid == d.suid || s.ruid == d.ruid) return true;
  if (s.HasCap(CAP_KILL)) return true;
  return sig == SIGCONT && target.tg().sid == t.tg().sid;
}

}  // namespace

bool MaySignalGroup(Task& t, ThreadGroup& tg, int sig) {
  Task* target = tg.leader != nullptr ? tg.leader : (tg.tasks.empty() ? nullptr : tg.tasks[0]);
  return target == nullptr || MaySignal(t, *target, sig);
}

SyscallReturn SysRtSigaction(Task& t, const SyscallArgs& a) {
  int sig = a.Int(0);
  if (!ValidSignal(sig) || a.Ulong(3) != sizeof(SigSet)) return Errno(EINVAL);
  KernelSigaction act;
  if (!a.Addr(1).IsNull()) {
    SV_TRY(t.CopyInObj(a.Addr(1), &act));
    if (sig == SIGKILL || sig == SIGSTOP) return Errno(EINVAL);
  }
  KernelSigaction old;
  {
    absl::MutexLock l(&t.kernel().mu());
    KernelSigaction& slot = t.tg().handlers->actions[sig];
    old = slot;
    if (!a.Addr(1).IsNull()) {
      act.mask &= ~kUnblockable;
      slot = act;
      // Setting SIG_IGN (or SIG_DFL for a default-ignored signal) discards
      // what is pending (sigaction(2), "POSIX.1 ... pending signal").
      bool ignore = act.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
                    (act.handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
                     DefaultActionOf(sig) == DefaultAction::kIgnore);
      if (ignore) {
        t.tg().shared_pending.Discard(sig);
        for (Task* task : t.tg().tasks) task->pending().Discard(sig);
      }
    }
  }
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), old));
  return 0;
}

SyscallReturn SysRtSigprocmask(Task& t, const SyscallArgs& a) {
  if (a.Ulong(3) != sizeof(SigSet)) return Errno(EINVAL);
  int how = a.Int(0);
  SigSet set = 0;
  if (!a.Addr(1).IsNull()) {
    if (how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK) return Errno(EINVAL);
    SV_TRY(t.CopyInObj(a.Addr(1), &set));
  }
  SigSet old;
  {
    absl::MutexLock l(&t.kernel().mu());
    old = t.signal_mask();
    if (!a.Addr(1).IsNull()) {
      switch (how) {
        case SIG_BLOCK: t.set_signal_mask(old | set); break;
        case SIG_UNBLOCK: t.set_signal_mask(old & ~set); break;
        default: t.set_signal_mask(set); break;
      }
    }
  }
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), old));
  return 0;
}

SyscallReturn SysRtSigreturn(Task& t, const SyscallArgs&) {
  Status s = t.SigReturn();
  if (!s.ok()) {
    // A corrupt frame: the kernel sends SIGSEGV (signal_fault()).
    siginfo_t info{};
    info.si_signo = SIGSEGV;
    info.si_code = SI_KERNEL;
    t.ForceSignal(info);
    t.MarkRegistersReplaced();
  }
  return 0;
}

SyscallReturn SysRtSigpending(Task& t, const SyscallArgs& a) {
  if (a.Ulong(1) > sizeof(SigSet)) return Errno(EINVAL);
  SigSet pending;
  {
    absl::MutexLock l(&t.kernel().mu());
    pending = (t.pending().Set() | t.tg().shared_pending.Set()) & t.signal_mask();
  }
  SV_TRY(t.CopyOut(a.Addr(0), &pending, a.Size(1)));
  return 0;
}

SyscallReturn SysRtSigsuspend(Task& t, const SyscallArgs& a) {
  if (a.Ulong(1) != sizeof(SigSet)) return Errno(EINVAL);
  SigSet mask;
  SV_TRY(t.CopyInObj(a.Addr(0), &mask));
  {
    absl::MutexLock l(&t.kernel().mu());
    t.saved_mask_ = t.signal_mask();
    t.restore_saved_mask_ = true;
    t.set_signal_mask(mask);
  }
  for (;;) {
    Status s = t.Block();
    if (!s.ok()) return Errno(kERESTARTNOHAND);
  }
}

SyscallReturn SysPause(Task& t, const SyscallArgs&) {
  for (;;) {
    Status s = t.Block();
    if (!s.ok()) return Errno(kERESTARTNOHAND);
  }
}

SyscallReturn SysRtSigtimedwait(Task& t, const SyscallArgs& a) {
  if (a.Ulong(3) != sizeof(SigSet)) return Errno(EINVAL);
  SigSet set;
  SV_TRY(t.CopyInObj(a.Addr(0), &set));
  set &= ~kUnblockable;
  timespec deadline{}, *dl = nullptr;
  if (!a.Addr(2).IsNull()) {
    timespec rel;
    SV_TRY(t.CopyInObj(a.Addr(2), &rel));
    if (rel.tv_nsec < 0 || rel.tv_nsec >= 1000000000 || rel.tv_sec < 0) return Errno(EINVAL);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += rel.tv_sec;
    deadline.tv_nsec += rel.tv_nsec;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    dl = &deadline;
  }
  SigSet old;
  {
    // Waiting signals are unblocked only for the dequeue below; the mask
    // itself stays, so they are not delivered to handlers meanwhile.
    absl::MutexLock l(&t.kernel().mu());
    old = t.signal_mask();
  }
  for (;;) {
    siginfo_t info{};
    int sig;
    {
      absl::MutexLock l(&t.kernel().mu());
      SigSet blocked = ~set;
      sig = t.pending().Dequeue(blocked, &info);
      if (sig == 0) sig = t.tg().shared_pending.Dequeue(blocked, &info);
    }
    if (sig != 0) {
      if (!a.Addr(1).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(1), info));
      return static_cast<uint64_t>(sig);
    }
    // Block until something arrives; waited-for signals are blocked, so
    // SignalPending() only reports the others.
    {
      absl::MutexLock l(&t.kernel().mu());
      t.set_signal_mask(old | set);
    }
    Status s = t.Block(dl);
    {
      absl::MutexLock l(&t.kernel().mu());
      t.set_signal_mask(old);
    }
    if (!s.ok()) {
      if (s.error().value() == ETIMEDOUT) return Errno(EAGAIN);
      // Maybe one of ours arrived; otherwise another signal interrupts us.
      absl::MutexLock l(&t.kernel().mu());
      if (((t.pending().Set() | t.tg().shared_pending.Set()) & set) != 0) continue;
      if (t.kernel().park_requested()) return Errno(kERESTARTNOINTR);  // a park, not a signal
      return Errno(EINTR);
    }
  }
}

SyscallReturn SysKill(Task& t, const SyscallArgs& a) {
  int pid = a.Int(0);
  int sig = a.Int(1);
  const bool valid = sig >= 0 && sig <= kNumSignals;
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  if (pid > 0) {
    // Any task's id names its thread group (kill_pid_info(): the thread
    // it finds, group_send_sig_info() to its process).
    std::shared_ptr<ThreadGroup> tg;
    const int global = GlobalId(t, pid);
    if (auto task = k.TaskByTid(global); task && !task->exited()) tg = task->shared_tg();
    if (!tg && global > 0) tg = k.ThreadGroupByTgid(global);
    if (!tg || tg->state == ThreadGroup::State::kReaped) return Errno(ESRCH);
    // The signal is checked once the target is found
    // (check_kill_permission()): ESRCH comes before EINVAL.
    if (!valid) return Errno(EINVAL);
    // A zombie still "exists" for kill(pid, 0).
    if (tg->state == ThreadGroup::State::kZombie) return 0;
    if (!MaySignalGroup(t, *tg, sig)) return Errno(EPERM);
    SV_TRY(SendToGroup(t, *tg, UserInfo(t, sig, SI_USER)));
    return 0;
  }
  if (!valid) return Errno(EINVAL);
  siginfo_t info = UserInfo(t, sig, SI_USER);
  // A process group (0: ours), or everyone but init and us (-1): every
  // process the caller's pid namespace shows, but its init.
  int pgid = pid == 0 ? t.tg().pgid : GlobalId(t, -pid);
  if (pgid == 0) pgid = -1;
  bool found = false;
  std::vector<ThreadGroup*> targets;
  for (auto& task : k.Tasks()) {
    ThreadGroup& tg = task->tg();
    if (std::find(targets.begin(), targets.end(), &tg) != targets.end()) continue;
    bool match = pid == -1 ? (Kernel::IdIn(t.pid_ns(), tg.tgid()) > 1 && &tg != &t.tg())
                           : tg.pgid == pgid;
    if (match) targets.push_back(&tg);
  }
  // kill(2): success if at least one process could be signalled, else EPERM
  // (__kill_pgrp_info(), kill_something_info()).
  bool sent = false;
  for (ThreadGroup* tg : targets) {
    found = true;
    if (!MaySignalGroup(t, *tg, sig)) continue;
    sent = true;
    SendToGroup(t, *tg, info).ok();
  }
  if (!found) return Errno(ESRCH);
  return sent ? Result<uint64_t>(0) : Result<uint64_t>(Errno(EPERM));
}

SyscallReturn SysTgkill(Task& t, const SyscallArgs& a) {
  int tgid = a.Int(0), tid = a.Int(1), sig = a.Int(2);
  if (tgid <= 0 || tid <= 0) return Errno(EINVAL);
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  auto target = k.TaskByTid(GlobalId(t, tid));
  if (!target || target->tgid() != GlobalId(t, tgid) || target->exited()) return Errno(ESRCH);
  // do_send_specific(): the signal is checked once the thread is found.
  if (sig < 0 || sig > kNumSignals) return Errno(EINVAL);
  if (!MaySignal(t, *target, sig)) return Errno(EPERM);
  SV_TRY(SendToTask(t, *target, UserInfo(t, sig, SI_TKILL)));
  return 0;
}

SyscallReturn SysTkill(Task& t, const SyscallArgs& a) {
  int tid = a.Int(0), sig = a.Int(1);
  if (tid <= 0) return Errno(EINVAL);
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  auto target = k.TaskByTid(GlobalId(t, tid));
  if (!target || target->exited()) return Errno(ESRCH);
  if (sig < 0 || sig > kNumSignals) return Errno(EINVAL);
  if (!MaySignal(t, *target, sig)) return Errno(EPERM);
  SV_TRY(SendToTask(t, *target, UserInfo(t, sig, SI_TKILL)));
  return 0;
}

SyscallReturn SysRtSigqueueinfo(Task& t, const SyscallArgs& a) {
  siginfo_t info;
  SV_TRY(t.CopyInObj(a.Addr(2), &info));
  int sig = a.Int(1);
  if (!ValidSignal(sig)) return Errno(EINVAL);
  // Only the kernel may claim SI_USER or positive codes, unless the caller
  // signals its own thread id (do_rt_sigqueueinfo(): task_pid_vnr()).
  if ((info.si_code >= 0 || info.si_code == SI_TKILL) && a.Int(0) != t.vtid()) return Errno(EPERM);
  info.si_signo = sig;
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  // Any task's id names its process, as for kill(2) (kill_proc_info()).
  const int global = GlobalId(t, a.Int(0));
  std::shared_ptr<ThreadGroup> tg;
  if (auto task = global > 0 ? k.TaskByTid(global) : nullptr; task && !task->exited()) {
    tg = task->shared_tg();
  }
  if (!tg && global > 0) tg = k.ThreadGroupByTgid(global);
  if (!tg || tg->state == ThreadGroup::State::kReaped) return Errno(ESRCH);
  if (!MaySignalGroup(t, *tg, sig)) return Errno(EPERM);
  SV_TRY(SendToGroup(t, *tg, info));
  return 0;
}

SyscallReturn SysRtTgsigqueueinfo(Task& t, const SyscallArgs& a) {
  siginfo_t info;
  SV_TRY(t.CopyInObj(a.Addr(3), &info));
  int sig = a.Int(2);
  if (!ValidSignal(sig)) return Errno(EINVAL);
  if ((info.si_code >= 0 || info.si_code == SI_TKILL) && a.Int(1) != t.vtid()) return Errno(EPERM);
  info.si_signo = sig;
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  auto target = k.TaskByTid(GlobalId(t, a.Int(1)));
  if (!target || target->tgid() != GlobalId(t, a.Int(0))) return Errno(ESRCH);
  if (!MaySignal(t, *target, sig)) return Errno(EPERM);
  SV_TRY(SendToTask(t, *target, info));
  return 0;
}

SyscallReturn SysSigaltstack(Task& t, const SyscallArgs& a) {
  stack_t& cur = t.altstack();
  uint64_t sp = t.regs().rsp;
  uint64_t base = reinterpret_cast<uint64_t>(cur.ss_sp);
  bool on_stack = !(cur.ss_flags & SS_DISABLE) && sp > base && sp <= base + cur.ss_size;
  if (!a.Addr(1).IsNull()) {
    stack_t old = cur;
    if (on_stack) old.ss_flags = SS_ONSTACK;
    SV_TRY(t.CopyOutObj(a.Addr(1), old));
  }
  if (!a.Addr(0).IsNull()) {
    stack_t ns;
    SV_TRY(t.CopyInObj(a.Addr(0), &ns));
    if (on_stack) return Errno(EPERM);
    int mode = ns.ss_flags & ~kSsAutodisarm;
    if (mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK) return Errno(EINVAL);
    if (mode == SS_DISABLE) {
      cur = stack_t{nullptr, SS_DISABLE, 0};
    } else {
      if (ns.ss_size < kMinSigStkSz) return Errno(ENOMEM);
      cur = stack_t{ns.ss_sp, 0, ns.ss_size};
    }
  }
  return 0;
}

}  // namespace seedvisor::sentry
