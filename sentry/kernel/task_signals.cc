// Signal delivery: frames, sigreturn, faults, and sending signals.
#include <cstring>
#include <vector>

#include "sentry/base/log.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/signal_frame_amd64.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/wait.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kUcSigcontextSs = 0x2;
constexpr uint64_t kUcStrictRestoreSs = 0x4;

bool OnAltStack(const stack_t& ss, uint64_t sp) {
  uint64_t base = reinterpret_cast<uint64_t>(ss.ss_sp);
  return !(ss.ss_flags & SS_DISABLE) && sp > base && sp <= base + ss.ss_size;
}

void SaveRegs(const platform::Registers& r, SigContext& c) {
  c.r8 = r.r8; c.r9 = r.r9; c.r10 = r.r10; c.r11 = r.r11;
  c.r12 = r.r12; c.r13 = r.r13; c.r14 = r.r14; c.r15 = r.r15;
  c.rdi = r.rdi; c.rsi = r.rsi; c.rbp = r.rbp; c.rbx = r.rbx;
  c.rdx = r.rdx; c.rax = r.rax; c.rcx = r.rcx; c.rsp = r.rsp;
  c.rip = r.rip; c.eflags = r.eflags;
  c.cs = static_cast<uint16_t>(r.cs);
  c.ss = static_cast<uint16_t>(r.ss);
}

void RestoreRegs(const SigContext& c, platform::Registers& r) {
  r.r8 = c.r8; r.r9 = c.r9; r.r10 = c.r10; r.r11 = c.r11;
  r.r12 = c.r12; r.r13 = c.r13; r.r14 = c.r14; r.r15 = c.r15;
  r.rdi = c.rdi; r.rsi = c.rsi; r.rbp = c.rbp; r.rbx = c.rbx;
  r.rdx = c.rdx; r.rax = c.rax; r.rcx = c.rcx; r.rsp = c.rsp;
  r.rip = c.rip;
  // Only the flags user code may change (FIX_EFLAGS in the kernel).
  constexpr uint64_t kUserFlags = 0x40dd5;  // AC OF DF TF SF ZF AF PF CF
  r.eflags = (r.eflags & ~kUserFlags) | (c.eflags & kUserFlags);
  r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart after sigreturn
}

// The frame's FP image for `fp` (see FpxSwBytes).
std::vector<uint8_t> FrameFpImage(const platform::FpState& fp) {
  if (!platform::FpState::HostHasXsave()) {
    std::vector<uint8_t> img(platform::FpState::kFxsaveSize);
    fp.CopyTo(img.data(), img.size(), platform::FpState::kFeaturesFpSse);
    return img;
  }
  const size_t size = fp.size();
  std::vector<uint8_t> img(size + sizeof(kFpXstateMagic2));
  fp.CopyTo(img.data(), size, platform::FpState::HostFeatures());
  FpxSwBytes sw{};
  sw.magic1 = kFpXstateMagic1;
  sw.extended_size = static_cast<uint32_t>(size + sizeof(kFpXstateMagic2));
  sw.xfeatures = platform::FpState::HostFeatures();
  sw.xstate_size = static_cast<uint32_t>(size);
  std::memcpy(img.data() + platform::FpState::kSwBytesOffset, &sw, sizeof(sw));
  std::memcpy(img.data() + size, &kFpXstateMagic2, sizeof(kFpXstateMagic2));
  return img;
}

