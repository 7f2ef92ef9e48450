// The task's host thread: run the guest, handle what stopped it, repeat.
// A syscall's handling and restart are in task_syscall.cc.
#include <linux/ptrace.h>
#include <sys/syscall.h>
#include <time.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/kernel/host_affinity.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

void Task::Start(HostThread host, platform::ThreadHandle thread) {
  std::move(host).Run([self = shared_from_this(), thread] {
    auto ctx = self->kernel_.platform().Attach(self->mm_->shared_address_space(), thread);
    if (ctx.ok()) {
      // A sandbox fork's copy maps its own shared objects before any of
      // its tasks runs (MM::RemapSharedAfterFork; nothing otherwise).
      if (Status s = self->mm_->RemapSharedAfterFork(); !s.ok()) {
        ctx = absl::InternalError(absl::StrCat("mapping its shared memory again after a fork: ",
                                               strerror(s.error().value())));
      }
    }
    if (ctx.ok()) {
      // A fork's child (guest or sandbox fork): what the parent marked
      // DONTFORK/WIPEONFORK (MM::ApplyForkAdvice; nothing otherwise).
      if (Status s = self->mm_->ApplyForkAdvice(); !s.ok()) {
        ctx = absl::InternalError(absl::StrCat("applying its parent's fork advice: ",
                                               strerror(s.error().value())));
      }
    }
    if (!ctx.ok()) {
      // No platform thread: the process dies as if killed (its parent sees
      // a SIGKILL status), rather than running without a context.
      Log::Warning("task %d: %s", self->tid_, std::string(ctx.status().message()));
      const int host_sig = self->HostDeathSignalUnlessExiting(/*context_died=*/false);
      absl::MutexLock l(&self->kernel_.mu());
      if (!self->tg_->group_exiting) {
        self->tg_->group_exiting = true;
        self->tg_->exit_status =
            host_sig == SIGSEGV ? self->tg_->CoreDumpStatus(SIGSEGV) : SIGKILL;
      }
    } else {
      {
        absl::MutexLock l(&self->kernel_.mu());  // see ThreadCpuNsLocked
        self->ctx_ = std::move(*ctx);
      }
      // A new host thread (clone, fork, a sandbox fork's copy) runs
      // wherever the host likes until pinned again.
      ApplyHostAffinity(*self);
    }
    self->Run();
  });
}

absl::Status Task::StartForked() {
  Result<HostThread> host = HostThread::Spawn();
  if (!host.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("task ", tid_, ": the host refused a thread: ",
                                                     std::strerror(host.error().value())));
  }
  Start(std::move(*host), fork_thread_);
  return absl::OkStatus();
}

void Task::StartWithExec(HostThread host, std::vector<std::string> candidates,
                         std::vector<std::string> argv, std::vector<std::string> envp,
                         std::function<void(Status)> on_exec) {
  std::move(host).Run([self = shared_from_this(), candidates = std::move(candidates),
                       argv = std::move(argv), envp = std::move(envp),
                       on_exec = std::move(on_exec)]() mutable {
    Status s = Errno(ENOENT);
    for (const std::string& path : candidates) {
      s = self->Execve(path, argv, envp);
      if (s.ok() || (s.error().value() != ENOENT && s.error().value() != ENOTDIR)) break;
    }
    on_exec(s);
    if (!s.ok()) {
      // Nothing to run: end as a shell does when exec fails.
      self->ExitGroup(s.error().value() == ENOENT ? 127 : 126);
    }
    self->Run();
  });
}

Status Task::SaveFpState() {
  if (!fp_saved_ && ctx_ != nullptr) {
    SV_TRY(ctx_->GetFpState(fp_state_));
  }
  fp_saved_ = true;
  return {};
}

void Task::LoadFpState() {
  // A failure means a dead context, which the next Run() reports.
  ctx_->SetFpState(fp_state_).ok();
  fp_saved_ = false;
}

