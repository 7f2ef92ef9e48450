#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_guest.h"
#include "platform/kvm/kvm_host_maps.h"
#include "platform/stub/await_slot_release.h"

namespace seedvisor::platform::kvm {
namespace {

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::atomic<uint32_t>* Word(uint32_t* w) {
  // SAFETY: a 4-byte aligned word of the shared comm page, accessed atomically.
  return reinterpret_cast<std::atomic<uint32_t>*>(w);
}

constexpr uint32_t kMsrFsBase = 0xc0000100, kMsrGsBase = 0xc0000101;
// The flags a guest may set (Linux's FLAG_MASK): CF PF AF ZF SF TF DF OF AC ID.
constexpr uint64_t kUserFlags = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x200000;
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

KvmContext::KvmContext(std::shared_ptr<KvmAddressSpace> as, pid_t tid, int slot)
    : as_(std::move(as)),
      pool_(as_->vcpus()),
      tid_(tid),
      slot_(slot),
      owner_(HostTid()),
      stub_spin_(as_->shared().stub_spin_max) {
  as_->contexts().Register(owner_, this);
}

kvm_run* KvmContext::mirror() const {
  // SAFETY: the mirror is an 8-aligned copy of kvm_run's first kMirrorSize
  // bytes in the slot's comm page; only fields below that size are used.
  return reinterpret_cast<kvm_run*>(as_->slot_base(slot_) + kMirrorOff);
}

uint64_t KvmContext::PutArgs(const void* data, size_t len, size_t off) {
  std::memcpy(as_->slot_base(slot_) + kArgsOff + off, data, len);
  return SlotAddr(slot_) + kArgsOff + off;
}

void KvmContext::GetArgs(void* data, size_t len, size_t off) const {
  std::memcpy(data, as_->slot_base(slot_) + kArgsOff + off, len);
}

absl::StatusOr<std::unique_ptr<KvmContext>> KvmContext::Create(std::shared_ptr<KvmAddressSpace> as,
                                                               pid_t tid) {
  int slot = as->slots().Take(tid);
  if (slot < 0) slot = as->slots().Alloc();
  if (slot < 0) return absl::ResourceExhaustedError("kvm: no free thread slot");
  CommPage* c = as->comm(slot);
  c->state = kStateIdle;
  c->vcpu_fd = 0;
  c->sentry_waiting = c->stub_waiting = 0;
  c->urg_set = uint64_t{1} << (SIGURG - 1);
  c->zero_ts[0] = c->zero_ts[1] = 0;
  c->stub_spin = 0;
  bool ok = false;
  {
    stub::Injector inj(tid, as->layout().entry);
    Registers r;
    if (inj.ok() && ::ptrace(PTRACE_GETREGS, tid, nullptr, &r) == 0) {
      r.rip = as->layout().entry + kStubEnter;
      r.rdi = SlotAddr(slot);
      r.rsp = SlotAddr(slot) + kSlotSize - 64;
      r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart
      ok = ::ptrace(PTRACE_SETREGS, tid, nullptr, &r) == 0;
    }
  }  // detached: the thread runs into `enter` and posts its first event
  std::unique_ptr<KvmContext> ctx(new KvmContext(as, tid, slot));
  if (!ok || !ctx->WaitEvent()) {
    ctx->dead_ = true;
    return absl::InternalError(absl::StrCat("kvm: starting stub thread ", tid, " failed"));
  }
  // A vCPU of its own while the VM has fewer than max_vcpus, its id taken
  // and held in the same step (made here, as a thread's always was;
  // failures fail the clone); else one when it runs. Its FP state is
  // loaded when it first runs.
  {
    VcpuPool& pool = ctx->pool_;
    absl::MutexLock l(&pool.mu);
    if (pool.made >= as->shared().max_vcpus) return ctx;
    ctx->vcpu_ = pool.made++;
    pool.claims[ctx->vcpu_].runner = ctx.get();
  }
  if (absl::Status s = ctx->MakeHeldVcpu(); !s.ok()) {
    ctx->dead_ = !ctx->Alive();
    return s;
  }
  ctx->ReleaseVcpu();
  return ctx;
}

KvmContext::~KvmContext() {
  as_->contexts().Unregister(owner_);
  {
    // A vCPU that holds this thread's FP state holds nobody's now; one
    // that another thread holds is moving it out: that thread uses this
    // one (and its slot) until it has.
    absl::MutexLock l(&pool_.mu);
    AwaitFpReachableLocked();
    if (fp_vcpu_ >= 0) pool_.claims[fp_vcpu_].fp_owner = nullptr;
    fp_vcpu_ = -1;
  }
  bool gone = dead_ && !Alive();
  if (!dead_ && Post(kStateExit)) {
    gone = stub::AwaitSlotRelease(Word(&comm()->state), kStateGone, [this] { return Alive(); });
  }
  if (gone) as_->slots().Free(slot_);  // else leak it: a stuck thread still owns it
}

bool KvmContext::Alive() const {
  pollfd p{as_->process().pidfd(), POLLIN, 0};
  if (p.fd >= 0 && poll(&p, 1, 0) > 0) return false;
  return syscall(SYS_tgkill, as_->host_pid(), tid_, 0) == 0;
}

void KvmContext::TuneStubSpin(CommPage* c) {
  // post_tsc lies in the platform's region, which the guest cannot write
  // (supervisor-only pages); the stub caps the spin anyway.
  const uint64_t now = systrap::ReadTsc();
  const uint64_t posted = c->post_tsc;
  stub_spin_.Record(stub_budget_, now > posted ? now - posted : 0);
  stub_budget_ = systrap::CpuContended() ? 0 : stub_spin_.NextBudget();
  c->stub_spin = stub_budget_;
}

bool KvmContext::Post(uint32_t state) {
  CommPage* c = comm();
  if (state != kStateExit) TuneStubSpin(c);
  Word(&c->state)->store(state, std::memory_order_seq_cst);  // before we look at stub_waiting
  if (Word(&c->stub_waiting)->load(std::memory_order_seq_cst)) {
    ++stub_sleeps_;
    syscall(SYS_futex, Word(&c->state), FUTEX_WAKE, 1, nullptr, nullptr, 0);
  }
  return true;
}

bool KvmContext::WaitEvent() {
  CommPage* c = comm();
  auto* w = Word(&c->state);
  auto* waiting = Word(&c->sentry_waiting);
  for (;;) {
    waiting->store(1, std::memory_order_seq_cst);  // before we look at state
    uint32_t s = w->load(std::memory_order_seq_cst);
    if (s == kStateEvent) {
      waiting->store(0, std::memory_order_relaxed);
      return true;
    }
    timespec ts{0, 100'000'000};
    long r = syscall(SYS_futex, w, FUTEX_WAIT, s, &ts, nullptr, 0);
    waiting->store(0, std::memory_order_relaxed);
    if (r < 0 && errno == ETIMEDOUT && !Alive()) return false;
  }
}

long KvmContext::StubCall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  if (dead_) return -ESRCH;
  CommPage* c = comm();
  c->call_nr = static_cast<uint64_t>(nr);
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  for (int i = 0; i < 6; ++i) c->call_args[i] = static_cast<uint64_t>(args[i]);
  Post(kStateCall);
  if (!WaitEvent()) {
    dead_ = true;
    return -ESRCH;
  }
  return static_cast<long>(c->call_ret);
}

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

void KvmContext::Interrupt() {
  // Pending until a KVM_RUN sees it (the stub blocks SIGURG outside one).
  syscall(SYS_tgkill, as_->host_pid(), tid_, SIGURG);
}

Result<ThreadHandle> KvmContext::NewThread() {
  return stub::NewStubThread(tid_, as_->layout().entry, as_->slots());
}

Result<std::shared_ptr<AddressSpace>> KvmContext::ForkAddressSpace() {
  // Our parent is the child's: it dies with it as we do.
  const long pid = stub::ForkTied(as_->dies_with(), as_->layout().entry, [&](long flags) {
    stub::Injector inj(tid_, as_->layout().entry);
    const long args[6] = {CLONE_PARENT | SIGCHLD | flags, 0, 0, 0, 0, 0};
    return inj.CallAt(stub::kStubForkGadget, SYS_clone, args);
  });
  if (pid < 0) return Errno(static_cast<int>(-pid));
  // The child has the guest's memory (copy-on-write) but not the VM: KVM
  // serves only the mm that made it. It gets its own, on the same GiBs.
  auto as = KvmAddressSpace::Create(static_cast<pid_t>(pid), as_->layout(),
                                    as_->shared_handle(), as_.get());
  if (!as.ok()) {
    kill(static_cast<pid_t>(pid), SIGKILL);
    return Errno(EAGAIN);
  }
  (*as)->set_dies_with(as_->dies_with());
  return std::shared_ptr<AddressSpace>(*as);
}

int64_t KvmContext::CpuTimeNs() const { return as_->process().ThreadCpuTimeNs(tid_); }

long KvmContext::ThreadSyscall(long nr, const long (&args)[6]) {
  if (nr == kAtomicUpdate32Call) {
    // The stub maps guest memory at the guest's addresses (the VM's
    // memslots), so its lock cmpxchg acts on the guest's word.
    static_assert(kAtomicUpdate32Call == stub::kStubAtomicUpdate32Call);
    return StubCall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  }
  if (nr != kSysGetcpu) return -ENOSYS;
  unsigned cpu = 0, node = 0;
  getcpu(&cpu, &node);
  const uint64_t where[2] = {static_cast<uint64_t>(args[0]), static_cast<uint64_t>(args[1])};
  const unsigned what[2] = {cpu, node};
  for (int i = 0; i < 2; ++i) {
    if (where[i] == 0) continue;
    Result<size_t> n = as_->Write(UserAddr(where[i]), &what[i], sizeof(what[i]));
    if (!n.ok() || *n != sizeof(what[i])) return -EFAULT;
  }
  return 0;
}

}  // namespace seedvisor::platform::kvm