// Reads the frame's FP image at `addr` into `fp` as __fpu_restore_sig()
// does: the XSAVE image if its software bytes and magic2 check out
// (check_xstate_in_sigframe()), else the FXSAVE area alone with every other
// component in its init state.
Status ReadFrameFpImage(const Task& t, UserAddr addr, platform::FpState& fp) {
  uint8_t legacy[platform::FpState::kFxsaveSize];
  SV_TRY(t.CopyIn(addr, legacy, sizeof(legacy)));
  FpxSwBytes sw;
  std::memcpy(&sw, legacy + platform::FpState::kSwBytesOffset, sizeof(sw));
  if (platform::FpState::HostHasXsave() && sw.magic1 == kFpXstateMagic1 &&
      sw.xstate_size >= platform::FpState::kXsaveHeaderEnd && sw.xstate_size <= fp.size() &&
      sw.xstate_size <= sw.extended_size) {
    uint32_t magic2 = 0;
    if (t.CopyInObj(addr + sw.xstate_size, &magic2).ok() && magic2 == kFpXstateMagic2) {
      std::vector<uint8_t> img(sw.xstate_size);
      SV_TRY(t.CopyIn(addr, img.data(), img.size()));
      fp.CopyFrom(img.data(), img.size(), sw.xfeatures);
      return {};
    }
  }
  fp.CopyFrom(legacy, sizeof(legacy), platform::FpState::kFeaturesFpSse);
  return {};
}

}  // namespace

bool Task::SetupSignalFrame(int sig, const siginfo_t& info, const KernelSigaction& act) {
  // The frame saves the abort handler's address, not the critical
  // section's; a bad rseq_cs is SIGSEGV after this frame (force_sigsegv()).
  const bool rseq_ok = RseqAbortForSignal();
  uint64_t sp = regs_.rsp;
  if ((act.flags & SA_ONSTACK) && !(altstack_.ss_flags & SS_DISABLE) &&
      !OnAltStack(altstack_, sp)) {
    sp = reinterpret_cast<uint64_t>(altstack_.ss_sp) + altstack_.ss_size;
  } else {
    sp -= kRedZone;
  }
  // The interrupted code's FP state goes into the frame.
  SaveFpState().ok();
  const std::vector<uint8_t> fp_image = FrameFpImage(fp_state_);
  uint64_t fpstate = (sp - fp_image.size()) & ~uint64_t{63};
  uint64_t frame_addr = ((fpstate - sizeof(RtSigframe)) & ~uint64_t{15}) - 8;

  RtSigframe frame{};
  frame.pretcode = act.restorer;
  frame.uc.uc_flags = kUcSigcontextSs | kUcStrictRestoreSs |
                     (platform::FpState::HostHasXsave() ? kUcFpXstate : 0);
  frame.uc.uc_stack.ss_sp = reinterpret_cast<uint64_t>(altstack_.ss_sp);
  frame.uc.uc_stack.ss_flags = OnAltStack(altstack_, regs_.rsp) ? SS_ONSTACK : altstack_.ss_flags;
  frame.uc.uc_stack.ss_size = altstack_.ss_size;
  SaveRegs(regs_, frame.uc.uc_mcontext);
  frame.uc.uc_mcontext.fpstate = fpstate;
  if (sig == SIGSEGV || sig == SIGBUS) {
    // SAFETY: si_addr is a guest address carried in siginfo; never dereferenced.
    frame.uc.uc_mcontext.cr2 = reinterpret_cast<uint64_t>(info.si_addr);
  }
  frame.uc.uc_mcontext.oldmask = saved_mask_;
  frame.uc.uc_sigmask = saved_mask_;  // PrepareToRun() put the pre-handler mask here
  frame.info = info;

  bool ok = CopyOut(UserAddr(fpstate), fp_image.data(), fp_image.size()).ok() &&
            CopyOut(UserAddr(frame_addr), &frame, sizeof(frame)).ok();
  // A bad rseq_cs while delivering SIGSEGV itself fails like a bad frame.
  if (!rseq_ok && sig == SIGSEGV) ok = false;
  if (!ok) {
    // The registers stay as they were; the caller forces SIGSEGV.
    Log::Debug("task %d: cannot write the frame for signal %d at %#x", tid_, sig, frame_addr);
    return false;
  }
  regs_.rsp = frame_addr;
  regs_.rip = act.handler;
  regs_.rdi = static_cast<uint64_t>(sig);
  regs_.rsi = frame_addr + offsetof(RtSigframe, info);
  regs_.rdx = frame_addr + offsetof(RtSigframe, uc);
  regs_.rax = 0;
  regs_.eflags &= ~uint64_t{0x400 | 0x100};  // clear DF and TF for the handler
  regs_.orig_rax = static_cast<uint64_t>(-1);
  // The init FP state for the handler (fpu__clear_user_states()); Run()
  // installs it.
  fp_state_.Reset();
  if (!rseq_ok) {
    siginfo_t segv{};
    segv.si_signo = SIGSEGV;
    segv.si_code = SI_KERNEL;
    ForceSignal(segv);
  }
  return true;
}