void Task::Run() {
  // The task this host thread works for (CurrentTask(), sentry/vfs/vfs.h):
  // fanotify names it as an event's pid, /proc/self resolves to it.
  SetCurrentTask(this);
  NoteHostThread();
  while (PrepareToRun()) {
    if (fp_saved_) LoadFpState();  // one predictable branch on the fast path
    if (!rseq_.addr.IsNull() && !ctx_->HasRseq()) SyncRseq();
    guest_entries_.fetch_add(1, std::memory_order_relaxed);
    platform::Stop stop = ctx_->Run(regs_);
    {
      absl::MutexLock l(&kernel_.mu());
      in_guest_ = false;
    }
    if (stop.kind != platform::StopKind::kDead && !mm_->IsGuestAddress(UserAddr(regs_.rip))) {
      // The guest jumped into the platform's stub (its code lies above
      // UserTop, as the kernel's above TASK_SIZE) and stopped there. What it
      // asked for there is not a syscall of ours: it executed memory that
      // is not its own, which Linux answers with SIGSEGV (SEGV_MAPERR).
      stop.kind = platform::StopKind::kFault;
      stop.info = siginfo_t{};
      stop.info.si_signo = SIGSEGV;
      stop.info.si_code = SEGV_MAPERR;
      stop.info.si_addr = reinterpret_cast<void*>(regs_.rip);  // SAFETY: only reported
    }
    switch (stop.kind) {
      case platform::StopKind::kSyscall:
        HandleSyscall();
        break;
      case platform::StopKind::kFault:
        // Rare (a guest fault the host did not resolve): worth a --debug line.
        Log::Debug("task %d: signal %d (code %d) for address %p at rip %#llx", tid_,
                   stop.info.si_signo, stop.info.si_code, stop.info.si_addr,
                   static_cast<unsigned long long>(regs_.rip));
        ForceSignal(stop.info);
        break;
      case platform::StopKind::kInterrupt:
        break;
      case platform::StopKind::kDead: {
        // The guest sees a SIGKILL, as on Linux; the why is for --debug
        // (a user's stderr is the guest's, not ours). A host process that
        // died of SIGSEGV is the guest's SIGSEGV (HostDeathSignalUnless-
        // Exiting), whichever of its tasks notices first.
        Log::Debug("task %d: its platform context died; killing the process", tid_);
        if (HostDeathSignalUnlessExiting(/*context_died=*/true) == SIGSEGV) {
          absl::MutexLock l(&kernel_.mu());
          KillGroupLocked(tg_->CoreDumpStatus(SIGSEGV));
          break;
        }
        absl::MutexLock l(&kernel_.mu());
        siginfo_t info{};
        info.si_signo = SIGKILL;
        kernel_.SendGroupSignal(*tg_, info).ok();
        break;
      }
    }
  }
  ExitTask();
}

int Task::HostDeathSignalUnlessExiting(bool context_died) {
  {
    absl::MutexLock l(&kernel_.mu());
    // The group's end is decided (and the sentry may have killed the host
    // process itself): asking would only wait for the reap.
    if (tg_->group_exiting) return 0;
  }
  // Only SIGSEGV is the guest's: the host's rseq check failed on a stub
  // thread (task_rseq.cc), which Linux answers with SIGSEGV (force_sigsegv()).
  return mm_->address_space().HostDeathSignal(context_died);
}

