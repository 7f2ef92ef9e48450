// ptrace(2) between guest tasks: stops, events, wait, attach and detach
// (Linux's kernel/ptrace.c and the ptrace parts of kernel/signal.c and
// kernel/exit.c). The requests that read or change a stopped tracee are in
// sentry/syscalls/sys_ptrace.cc.
#include "sentry/kernel/ptrace.h"

#include <linux/ptrace.h>
#include <sys/wait.h>

#include <algorithm>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/wait.h"
#include "sentry/mm/mm.h"

namespace seedvisor::sentry {
namespace {

// Tells the tracer's process that `tracee` stopped or exited: SIGCHLD
// (do_notify_parent_cldstop(), for_ptracer) and a wakeup for its waiters.
void NotifyTracer(Kernel& k, Task& tracee) {
  Task* tracer = tracee.ptrace().tracer;
  if (tracer == nullptr) return;
  ThreadGroup& ttg = tracer->tg();
  siginfo_t info{};
  info.si_signo = SIGCHLD;
  info.si_pid = tracee.tid();
  const PtraceState& p = tracee.ptrace();
  if (p.zombie) {
    const ChildExit ce = DecodeExitStatus(p.exit_status);
    info.si_code = ce.code;
    info.si_status = ce.status;
    k.SendGroupSignal(ttg, info).ok();
  } else {
    info.si_code = CLD_TRAPPED;
    info.si_status = p.exit_code;
    if (!(ttg.handlers->actions[SIGCHLD].flags & SA_NOCLDSTOP)) k.SendGroupSignal(ttg, info).ok();
  }
  for (Task* t : ttg.tasks) t->Notify();
}

bool Matches(const ThreadGroup& self, Task& e, const WaitRequest& r) {
  switch (r.idtype) {
    case P_PID:
      return e.tid() == r.id;
    case P_PGID:
      return e.tg().pgid == (r.id == 0 ? self.pgid : r.id);
    default:
      return true;
  }
}

}  // namespace

// ---- The tracee's side, on its own thread ----

void Task::PtraceStopLocked(PtraceState::Stop kind, int exit_code, const siginfo_t* info) {
  // The tracer reads and writes the FP state as data while we sleep.
  SaveFpState().ok();
  // And it peeks, pokes and steps our text: the guest's own bytes, not a
  // platform's rewrite of them (systrap's patched syscall sites).
  if (mm_ != nullptr) mm_->address_space().RestoreGuestText();
  if (ptrace_.forced_tf) {
    regs_.eflags &= ~uint64_t{0x100};
    ptrace_.forced_tf = false;
  }
  ptrace_.stop = kind;
  ptrace_.exit_code = exit_code;
  ptrace_.report = true;
  ptrace_.listening = false;
  ptrace_.resume_sig = 0;
  ptrace_.resumed = false;
  ptrace_.has_siginfo = info != nullptr;
  if (info != nullptr) ptrace_.siginfo = *info;
  ptrace_stopped_ = true;
  NotifyTracer(kernel_, *this);
  for (;;) {
    const bool killed = exit_requested_ || (tg_->group_exiting && (!ptrace_.exit_stop ||
                                                                   tg_->exit_status == SIGKILL));
    if (ptrace_.stop == PtraceState::Stop::kNone || ptrace_.tracer == nullptr || killed) break;
    if (ptrace_.listening) {
      // PTRACE_LISTEN: the end of the group-stop, or a new signal, traps
      // again with PTRACE_EVENT_STOP (ptrace_trap_notify()).
      const bool signal = ((pending_.Set() | tg_->shared_pending.Set()) & ~signal_mask_) != 0;
      if (!tg_->stopped || signal || ptrace_.trap_pending) {
        ptrace_.listening = false;
        ptrace_.trap_pending = false;
        ptrace_.report = true;
        ptrace_.exit_code = (tg_->stopped ? tg_->stop_signal : SIGTRAP) | (PTRACE_EVENT_STOP << 8);
        ptrace_.siginfo = siginfo_t{};
        ptrace_.siginfo.si_signo = ptrace_.exit_code & 0x7f;
        ptrace_.siginfo.si_code = ptrace_.exit_code;
        NotifyTracer(kernel_, *this);
      }
    }
    if (kernel_.park_requested()) {
      kernel_.ParkTask(*this);
      continue;
    }
    kernel_.mu().Unlock();
    WaitForWake();
    kernel_.mu().Lock();
  }
  ptrace_.stop = PtraceState::Stop::kNone;
  ptrace_.exit_stop = false;
  ptrace_stopped_ = false;
  if (ptrace_.tracer != nullptr &&
      (ptrace_.resume == PtraceState::Resume::kSingleStep ||
       ptrace_.resume == PtraceState::Resume::kSysemuSingleStep) &&
      !(regs_.eflags & 0x100)) {
    regs_.eflags |= 0x100;  // the CPU traps after one instruction (TF)
    ptrace_.forced_tf = true;
  }
}

void Task::PtraceEvent(int event, uint64_t msg) {
  absl::MutexLock l(&kernel_.mu());
  if (ptrace_.tracer == nullptr) return;
  if (event == PTRACE_EVENT_EXEC && !(ptrace_.options & PTRACE_O_TRACEEXEC)) {
    // The legacy exec SIGTRAP (ptrace_event()), for a tracer that did not
    // ask for the event and did not seize.
    if (!ptrace_.seized) {
      siginfo_t info{};
      info.si_signo = SIGTRAP;
      info.si_code = SI_USER;
      kernel_.SendTaskSignal(*this, info).ok();
    }
    return;
  }
  if (!(ptrace_.options & (1u << event))) return;
  // ptrace_event_pid(): a fork's, clone's or exec's id is a global one
  // here, the message the id the tracer's pid namespace gives it.
  if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE ||
      event == PTRACE_EVENT_VFORK_DONE || event == PTRACE_EVENT_EXEC) {
    msg = static_cast<uint64_t>(Kernel::IdIn(ptrace_.tracer->pid_ns(), static_cast<int>(msg)));
  }
  ptrace_.event_msg = msg;
  ptrace_.exit_stop = event == PTRACE_EVENT_EXIT;
  siginfo_t info{};
  info.si_signo = SIGTRAP;
  info.si_code = SIGTRAP | (event << 8);
  PtraceStopLocked(PtraceState::Stop::kEvent, SIGTRAP | (event << 8), &info);
}