void Task::ForceSigsegv(int sig) {
  {
    absl::MutexLock l(&kernel_.mu());
    // force_sigsegv(): a SIGSEGV whose own frame failed cannot be handled.
    if (sig == SIGSEGV) tg_->handlers->actions[SIGSEGV] = KernelSigaction{};
  }
  siginfo_t segv{};
  segv.si_signo = SIGSEGV;
  segv.si_code = SI_KERNEL;
  ForceSignal(segv);
}

Status Task::SigReturn() {
  // The handler's `ret` popped pretcode, so the ucontext is at rsp.
  UContext uc;
  SV_TRY(CopyInObj(UserAddr(regs_.rsp), &uc));
  // The FP state first: an unreadable image fails the sigreturn (SIGSEGV)
  // before anything changed. No image means the init state
  // (fpu__restore_sig() with a NULL buf).
  platform::FpState fp;
  if (uc.uc_mcontext.fpstate != 0) {
    SV_TRY(ReadFrameFpImage(*this, UserAddr(uc.uc_mcontext.fpstate), fp));
  }
  fp_state_ = std::move(fp);  // the handler's own state is dropped
  fp_saved_ = true;
  RestoreRegs(uc.uc_mcontext, regs_);
  {
    absl::MutexLock l(&kernel_.mu());
    set_signal_mask(uc.uc_sigmask);
  }
  // sigaltstack is restored as restore_altstack() does, ignoring errors.
  if (!OnAltStack(altstack_, regs_.rsp)) {
    altstack_.ss_sp = reinterpret_cast<void*>(uc.uc_stack.ss_sp);
    altstack_.ss_size = uc.uc_stack.ss_size;
    altstack_.ss_flags = uc.uc_stack.ss_flags & SS_DISABLE;
  }
  MarkRegistersReplaced();
  return {};
}

void Task::ForceSignal(const siginfo_t& info) {
  absl::MutexLock l(&kernel_.mu());
  int sig = info.si_signo;
  // force_sig_info(): a blocked or ignored fault signal gets the default action.
  KernelSigaction& act = tg_->handlers->actions[sig];
  if ((signal_mask_ & SigBit(sig)) || act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) {
    act = KernelSigaction{};
    signal_mask_ &= ~SigBit(sig);
  }
  // A fault the init has no handler for kills it; a tracer keeps it
  // unkillable (force_sig_info_to_task()).
  if (act.handler == reinterpret_cast<uint64_t>(SIG_DFL) && ptrace_.tracer == nullptr) {
    tg_->unkillable = false;
  }
  (void)pending_.Enqueue(info);  // unlimited: a fault's (force_sig_info())
}

// ---- Sending (Kernel) ----

