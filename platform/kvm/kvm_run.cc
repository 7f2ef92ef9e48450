// KvmContext: running the guest on a vCPU until its next event (Run,
// RunOnce): its registers in and out of the vCPU, a kick, a VM exit that
// is a syscall or a fault, and a stub that is no use any more (Dead).
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>

#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_guest.h"
#include "platform/kvm/kvm_host_maps.h"

namespace seedvisor::platform::kvm {
namespace {

constexpr uint32_t kMsrFsBase = 0xc0000100, kMsrGsBase = 0xc0000101;
// The flags a guest may set (Linux's FLAG_MASK): CF PF AF ZF SF TF DF OF AC ID.
constexpr uint64_t kUserFlags =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x200000;
constexpr uint64_t kFlagsFixed = 0x202;  // IF and the reserved bit 1

// The exception frame an exception stub leaves at the top of the vCPU's
// ring-0 stack (IST1, in slot N for vCPU N): what it pushed, then what the
// CPU pushed.
struct ExcFrame {
  uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

siginfo_t FaultInfo(const ExcFrame& f, uint64_t cr2, bool has_mapping) {
  siginfo_t info{};
  info.si_code = SI_KERNEL;
  uint64_t addr = 0;
  switch (f.vector) {
    case 0:  // #DE
      info.si_signo = SIGFPE, info.si_code = FPE_INTDIV, addr = f.rip;
      break;
    case 1:  // #DB: a single step
      info.si_signo = SIGTRAP, info.si_code = TRAP_TRACE, addr = f.rip;
      break;
    case 3:  // #BP: int3 (rip is past it)
      info.si_signo = SIGTRAP;
      break;
    case 6:  // #UD
      info.si_signo = SIGILL, info.si_code = ILL_ILLOPN, addr = f.rip;
      break;
    case 11:  // #NP
    case 12:  // #SS
      info.si_signo = SIGBUS;
      break;
    case 14:  // #PF: the guest's PTEs follow its mappings (kvm_guest.h)
      info.si_signo = SIGSEGV;
      info.si_code = ((f.error & 1) || has_mapping) ? SEGV_ACCERR : SEGV_MAPERR;
      addr = cr2;
      break;
    case 16:  // #MF
    case 19:  // #XM
      info.si_signo = SIGFPE, info.si_code = FPE_FLTINV, addr = f.rip;
      break;
    case 17:  // #AC
      info.si_signo = SIGBUS, info.si_code = BUS_ADRALN, addr = cr2;
      break;
    default:  // #GP and the rest
      info.si_signo = SIGSEGV;
      break;
  }
  // SAFETY: only reported to the guest.
  info.si_addr = reinterpret_cast<void*>(addr);
  return info;
}

void CopyRegsOut(const kvm_regs& r, Registers& regs) {
  regs.r8 = r.r8, regs.r9 = r.r9, regs.r10 = r.r10, regs.r11 = r.r11;
  regs.r12 = r.r12, regs.r13 = r.r13, regs.r14 = r.r14, regs.r15 = r.r15;
  regs.rdi = r.rdi, regs.rsi = r.rsi, regs.rbp = r.rbp, regs.rbx = r.rbx;
  regs.rdx = r.rdx, regs.rax = r.rax, regs.rcx = r.rcx, regs.rsp = r.rsp;
  regs.rip = r.rip, regs.eflags = r.rflags;
  regs.orig_rax = static_cast<uint64_t>(-1);
}

void CopyRegsIn(const Registers& regs, kvm_regs& r) {
  r.r8 = regs.r8, r.r9 = regs.r9, r.r10 = regs.r10, r.r11 = regs.r11;
  r.r12 = regs.r12, r.r13 = regs.r13, r.r14 = regs.r14, r.r15 = regs.r15;
  r.rdi = regs.rdi, r.rsi = regs.rsi, r.rbp = regs.rbp, r.rbx = regs.rbx;
  r.rdx = regs.rdx, r.rax = regs.rax, r.rcx = regs.rcx, r.rsp = regs.rsp;
  r.rip = regs.rip, r.rflags = (regs.eflags & kUserFlags) | kFlagsFixed;
}

}  // namespace

Stop KvmContext::Dead(const char* why) {
  (void)why;
  dead_ = true;
  // The stub and its VM are of no use any more; every task in this address
  // space sees a dead context and is killed.
  syscall(SYS_pidfd_send_signal, as_->process().pidfd(), SIGKILL, nullptr, 0);
  Stop stop;
  stop.kind = StopKind::kDead;
  return stop;
}

Stop KvmContext::Run(Registers& regs) {
  fixup_ = {};
  for (;;) {
    bool again = false;
    Stop stop = RunOnce(regs, &again);
    if (!again) return stop;
  }
}

bool KvmContext::FixedUp(uint64_t rip, uint64_t addr) {
  const Fixup f{rip, addr};
  if (f.rip == fixup_.rip && f.addr == fixup_.addr) return false;  // no progress
  fixup_ = f;
  return true;
}

Stop KvmContext::RunOnce(Registers& regs, bool* again) {
  Stop stop;
  if (dead_) {
    stop.kind = StopKind::kDead;
    return stop;
  }
  if (!HoldVcpu().ok()) return Dead("no vCPU could be made");
  struct Holding {
    KvmContext* ctx;
    ~Holding() { ctx->ReleaseVcpu(); }
  } holding{this};
  VcpuPool::Vcpu& vcpu = held();
  kvm_run* m = mirror();
  kvm_regs& r = m->s.regs.regs;
  if (vcpu.ring0) {
    // Into ring 3 through `resume`: fs and gs bases, rax, an iretq frame.
    const uint64_t frame[8] = {regs.fs_base, regs.gs_base, regs.rax, regs.rip, kUserCs,
                               (regs.eflags & kUserFlags) | kFlagsFixed, regs.rsp, kUserDs};
    std::memcpy(as_->slot_base(vcpu_) + kStackTopOff - sizeof(frame), frame, sizeof(frame));
    CopyRegsIn(regs, r);
    r.rsp = StackTop(vcpu_) - sizeof(frame);
    r.rip = ResumeAddr();
    r.rflags = 2;
  } else {
    // Stopped in ring 3: the registers are set as they are.
    CopyRegsIn(regs, r);
    if (regs.fs_base != vcpu.fs_base || regs.gs_base != vcpu.gs_base) {
      Msrs msrs{};
      msrs.nmsrs = 2;
      msrs.e[0].index = kMsrFsBase, msrs.e[0].data = regs.fs_base;
      msrs.e[1].index = kMsrGsBase, msrs.e[1].data = regs.gs_base;
      long n = StubCall(SYS_ioctl, vcpu.fd, kKvmSetMsrs,
                        static_cast<long>(PutArgs(&msrs, sizeof(msrs))));
      if (n != 2) return Dead("KVM_SET_MSRS (FS_BASE, GS_BASE)");
    }
  }
  m->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
  m->kvm_dirty_regs = KVM_SYNC_X86_REGS;
  long ret;
  const kvm_sregs& s = m->s.regs.sregs;
  for (;;) {
    Post(kStateRun);
    if (!WaitEvent()) return Dead("the stub thread died");
    ++exits_;
    ret = comm()->run_ret;
    vcpu.ring0 = s.cs.dpl == 0;
    // A kick that caught the vCPU between an event and its exit (in an
    // exception stub, or in ring 3 on the LSTAR page mid-syscall): the
    // guest's state is half in the platform's hands. Let it finish
    // (registers untouched); its exit answers the kick as well.
    const bool in_resume = r.rip >= ResumeAddr() && r.rip < ResumeAddr() + kExcStubSize;
    const bool in_lstar = (r.rip & ~uint64_t{0xfff}) == LstarAddr();
    if (ret == -EINTR && ((vcpu.ring0 && !in_resume) || (!vcpu.ring0 && in_lstar))) {
      m->kvm_dirty_regs = 0;
      continue;
    }
    break;
  }
  vcpu.fs_base = s.fs.base;
  vcpu.gs_base = s.gs.base;
  if (ret == -EINTR) {
    // A kick (Interrupt). In ring 3 the guest ran: its state is the vCPU's.
    // In ring 0 it is still in `resume`: `regs` hold its state.
    if (!vcpu.ring0) {
      CopyRegsOut(r, regs);
      regs.fs_base = vcpu.fs_base, regs.gs_base = vcpu.gs_base;
    }
    stop.kind = StopKind::kInterrupt;
    return stop;
  }
  if (ret == -EFAULT && !vcpu.ring0) {
    // The host refused an access that the guest's PTEs allow: one past the
    // end of a file or shared memory object (SIGBUS). KVM names the page
    // when it fills in a memory-fault exit; this host's PVM leaves the
    // exit unknown. So the pages past every object's end lose their PTEs
    // and the access runs again, to fault in the VM with its address
    // (below). If that finds nothing, or the same access comes back here,
    // the guest gets SIGSEGV without an address, as Linux reports a #GP.
    CopyRegsOut(r, regs);
    regs.fs_base = vcpu.fs_base, regs.gs_base = vcpu.gs_base;
    if (FixedUp(regs.rip, 0) && as_->HidePastEnd()) {
      *again = true;
      return stop;
    }
    stop.kind = StopKind::kFault;
    stop.info.si_signo = SIGSEGV;
    stop.info.si_code = SI_KERNEL;
    constexpr uint32_t kExitMemoryFault = 39;  // KVM_EXIT_MEMORY_FAULT (Linux 6.8)
    if (m->exit_reason == kExitMemoryFault) {
      uint64_t gpa;  // memory_fault.gpa: guest-physical = guest-virtual here
      std::memcpy(&gpa, reinterpret_cast<const uint8_t*>(m) + offsetof(kvm_run, mmio) + 8, 8);
      uint8_t probe;
      stop.info.si_code = as_->Read(UserAddr(gpa), &probe, 1).ok() ? SEGV_ACCERR : SEGV_MAPERR;
      // SAFETY: only reported to the guest.
      stop.info.si_addr = reinterpret_cast<void*>(gpa);
    }
    return stop;
  }
  if (ret < 0) return Dead("KVM_RUN failed");
  if (m->exit_reason != KVM_EXIT_IO || m->io.port != kExitPort || !vcpu.ring0) {
    return Dead("an unexpected VM exit");
  }
  ExcFrame f;
  std::memcpy(&f, as_->slot_base(vcpu_) + kStackTopOff - sizeof(f), sizeof(f));
  if ((f.cs & 3) != 3) {
    // A fault in `resume` itself: the state handed in cannot run (a
    // non-canonical rip, say), which Linux answers with SIGSEGV.
    stop.kind = StopKind::kFault;
    stop.info.si_signo = SIGSEGV;
    stop.info.si_code = SI_KERNEL;
    return stop;
  }
  CopyRegsOut(r, regs);
  regs.rip = f.rip, regs.rsp = f.rsp, regs.eflags = f.rflags;
  regs.fs_base = vcpu.fs_base, regs.gs_base = vcpu.gs_base;
  if (f.vector == 13 && f.rip == LstarAddr()) {
    // A syscall: it jumped to LSTAR (rcx: where it returns, r11: its flags).
    regs.rip = regs.rcx;
    regs.eflags = regs.r11;
    regs.orig_rax = regs.rax;
    regs.rax = static_cast<uint64_t>(-ENOSYS);
    stop.kind = StopKind::kSyscall;
    return stop;
  }
  stop.kind = StopKind::kFault;
  // A not-present #PF in a host mapping is PROT_NONE (SIGSEGV, an access
  // error), or a page of a file or shared memory object whose PTE
  // HidePastEnd cleared: SIGBUS if it still lies past the object's end,
  // else its PTE comes back and the access runs again. The stub's maps
  // say which (rare: a fault the guest sees).
  std::optional<HostVma> vma;
  if (f.vector == 14 && (f.error & 1) == 0 && s.cr2 < as_->UserTop().value()) {
    vma = FindHostVma(as_->host_pid(), s.cr2);
  }
  if (vma && vma->backed && vma->prot != PROT_NONE) {
    if (as_->PastEnd(s.cr2)) {
      stop.info.si_signo = SIGBUS;
      stop.info.si_code = BUS_ADRERR;
      // SAFETY: only reported to the guest.
      stop.info.si_addr = reinterpret_cast<void*>(s.cr2);
      return stop;
    }
    if (FixedUp(regs.rip, s.cr2)) {
      as_->ShowPage(s.cr2, vma->prot);
      *again = true;
      return stop;
    }
  }
  stop.info = FaultInfo(f, s.cr2, vma.has_value());
  return stop;
}

}  // namespace seedvisor::platform::kvm