bool Task::PtraceSyscallStop(bool entry) {
  absl::MutexLock l(&kernel_.mu());
  if (ptrace_.tracer == nullptr || !ptrace_.traces_syscalls()) return true;
  if (!entry && ptrace_.emulates_syscalls()) return true;
  const int code = SIGTRAP | ((ptrace_.options & PTRACE_O_TRACESYSGOOD) ? 0x80 : 0);
  siginfo_t info{};
  info.si_signo = SIGTRAP;
  info.si_code = code;
  ptrace_.event_msg = entry ? 1 : 2;  // PTRACE_EVENTMSG_SYSCALL_{ENTRY,EXIT}
  PtraceStopLocked(entry ? PtraceState::Stop::kSyscallEntry : PtraceState::Stop::kSyscallExit, code,
                   &info);
  if (exit_requested_ || tg_->group_exiting) return false;
  // A signal given at a syscall-stop is sent (ptrace_report_syscall()).
  if (ptrace_.resume_sig != 0) {
    siginfo_t sig{};
    sig.si_signo = ptrace_.resume_sig;
    sig.si_code = SI_USER;
    sig.si_pid = ptrace_.tracer ? ptrace_.tracer->tgid() : 0;
    kernel_.SendTaskSignal(*this, sig).ok();
    ptrace_.resume_sig = 0;
  }
  return true;
}

// ---- The tracer's wait ----