namespace {

bool IsStopSignal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

bool Traced(const ThreadGroup& tg) {
  for (const Task* t : tg.tasks) {
    if (t->ptrace().tracer != nullptr) return true;
  }
  return false;
}

// send_signal_locked()'s `force`: may this signal end or stop the init?
bool Forced(const siginfo_t& info, SignalSender from) {
  return from != SignalSender::kSandboxTask || info.si_code == SI_KERNEL;
}

// The init's protection at generation time (sig_task_ignored()): a
// signal for which it has no handler is dropped, unless it is a forced
// SIGKILL or SIGSTOP. `seedsc do`'s forwarding bypasses it.
bool InitDrops(const ThreadGroup& tg, int sig, bool force, SignalSender from) {
  if (!tg.unkillable || from == SignalSender::kDoForward) return false;
  if (tg.handlers->actions[sig].handler != reinterpret_cast<uint64_t>(SIG_DFL)) return false;
  return !(force && (sig == SIGKILL || sig == SIGSTOP));
}

// Linux drops a signal at generation time when it would be ignored anyway
// (sig_ignored()), unless it is blocked; a tracer sees every signal but
// SIGKILL.
bool Ignored(const ThreadGroup& tg, int sig, bool force, SignalSender from) {
  const KernelSigaction& act = tg.handlers->actions[sig];
  if (Traced(tg) && sig != SIGKILL) return false;
  if (InitDrops(tg, sig, force, from)) return true;
  if (sig == SIGKILL || sig == SIGSTOP) return false;
  if (act.handler == reinterpret_cast<uint64_t>(SIG_IGN)) return true;
  return act.handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
         (DefaultActionOf(sig) == DefaultAction::kIgnore ||
          DefaultActionOf(sig) == DefaultAction::kContinue);
}

}  // namespace

// Returns false if the signal needs no queueing.
static bool PrepareSignal(Kernel& k, ThreadGroup& tg, const siginfo_t& info, SignalSender from) {
  const int sig = info.si_signo;
  if (tg.state != ThreadGroup::State::kAlive || tg.group_exiting) return false;
  if (sig == SIGKILL) {
    // The sandbox ends with its init: say who ended it, or who tried (--debug).
    if (tg.tgid() == 1) {
      Log::Debug("pid 1 gets SIGKILL (si_code %d, from pid %d uid %d)%s", info.si_code,
                 info.si_pid, info.si_uid,
                 InitDrops(tg, sig, Forced(info, from), from) ? ": dropped, pid 1 is the init" : "");
    }
    if (InitDrops(tg, sig, Forced(info, from), from)) return false;
    tg.group_exiting = true;
    tg.exit_status = SIGKILL;
    tg.stopped = false;
    for (Task* t : tg.tasks) t->Interrupt();
    k.WakeParkedToDieLocked();  // a paused sandbox's: they die, the rest stay parked
    return false;
  }
  if (from == SignalSender::kDoForward && tg.unkillable && !Traced(tg) &&
      tg.handlers->actions[sig].handler == reinterpret_cast<uint64_t>(SIG_DFL) &&
      (DefaultActionOf(sig) == DefaultAction::kTerminate ||
       DefaultActionOf(sig) == DefaultAction::kCore)) {
    // `seedsc do`'s ^C: the init dies of it as any other process would
    // (complete_signal()'s fatal shortcut), unless every thread blocks it.
    for (Task* t : tg.tasks) {
      if (!(t->signal_mask() & SigBit(sig))) {
        tg.group_exiting = true;
        tg.exit_status = DefaultActionOf(sig) == DefaultAction::kCore ? tg.CoreDumpStatus(sig) : sig;
        for (Task* u : tg.tasks) u->Interrupt();
        return false;
      }
    }
  }
  if (sig == SIGCONT) {
    tg.shared_pending.Discard(SIGSTOP);
    tg.shared_pending.Discard(SIGTSTP);
    tg.shared_pending.Discard(SIGTTIN);
    tg.shared_pending.Discard(SIGTTOU);
    for (Task* t : tg.tasks) {
      for (int s : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}) t->pending().Discard(s);
    }
    if (tg.stopped) {
      tg.stopped = false;
      tg.stop_to_report = false;
      tg.continue_to_report = true;
      k.NotifyParent(tg);
      for (Task* t : tg.tasks) t->Interrupt();
    }
  } else if (IsStopSignal(sig)) {
    tg.shared_pending.Discard(SIGCONT);
    for (Task* t : tg.tasks) t->pending().Discard(SIGCONT);
  }
  return true;
}