bool Task::PrepareToRun() {
  for (;;) {
    kernel_.mu().Lock();
    if (tg_->group_exiting || exit_requested_) {
      kernel_.mu().Unlock();
      return false;
    }
    // The sandbox is being quiesced (Kernel::Quiesce): park here, at the
    // syscall boundary, without looking at signals (they stay pending, as
    // for a cgroup-frozen task). An interrupted syscall's ERESTART* result
    // stays in restart_errno_ and is finished when the task runs again.
    if (kernel_.park_requested()) {
      kernel_.ParkTask(*this);
      kernel_.mu().Unlock();
      continue;
    }
    if (ptrace_.tracer != nullptr && ptrace_.trap_pending) {
      // PTRACE_INTERRUPT, or a seize of a stopped task: PTRACE_EVENT_STOP,
      // carrying the stop signal while the group is stopped.
      ptrace_.trap_pending = false;
      if (tg_->stopped) ptrace_.group_stop_epoch = tg_->stop_epoch;
      const int stop_sig = ptrace_.trap_sig != 0 ? ptrace_.trap_sig
                           : tg_->stopped      ? tg_->stop_signal
                                               : SIGTRAP;
      ptrace_.trap_sig = 0;
      const int code = stop_sig | (PTRACE_EVENT_STOP << 8);
      siginfo_t si{};
      si.si_signo = code & 0x7f;
      si.si_code = code;
      PtraceStopLocked(PtraceState::Stop::kGroup, code, &si);
      kernel_.mu().Unlock();
      continue;
    }
    if (GroupStopPending()) {
      if (ptrace_.tracer != nullptr) {
        // A tracee's group-stop is a ptrace-stop, reported once to the
        // tracer (PTRACE_EVENT_STOP if seized; no siginfo otherwise).
        ptrace_.group_stop_epoch = tg_->stop_epoch;
        siginfo_t si{};
        si.si_signo = tg_->stop_signal;
        si.si_code = tg_->stop_signal | (PTRACE_EVENT_STOP << 8);
        PtraceStopLocked(PtraceState::Stop::kGroup,
                         tg_->stop_signal | (ptrace_.seized ? PTRACE_EVENT_STOP << 8 : 0),
                         ptrace_.seized ? &si : nullptr);
        kernel_.mu().Unlock();
        continue;
      }
      kernel_.mu().Unlock();
      Block().ok();
      continue;
    }
    siginfo_t info{};
    int sig = pending_.Dequeue(signal_mask_, &info);
    if (sig == 0) sig = tg_->shared_pending.Dequeue(signal_mask_, &info);
    if (sig != 0 && sig != SIGKILL && ptrace_.tracer != nullptr) {
      // Signal-delivery-stop: the tracer sees the signal first and decides
      // which one, if any, is delivered (ptrace_signal()).
      PtraceStopLocked(PtraceState::Stop::kSignal, sig, &info);
      if (tg_->group_exiting || exit_requested_) {
        kernel_.mu().Unlock();
        return false;
      }
      if (ptrace_.resumed) {
        const int injected = ptrace_.resume_sig;
        ptrace_.resume_sig = 0;
        if (injected == 0) {
          kernel_.mu().Unlock();
          continue;
        }
        info = ptrace_.siginfo;  // PTRACE_SETSIGINFO may have changed it
        if (injected != info.si_signo) {
          info = siginfo_t{};
          info.si_signo = injected;
          info.si_code = SI_USER;
          info.si_pid = ptrace_.tracer != nullptr ? ptrace_.tracer->tgid() : 0;
        }
        sig = injected;
        if (signal_mask_ & SigBit(sig)) {
          // Blocked now: it waits like any other (send_signal()).
          (void)pending_.Enqueue(info);
          kernel_.mu().Unlock();
          continue;
        }
      }
    }
    if (sig == 0) {
      FinishRestart(false, nullptr);
      if (restore_saved_mask_) {  // rt_sigsuspend & co. ended without a handler
        set_signal_mask(saved_mask_);
        restore_saved_mask_ = false;
      }
      in_guest_ = true;
      kernel_.mu().Unlock();
      return true;
    }
    KernelSigaction act = tg_->handlers->actions[sig];
    if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN) && sig != SIGKILL && sig != SIGSTOP) {
      kernel_.mu().Unlock();
      continue;
    }
    if (act.handler == reinterpret_cast<uint64_t>(SIG_DFL) || sig == SIGKILL || sig == SIGSTOP) {
      // The init takes no default action but SIGKILL's and SIGSTOP's, which
      // reach it only when forced (get_signal(): a signal it had blocked,
      // or one its tracer gave it).
      if (tg_->unkillable && sig != SIGKILL && sig != SIGSTOP) {
        kernel_.mu().Unlock();
        continue;
      }
      switch (DefaultActionOf(sig)) {
        case DefaultAction::kIgnore:
        case DefaultAction::kContinue:
          kernel_.mu().Unlock();
          continue;
        case DefaultAction::kStop:
          tg_->stopped = true;
          ++tg_->stop_epoch;
          tg_->stop_signal = sig;
          tg_->stop_to_report = true;
          tg_->continue_to_report = false;
          for (Task* t : tg_->tasks) t->Interrupt();
          kernel_.NotifyParent(*tg_);
          kernel_.mu().Unlock();
          continue;
        case DefaultAction::kTerminate:
        case DefaultAction::kCore: {
          int status = DefaultActionOf(sig) == DefaultAction::kCore ? tg_->CoreDumpStatus(sig) : sig;
          if (!tg_->group_exiting) {
            tg_->group_exiting = true;
            tg_->exit_status = status;
            for (Task* t : tg_->tasks) t->Interrupt();
          }
          kernel_.mu().Unlock();
          return false;
        }
      }
    }
    // A handler: build its frame (the mask change happens under the lock).
    FinishRestart(true, &act);
    SigSet old_mask = signal_mask_;
    SigSet add = act.mask;
    if (!(act.flags & SA_NODEFER)) add |= SigBit(sig);
    set_signal_mask(signal_mask_ | add);
    // get_signal(): SA_RESETHAND resets the handler alone; the flags and
    // mask stay (sigaction(2) reports them).
    if (act.flags & SA_RESETHAND) {
      tg_->handlers->actions[sig].handler = reinterpret_cast<uint64_t>(SIG_DFL);
    }
    kernel_.mu().Unlock();
    // The frame saves the mask from before the handler (or the one
    // rt_sigsuspend replaced).
    SigSet frame_mask = restore_saved_mask_ ? saved_mask_ : old_mask;
    const bool had_saved_mask = restore_saved_mask_;
    restore_saved_mask_ = false;
    saved_mask_ = frame_mask;
    if (!SetupSignalFrame(sig, info, act)) {
      // signal_setup_done(failed): the handler's mask is not applied and a
      // saved rt_sigsuspend mask stays for the next delivery; SIGSEGV
      // follows at once, on whatever stack its own handler asks for.
      {
        absl::MutexLock l(&kernel_.mu());
        set_signal_mask(old_mask);
      }
      restore_saved_mask_ = had_saved_mask;
      ForceSigsegv(sig);
    }
  }
}

}  // namespace seedvisor::sentry