std::optional<WaitResult> WaitForTracee(Task& t, const WaitRequest& req, bool* any) {
  Kernel& k = t.kernel();
  ThreadGroup& self = t.tg();
  for (Task* tracer : self.tasks) {
    auto& list = tracer->ptrace().tracees;
    for (auto it = list.begin(); it != list.end(); ++it) {
      std::shared_ptr<Task> e = *it;
      PtraceState& p = e->ptrace();
      if (!Matches(self, *e, req)) continue;
      *any = true;
      WaitResult res;
      res.pid = Kernel::IdIn(t.pid_ns(), e->tid());  // as the waiter sees it
      if (p.zombie) {
        if (!(req.options & WEXITED)) continue;
        res.status = p.exit_status;
        const ChildExit ce = DecodeExitStatus(p.exit_status);
        res.code = ce.code;
        res.child_status = ce.status;
        if (!(req.options & WNOWAIT)) {
          list.erase(it);
          p.tracer = nullptr;
          e->set_traced(false);
          p.zombie = false;
          PtraceReleaseExited(k, *e, &self);
        }
        return res;
      }
      if (p.stop != PtraceState::Stop::kNone && p.report) {
        res.status = (p.exit_code << 8) | 0x7f;
        res.code = CLD_TRAPPED;
        res.child_status = p.exit_code;
        if (!(req.options & WNOWAIT)) p.report = false;
        return res;
      }
    }
  }
  return std::nullopt;
}

// A traced thread-group leader's exit, seen (reaped) or dropped by its
// tracer: now its real parent may hear of the process's end
// (__ptrace_detach() → release or do_notify_parent()). `reaper` is the
// tracer's process when it reaped the exit itself.
void PtraceReleaseExited(Kernel& k, Task& e, ThreadGroup* reaper) {
  ThreadGroup& tg = e.tg();
  if (e.tid() != tg.tgid() || !tg.ptrace_exit_pending) return;
  tg.ptrace_exit_pending = false;
  if (tg.state != ThreadGroup::State::kZombie) return;
  auto parent = tg.parent.lock();
  if (reaper != nullptr && parent.get() == reaper) {
    // The tracer is the parent too: one wait reaps both.
    k.ReapLocked(tg);
    reaper->children_cpu_ns += tg.cpu_ns + tg.children_cpu_ns;
    reaper->children_sys_ns += tg.sys_ns + tg.children_sys_ns;
    reaper->children_maxrss_kb =
        std::max({reaper->children_maxrss_kb, tg.maxrss_kb, tg.children_maxrss_kb});
    reaper->io.Add(tg.io);
    auto& ch = reaper->children;
    ch.erase(std::remove_if(ch.begin(), ch.end(),
                            [&](const std::shared_ptr<ThreadGroup>& c) { return c.get() == &tg; }),
             ch.end());
    return;
  }
  k.ZombieToParent(tg);
}

// ---- Attaching and detaching ----

Status PtraceAttach(Task& tracer, Task& tracee, bool seize, uint32_t options) {
  Kernel& k = tracer.kernel();
  // ptrace_attach(): not a thread of our own process, not traced already,
  // and only where PTRACE_MODE_ATTACH_REALCREDS allows.
  if (&tracee.tg() == &tracer.tg()) return Errno(EPERM);
  if (tracee.exited() || tracee.tg().group_exiting) return Errno(EPERM);
  if (tracee.ptrace().tracer != nullptr) return Errno(EPERM);
  if (!MayPtraceAccess(tracer, tracee.tg(), tracee.creds(), PtraceCreds::kReal)) {
    return Errno(EPERM);
  }
  PtraceState& p = tracee.ptrace();
  p.tracer = &tracer;
  p.seized = seize;
  p.options = options;
  p.resume = PtraceState::Resume::kCont;
  p.group_stop_epoch = 0;
  tracer.ptrace().tracees.push_back(tracee.shared_from_this());
  tracee.set_traced(true);
  if (!seize) {
    // PTRACE_ATTACH sends SIGSTOP.
    siginfo_t info{};
    info.si_signo = SIGSTOP;
    info.si_code = SI_USER;
    info.si_pid = tracer.tgid();
    k.SendTaskSignal(tracee, info).ok();
  }
  if (tracee.tg().stopped) {
    // Already group-stopped: it re-traps for the tracer
    // (JOBCTL_TRAP_STOP in ptrace_attach()), as PTRACE_EVENT_STOP if seized.
    if (seize) {
      p.trap_pending = true;
      p.trap_sig = tracee.tg().stop_signal;
      p.group_stop_epoch = tracee.tg().stop_epoch;
    }
    tracee.Interrupt();
  }
  return {};
}