namespace {

// RLIMIT_SIGPENDING of the target (__sigqueue_alloc(): the target's real
// user, the target's limit); none for a POSIX timer's signal, whose
// siginfo Linux allocates with the timer (SIGQUEUE_PREALLOC).
bool QueueLimitOf(const ThreadGroup& tg, const SignalSource* src, SigQueueLimit* out) {
  if (src != nullptr || tg.tasks.empty()) return false;
  const rlim_t max = tg.rlimits[RLIMIT_SIGPENDING].rlim_cur;
  out->uid = tg.tasks.front()->creds().ruid;
  out->max = max == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(max);
  return true;
}

}  // namespace

Status Kernel::SendGroupSignal(ThreadGroup& tg, const siginfo_t& info,
                               std::shared_ptr<SignalSource> src, SignalSender from) {
  int sig = info.si_signo;
  if (sig < 0 || sig > kNumSignals) return Errno(EINVAL);
  if (sig == 0) return {};
  if (!PrepareSignal(*this, tg, info, from)) return {};
  bool blocked_everywhere = true;
  for (Task* t : tg.tasks) {
    if (!(t->signal_mask() & SigBit(sig))) blocked_everywhere = false;
  }
  if (Ignored(tg, sig, Forced(info, from), from) && !blocked_everywhere) return {};
  SigQueueLimit limit;
  const bool limited = QueueLimitOf(tg, src.get(), &limit);
  SV_TRY(tg.shared_pending.Enqueue(info, std::move(src), limited ? &limit : nullptr));
  // Wake one thread that can take it (complete_signal()).
  for (Task* t : tg.tasks) {
    if (!(t->signal_mask() & SigBit(sig))) {
      t->Interrupt();
      break;
    }
  }
  // Blocked everywhere: a thread in rt_sigtimedwait(2) (sigwait) or reading
  // a signalfd may be waiting for exactly this one; let Block()ed threads
  // re-check (Linux unblocks sigtimedwait's set for the wait instead).
  if (blocked_everywhere) {
    for (Task* t : tg.tasks) t->Notify();
  }
  return {};
}

Status Kernel::SendTaskSignal(Task& t, const siginfo_t& info,
                              std::shared_ptr<SignalSource> src, SignalSender from) {
  int sig = info.si_signo;
  if (sig < 0 || sig > kNumSignals) return Errno(EINVAL);
  if (sig == 0) return {};
  ThreadGroup& tg = t.tg();
  if (!PrepareSignal(*this, tg, info, from)) return {};
  if (Ignored(tg, sig, Forced(info, from), from) && !(t.signal_mask() & SigBit(sig))) return {};
  SigQueueLimit limit;
  const bool limited = QueueLimitOf(tg, src.get(), &limit);
  SV_TRY(t.pending().Enqueue(info, std::move(src), limited ? &limit : nullptr));
  t.Interrupt();
  return {};
}

void Kernel::NotifyParent(ThreadGroup& tg) {
  std::shared_ptr<ThreadGroup> parent = tg.parent.lock();
  if (!parent) return;
  siginfo_t info{};
  info.si_signo = tg.exit_signal > 0 ? tg.exit_signal : SIGCHLD;
  info.si_pid = IdIn(parent->pid_ns.get(), tg.tgid());  // as the parent sees it
  info.si_uid = 0;
  const KernelSigaction& act = parent->handlers->actions[SIGCHLD];
  if (tg.state == ThreadGroup::State::kZombie) {
    const ChildExit ce = DecodeExitStatus(tg.exit_status);
    info.si_code = ce.code;
    info.si_status = ce.status;
    if (tg.exit_signal > 0) SendGroupSignal(*parent, info).ok();
  } else {
    info.si_signo = SIGCHLD;
    info.si_code = tg.stopped ? CLD_STOPPED : CLD_CONTINUED;
    info.si_status = tg.stopped ? tg.stop_signal : SIGCONT;
    if (!(act.flags & SA_NOCLDSTOP)) SendGroupSignal(*parent, info).ok();
  }
  // Wake waiters in wait4/waitid.
  for (Task* t : parent->tasks) t->Notify();
}

}  // namespace seedvisor::sentry
