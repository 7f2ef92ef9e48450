// SystrapContext: running the guest until its next event (Run, Resume,
// Classify) and waiting for the stub's posts (WaitEvent, LoadFrame).
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "platform/stub/await_slot_release.h"
#include "platform/systrap/syscall_patch.h"
#include "platform/systrap/systrap_address_space.h"
#include "platform/systrap/systrap_context_internal.h"
namespace seedvisor::platform::systrap {

bool SystrapContext::WaitEvent(bool guest, uint64_t since, bool stub_woken) {
  auto* w = StateWord(comm());
  // A guest event comes back as fast as the guest makes its next syscall;
  // spin as long as SpinPolicy says that pays, and not at all while the
  // host's CPUs are contended (systrap_handoff.h), and a wakeup longer
  // when the stub had to be woken for our reply. Other
  // waits (the stub's own memory calls, a new thread's first event) are
  // short: they use the current budget without counting as evidence.
  uint64_t budget = 0;
  if (!CpuContended()) budget = guest ? sentry_spin_.NextBudget() : sentry_spin_.budget();
  const uint64_t wake = wake_cost_.average();
  if (guest && stub_woken) budget = PeerWokenBudget(budget, wake, sentry_spin_.max());
  bool preempted = false;
  if (budget > 0) {
    static const uint64_t gap = static_cast<uint64_t>(kPreemptGapNs * TscTicksPerNs());
    const uint64_t deadline = since + budget;
    for (uint64_t last = ReadTsc();;) {
      if (w->load(std::memory_order_acquire) == kStateEvent) {
        if (guest) sentry_spin_.Record(budget, ReadTsc() - since);
        sentry_slept_ = false;
        kick_ns_.store(0, std::memory_order_release);
        return true;
      }
      __builtin_ia32_pause();
      const uint64_t now = ReadTsc();
      if (now - last > gap) {
        // Descheduled mid-spin: the CPUs are taken. Spinning on only keeps
        // them from the stub; sleep, so that its post wakes us.
        preempted = true;
        if (guest) sentry_spin_.Preempted();
        break;
      }
      if (now >= deadline) break;
      last = now;
    }
  }
  auto* waiting = reinterpret_cast<std::atomic<uint32_t>*>(&comm()->sentry_waiting);
  for (bool slept = false;; slept = true) {
    waiting->store(1, std::memory_order_seq_cst);  // before we look at state
    uint32_t s = w->load(std::memory_order_seq_cst);
    if (s == kStateEvent) {
      waiting->store(0, std::memory_order_relaxed);
      kick_ns_.store(0, std::memory_order_release);
      const uint64_t now = ReadTsc();
      // The stub's answer time is its post, not our wakeup after it (its
      // post_tsc is guest-writable: it only tunes this thread's own spin).
      const uint64_t posted = comm()->post_tsc;
      const uint64_t answered = posted > since && posted <= now ? posted - since : now - since;
      const bool counts = !stub_woken || PeerWokenWaitCounts(budget, answered, wake);
      if (guest && !preempted && counts) sentry_spin_.Record(budget, answered);
      sentry_slept_ = slept;
      if (slept) NoteWakeCost(now);
      return true;
    }
    // A kick that lands in the stub's fast exit is dropped (stub_amd64.S):
    // while one is unanswered, look again (and kick again) soon.
    timespec ts{0, kick_ns_.load(std::memory_order_relaxed) != 0 ? 2'000'000 : 100'000'000};
    long r = syscall(SYS_futex, w, FUTEX_WAIT, s, &ts, nullptr, 0);
    waiting->store(0, std::memory_order_relaxed);
    if (r < 0 && errno == ETIMEDOUT && (!Alive() || (guest && Wedged()))) return false;
  }
}

void SystrapContext::NoteWakeCost(uint64_t now) {
  // The stub posted at post_tsc and called FUTEX_WAKE right after (it saw
  // sentry_waiting). Guest-writable: a forged time only moves this
  // thread's own spin cap, within [MaxSpinTicks, CeilingSpinTicks].
  // While the host's CPUs are contended a wakeup waits for a CPU, which
  // no spin can shorten (and nothing spins then): only an uncontended
  // host's wakeups teach the cap.
  const uint64_t posted = comm()->post_tsc;
  if (now <= posted || CpuContended()) return;
  wake_cost_.Record(now - posted, CeilingSpinTicks());
  const uint64_t cap = wake_cost_.SpinCap(MaxSpinTicks(), CeilingSpinTicks());
  sentry_spin_.SetMax(cap);
  stub_spin_.SetMax(cap);
}

bool SystrapContext::LoadFrame() {
  CommPage* c = comm();
  const uint64_t base = SystrapAddressSpace::StubSlot(slot_);
  // Read each guest-writable word once, then check it.
  const uint64_t info = c->info, uc = c->uc;
  signo_ = c->signo;
  auto in_stack = [&](uint64_t addr, uint64_t size) {
    return addr >= base + kCommSize && addr <= base + kSlotSize - size && addr % 8 == 0;
  };
  if (!in_stack(info, sizeof(siginfo_t)) || !in_stack(uc, sizeof(KernelUContext))) return false;
  info_off_ = info - base;
  uc_off_ = uc - base;
  auto* k = reinterpret_cast<KernelUContext*>(as_->slot(slot_) + uc_off_);
  // SAFETY: only compared and turned into an offset, never dereferenced.
  const uint64_t fp = reinterpret_cast<uint64_t>(k->mcontext.fpregs);
  if (!in_stack(fp, kFxsaveSize + 64)) return false;
  fp_off_ = fp - base;
  return true;
}

namespace {

constexpr uint64_t kTrapFlag = 0x100;  // rflags.TF

void WriteGregs(greg_t* g, const Registers& regs) {
  g[REG_R8] = static_cast<greg_t>(regs.r8);
  g[REG_R9] = static_cast<greg_t>(regs.r9);
  g[REG_R10] = static_cast<greg_t>(regs.r10);
  g[REG_R11] = static_cast<greg_t>(regs.r11);
  g[REG_R12] = static_cast<greg_t>(regs.r12);
  g[REG_R13] = static_cast<greg_t>(regs.r13);
  g[REG_R14] = static_cast<greg_t>(regs.r14);
  g[REG_R15] = static_cast<greg_t>(regs.r15);
  g[REG_RDI] = static_cast<greg_t>(regs.rdi);
  g[REG_RSI] = static_cast<greg_t>(regs.rsi);
  g[REG_RBP] = static_cast<greg_t>(regs.rbp);
  g[REG_RBX] = static_cast<greg_t>(regs.rbx);
  g[REG_RDX] = static_cast<greg_t>(regs.rdx);
  g[REG_RAX] = static_cast<greg_t>(regs.rax);
  g[REG_RCX] = static_cast<greg_t>(regs.rcx);
  g[REG_RSP] = static_cast<greg_t>(regs.rsp);
  g[REG_RIP] = static_cast<greg_t>(regs.rip);
  g[REG_EFL] = static_cast<greg_t>(regs.eflags);
}

void ReadGregs(const greg_t* g, Registers& regs) {
  regs.r8 = static_cast<uint64_t>(g[REG_R8]);
  regs.r9 = static_cast<uint64_t>(g[REG_R9]);
  regs.r10 = static_cast<uint64_t>(g[REG_R10]);
  regs.r11 = static_cast<uint64_t>(g[REG_R11]);
  regs.r12 = static_cast<uint64_t>(g[REG_R12]);
  regs.r13 = static_cast<uint64_t>(g[REG_R13]);
  regs.r14 = static_cast<uint64_t>(g[REG_R14]);
  regs.r15 = static_cast<uint64_t>(g[REG_R15]);
  regs.rdi = static_cast<uint64_t>(g[REG_RDI]);
  regs.rsi = static_cast<uint64_t>(g[REG_RSI]);
  regs.rbp = static_cast<uint64_t>(g[REG_RBP]);
  regs.rbx = static_cast<uint64_t>(g[REG_RBX]);
  regs.rdx = static_cast<uint64_t>(g[REG_RDX]);
  regs.rax = static_cast<uint64_t>(g[REG_RAX]);
  regs.rcx = static_cast<uint64_t>(g[REG_RCX]);
  regs.rsp = static_cast<uint64_t>(g[REG_RSP]);
  regs.rip = static_cast<uint64_t>(g[REG_RIP]);
  regs.eflags = static_cast<uint64_t>(g[REG_EFL]);
}

// A syscall `nr` made at a patched site, as a trap at its `syscall`
// reports it: rip past the instruction, and rcx and r11 as the
// instruction sets them (the return address and rflags).
void SiteSyscall(Registers& regs, uint64_t return_rip, uint64_t nr, Stop& stop) {
  regs.rip = return_rip;
  regs.rcx = return_rip;
  regs.r11 = regs.eflags;
  regs.orig_rax = nr;
  regs.rax = static_cast<uint64_t>(-ENOSYS);
  stop.kind = StopKind::kSyscall;
}

}  // namespace

bool SystrapContext::Resume(const Registers& regs, bool slow) {
  CommPage* c = comm();
  if (fast_) {
    // SAFETY: the fast frame's gregs lie in this thread's slot (layout).
    WriteGregs(reinterpret_cast<greg_t*>(as_->slot(slot_) + kFastGregs), regs);
    FastHeader* h = fast_header();
    h->xmask = xfeatures_;
    h->fp_dirty = fp_dirty_ ? 1 : 0;
    h->slow = slow ? 1 : 0;
  } else {
    auto* k = reinterpret_cast<KernelUContext*>(as_->slot(slot_) + uc_off_);
    WriteGregs(k->mcontext.gregs, regs);
    // The host mask stays empty in guest mode: a blocked SIGSYS would make
    // the kernel kill the stub (force_sig_info_to_task resets the handler).
    k->sigmask = 0;
  }
  c->fs_base = regs.fs_base;
  // With patching, a guest GS of 0 is the slot's address on the host: the
  // fast entry finds its slot by it (PATCHING.md). Any other GS is the
  // guest's own, and its patched sites take the slow way (kStubFastFail).
  c->gs_base =
      (fast_ok_ && regs.gs_base == 0) ? SystrapAddressSpace::StubSlot(slot_) : regs.gs_base;
  // The stub has waited since its post; that tunes how long it spins for
  // the next answer (post_tsc is guest-writable: it can only mislead the
  // tuning of this thread's own spin, which the stub caps).
  const uint64_t now = ReadTsc();
  const uint64_t posted = c->post_tsc;
  // If it included our own wakeup, it counts as PeerWokenWaitCounts says.
  const uint64_t stub_waited = now > posted ? now - posted : 0;
  if (!sentry_slept_ || PeerWokenWaitCounts(stub_budget_, stub_waited, wake_cost_.average())) {
    stub_spin_.Record(stub_budget_, stub_waited);
  }
  stub_budget_ = CpuContended() ? 0 : stub_spin_.NextBudget();
  c->stub_spin = stub_budget_;
  auto* w = StateWord(c);
  w->store(kStateReply, std::memory_order_seq_cst);  // before we look at stub_waiting
  // SAFETY: a 4-byte aligned word of the shared comm page, accessed atomically.
  const bool stub_slept =
      reinterpret_cast<std::atomic<uint32_t>*>(&c->stub_waiting)->load(std::memory_order_seq_cst);
  if (stub_slept) FutexWake(w);
  // The next event's wait includes the stub's wakeup if it slept.
  if (!WaitEvent(/*guest=*/true, now, /*stub_woken=*/stub_slept)) return false;
  // signo 0: the fast entry posted (a handler's event always has a signal).
  // The word is guest-writable; a guest that forges a fast event only
  // makes one of its own listed sites' syscalls (Classify).
  fast_ = fast_ok_ && c->signo == 0;
  if (fast_) return true;
  return LoadFrame();
}

Stop SystrapContext::Run(Registers& regs) {
  Stop stop;
  for (;;) {
    if (dead_) {
      stop.kind = StopKind::kDead;
      return stop;
    }
    const bool fast_reply = fast_;
    // The fast exit keeps GS at the slot and jumps with rflags restored
    // first: a GS of the guest's own, or TF (a trap in the exit's last
    // instructions), leave through a signal frame instead.
    const bool slow = fast_ && ((regs.eflags & kTrapFlag) != 0 || regs.gs_base != 0);
    if (!Resume(regs, slow)) {
      dead_ = true;
      continue;
    }
    if (fast_reply && slow && !fast_ && signo_ == SIGILL) {
      auto* k = reinterpret_cast<KernelUContext*>(as_->slot(slot_) + uc_off_);
      if (static_cast<uint64_t>(k->mcontext.gregs[REG_RIP]) ==
          as_->layout().entry + kStubFastSlow) {
        // The fast exit we asked for: the registers (and FP state, if the
        // sentry set it; else the thread's own is still live) go back
        // through this signal frame.
        if (fp_dirty_) {
          FpState fp;
          fp.CopyFrom(as_->slot(slot_) + kFastXsave, xsave_size_, xfeatures_);
          uint8_t* p;
          uint64_t features;
          const size_t len = FrameFp(&p, &features);
          fp.CopyTo(p, len, features);
        }
        fp_dirty_ = false;
        continue;
      }
    }
    fp_dirty_ = false;
    if (Classify(regs, stop)) return stop;
  }
}

bool SystrapContext::Classify(Registers& regs, Stop& stop) {
  CommPage* c = comm();
  if (fast_) {
    ReadGregs(reinterpret_cast<const greg_t*>(as_->slot(slot_) + kFastGregs), regs);
  } else {
    ReadGregs(reinterpret_cast<KernelUContext*>(as_->slot(slot_) + uc_off_)->mcontext.gregs, regs);
  }
  regs.fs_base = c->fs_base;
  regs.gs_base = c->gs_base;
  if (fast_ok_ && regs.gs_base == SystrapAddressSpace::StubSlot(slot_)) regs.gs_base = 0;
  regs.orig_rax = static_cast<uint64_t>(-1);
  if (fast_) {
    // The fast entry saved every register but rax (the site id), rcx and
    // r11 (free at a syscall); the site's number and return address come
    // from the sentry's own table, never from guest memory.
    const uint64_t id = fast_header()->id;
    std::optional<SiteTable::Site> site =
        id <= UINT32_MAX ? as_->SiteById(static_cast<uint32_t>(id)) : std::nullopt;
    if (!site.has_value()) {
      // Only a guest that jumped into the stub's text gets here (as with
      // any other stub code it runs, its address space dies).
      syscall(SYS_pidfd_send_signal, as_->process().pidfd(), SIGKILL, nullptr, 0);
      dead_ = true;
      stop.kind = StopKind::kDead;
      return true;
    }
    SiteSyscall(regs, site->addr + kSiteSize, site->nr, stop);
    return true;
  }
  siginfo_t info;
  std::memcpy(&info, as_->slot(slot_) + info_off_, sizeof(info));
  const int sig = static_cast<int>(signo_);
  if (sig == SIGSYS && info.si_code == 1 /* SYS_SECCOMP */) {
    // SECCOMP_RET_TRAP rolled rax back to the syscall number and left rip
    // past the instruction (seccomp(2), syscall_rollback()), as a ptrace
    // syscall stop reports them.
    regs.orig_rax = regs.rax;
    regs.rax = static_cast<uint64_t>(-ENOSYS);
    stop.kind = StopKind::kSyscall;
    if (as_->patching()) as_->NoteTrappedSyscall(*this, regs.rip, regs.orig_rax);
    return true;
  }
  if (as_->slots_made()) {
    SiteAction a;
    if (sig == SIGILL && regs.rip == as_->layout().entry + kStubFastFail) {
      // A patched site entered with a GS of the guest's own: rax = its id.
      std::optional<SiteTable::Site> site =
          regs.rax <= UINT32_MAX ? as_->SiteById(static_cast<uint32_t>(regs.rax)) : std::nullopt;
      if (site.has_value()) {
        SiteSyscall(regs, site->addr + kSiteSize, site->nr, stop);
        return true;
      }
    } else if (sig == SIGILL) {
      a = as_->TranslateSite(SiteEventKind::kIllegal, regs.rip, regs.rax);
    } else if (sig == SIGTRAP && info.si_code == TRAP_TRACE) {
      a = as_->TranslateSite(SiteEventKind::kSingleStep, regs.rip, regs.rax);
    } else if (!(IsFaultSignal(sig) && info.si_code > 0)) {
      a = as_->TranslateSite(SiteEventKind::kInterrupt, regs.rip, regs.rax);
    }
    switch (a.kind) {
      case SiteAction::kNone:
        break;
      case SiteAction::kSyscall:
        SiteSyscall(regs, a.rip, a.nr, stop);
        return true;
      case SiteAction::kResumeAt:
        regs.rip = a.rip;
        if (a.set_rax) regs.rax = a.nr;
        // A site caught mid-rewrite: run it again. A kick in a slot: the
        // state the unpatched code would be in.
        if (sig == SIGILL) return false;
        stop.kind = StopKind::kInterrupt;
        return true;
    }
  }
  if (IsFaultSignal(sig) && info.si_code > 0) {
    stop.kind = StopKind::kFault;
    stop.info = info;
  } else {
    stop.kind = StopKind::kInterrupt;
  }
  return true;
}

}  // namespace seedvisor::platform::systrap