Status PtraceTraceMe(Task& t) {
  if (t.ptrace().tracer != nullptr) return Errno(EPERM);
  auto parent = t.tg().parent.lock();
  if (!parent || parent->state != ThreadGroup::State::kAlive) return Errno(EPERM);
  Task* tracer = parent->leader != nullptr ? parent->leader
                                           : (parent->tasks.empty() ? nullptr : parent->tasks[0]);
  if (tracer == nullptr) return Errno(EPERM);
  if (!LandlockMayTrace(tracer->creds(), t.creds())) return Errno(EPERM);  // hook_ptrace_traceme()
  t.ptrace().tracer = tracer;
  t.ptrace().seized = false;
  t.ptrace().options = 0;
  t.ptrace().resume = PtraceState::Resume::kCont;
  tracer->ptrace().tracees.push_back(t.shared_from_this());
  t.set_traced(true);
  return {};
}

void PtraceUnlink(Kernel& k, Task& tracee) {
  PtraceState& p = tracee.ptrace();
  Task* tracer = p.tracer;
  if (tracer == nullptr) return;
  auto& list = tracer->ptrace().tracees;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const std::shared_ptr<Task>& t) { return t.get() == &tracee; }),
             list.end());
  p.tracer = nullptr;
  tracee.set_traced(false);
  p.seized = false;
  p.options = 0;
  p.trap_pending = false;
  p.resume = PtraceState::Resume::kCont;
  if (p.zombie) {
    p.zombie = false;
    PtraceReleaseExited(k, tracee, nullptr);
  }
  if (p.stop != PtraceState::Stop::kNone) {
    p.stop = PtraceState::Stop::kNone;
    tracee.Notify();
  }
}

void PtraceResume(Task& tracee, PtraceState::Resume how, int sig) {
  PtraceState& p = tracee.ptrace();
  p.resume = how;
  p.resume_sig = sig;
  p.resumed = true;
  p.report = false;
  p.listening = false;
  p.stop = PtraceState::Stop::kNone;
  tracee.Notify();
}

void PtraceOnExit(Kernel& k, Task& t, int status) {
  // The tracer's tracees go free (exit_ptrace()); PTRACE_O_EXITKILL ones die.
  std::vector<std::shared_ptr<Task>> tracees = t.ptrace().tracees;
  for (auto& e : tracees) {
    const bool kill = (e->ptrace().options & PTRACE_O_EXITKILL) != 0;
    PtraceUnlink(k, *e);
    if (kill) {
      siginfo_t info{};
      info.si_signo = SIGKILL;
      info.si_code = SI_USER;
      k.SendGroupSignal(e->tg(), info).ok();
    }
  }
  t.ptrace().tracees.clear();
  // A tracee's own end is its tracer's to reap.
  PtraceState& p = t.ptrace();
  if (p.tracer != nullptr) {
    p.zombie = true;
    p.stop = PtraceState::Stop::kNone;
    p.exit_status = status;
    if (t.tid() == t.tgid()) t.tg().ptrace_exit_pending = true;
    NotifyTracer(k, t);
  }
}

}  // namespace seedvisor::sentry
