// The VM's vCPUs, shared by the threads of an address space (VcpuPool in
// kvm_address_space.h; README.md, "vCPUs"), and the FP state that moves
// between them.
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_guest.h"

namespace seedvisor::platform::kvm {
namespace {

constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrSfmask = 0xc0000084;

// How long the first thread in line waits for a free vCPU before it kicks
// a runner out (who then queues behind it), as a host tick would preempt.
constexpr absl::Duration kVcpuWaitSlice = absl::Milliseconds(10);

}  // namespace

int KvmContext::PickVcpuLocked() {
  if (vcpu_ >= 0 && pool_.claims[vcpu_].runner == nullptr && !pool_.claims[vcpu_].broken) {
    return vcpu_;
  }
  if (pool_.made < as_->shared().max_vcpus) return pool_.made++;
  // Every vCPU is made: a free one, best one whose FP state is nobody's.
  int any = -1;
  for (int v = 0; v < pool_.made; ++v) {
    if (pool_.claims[v].runner != nullptr || pool_.claims[v].broken) continue;
    if (pool_.claims[v].fp_owner == nullptr) return v;
    if (any < 0) any = v;
  }
  return any;
}

absl::StatusOr<int> KvmContext::AwaitVcpuLocked() {
  int v = -1;
  sentry::MonoCondVar turn;
  bool queued = false;
  for (;;) {
    // Behind others in line: only the first may pick.
    if (queued ? pool_.line.front() == &turn : pool_.line.empty()) {
      v = PickVcpuLocked();
      if (v < 0 && pool_.broken >= as_->shared().max_vcpus) {
        // None can ever run: fail rather than wait for one forever.
        if (queued) {
          pool_.line.pop_front();
          pool_.WakeFirstLocked();
        }
        return absl::UnavailableError("kvm: no vCPU of this VM could be made");
      }
    }
    if (v >= 0) break;
    if (!queued) {
      pool_.line.push_back(&turn);
      queued = true;
      continue;
    }
    if (pool_.line.front() != &turn) {
      turn.Wait(&pool_.mu);
      continue;
    }
    // The slice on the monotonic clock (abseil's timed waits end on the
    // wall clock, which a step would stretch).
    if (turn.WaitUntil(&pool_.mu, sentry::Deadline::In(kVcpuWaitSlice))) {
      // Every vCPU has run the same threads for a while: kick one out.
      for (int i = 0; i < pool_.made; ++i) {
        const VcpuPool::Claim& c = pool_.claims[pool_.kick_next];
        pool_.kick_next = (pool_.kick_next + 1) % pool_.made;
        const KvmContext* k = c.runner;
        if (k == nullptr || k == this || !c.guest) continue;
        // SAFETY: a runner is alive while it holds its vCPU, which it
        // gives back only under pool_.mu.
        const_cast<KvmContext*>(k)->Interrupt();
        break;
      }
    }
  }
  if (queued) {
    pool_.line.pop_front();
    pool_.WakeFirstLocked();  // the next in line may find another free vCPU
  }
  pool_.claims[v].runner = this;
  return v;
}

absl::Status KvmContext::HoldVcpu() {
  {
    absl::MutexLock l(&pool_.mu);
    absl::StatusOr<int> v = AwaitVcpuLocked();
    if (!v.ok()) return v.status();
    vcpu_ = *v;
    // The run's fast path: back on the vCPU that holds this thread's FP
    // state (always, while the thread has a vCPU of its own).
    if (pool_.claims[vcpu_].fp_owner == this) {
      pool_.claims[vcpu_].guest = true;
      comm()->vcpu_fd = held().fd;
      comm()->run_addr = kRunBase + static_cast<uint64_t>(vcpu_) * kRunStride;
      return absl::OkStatus();
    }
  }
  comm()->run_addr = kRunBase + static_cast<uint64_t>(vcpu_) * kRunStride;
  if (held().fd == 0) {
    if (absl::Status s = MakeHeldVcpu(); !s.ok()) return s;
  }
  comm()->vcpu_fd = held().fd;
  if (absl::Status s = TakeFp(); !s.ok()) {
    ReleaseVcpu();
    return s;
  }
  absl::MutexLock l(&pool_.mu);
  pool_.claims[vcpu_].guest = true;
  return absl::OkStatus();
}

absl::Status KvmContext::MakeHeldVcpu() {
  absl::Status s = SetUpVcpu(vcpu_);
  if (s.ok()) return s;
  absl::MutexLock l(&pool_.mu);
  pool_.claims[vcpu_].broken = true;
  ++pool_.broken;
  pool_.claims[vcpu_].runner = nullptr;
  pool_.WakeFirstLocked();
  return s;
}

void KvmContext::ReleaseVcpu() {
  absl::MutexLock l(&pool_.mu);
  pool_.claims[vcpu_].runner = nullptr;
  pool_.claims[vcpu_].guest = false;
  pool_.WakeFirstLocked();
}

bool KvmContext::FpReachable() const {
  return fp_vcpu_ < 0 || pool_.claims[fp_vcpu_].runner == nullptr;
}

void KvmContext::AwaitFpReachableLocked() {
  pool_.mu.Await(absl::Condition(static_cast<const KvmContext*>(this),
                                        &KvmContext::FpReachable));
}

int KvmContext::HoldFpVcpuLocked() {
  AwaitFpReachableLocked();
  if (fp_vcpu_ >= 0) pool_.claims[fp_vcpu_].runner = this;
  return fp_vcpu_;
}

void KvmContext::ReleaseFpVcpuLocked(int v) {
  pool_.claims[v].runner = nullptr;
  pool_.WakeFirstLocked();
}

bool KvmContext::Xsave(unsigned long req, int v, const KvmContext& owner) {
  return StubCall(SYS_ioctl, pool_.vcpus[v].fd, static_cast<long>(req),
                  static_cast<long>(SlotAddr(owner.slot_) + kXsaveOff)) == 0;
}

absl::Status KvmContext::TakeFp() {
  auto fail = [&](const char* what) {
    return absl::InternalError(absl::StrCat("kvm: vCPU ", vcpu_, ": ", what));
  };
  const KvmContext* last;
  {
    absl::MutexLock l(&pool_.mu);
    last = pool_.claims[vcpu_].fp_owner;
  }
  if (last == this) return absl::OkStatus();
  if (last != nullptr) {
    // The state of the thread that ran here last moves to its buffer. It
    // stays in this vCPU, which this thread holds, until then, and its
    // thread waits for that (FpReachable) before it touches it or goes
    // away: `last` is alive.
    if (!Xsave(kKvmGetXsave, vcpu_, *last)) {
      return fail("KVM_GET_XSAVE of the thread that ran there");
    }
    absl::MutexLock l(&pool_.mu);
    // SAFETY: only this thread changes another's FP location, under pool_.mu.
    KvmContext* moved = const_cast<KvmContext*>(last);
    moved->pool_.mu.AssertHeld();  // the same pool: a thread of this address space
    pool_.claims[vcpu_].fp_owner = nullptr;
    moved->fp_vcpu_ = -1;
    moved->fp_in_buffer_ = true;
  }
  bool in_buffer;
  {
    // Ours, if it is in another vCPU (which nobody runs: whoever took it
    // would have moved ours out first), moves to our buffer.
    absl::MutexLock l(&pool_.mu);
    const int d = HoldFpVcpuLocked();
    if (d >= 0) {
      pool_.mu.Unlock();
      const bool ok = Xsave(kKvmGetXsave, d, *this);
      pool_.mu.Lock();
      if (ok) {
        pool_.claims[d].fp_owner = nullptr;
        fp_vcpu_ = -1;
        fp_in_buffer_ = true;
      }
      ReleaseFpVcpuLocked(d);
      if (!ok) return fail("KVM_GET_XSAVE of this thread's last vCPU");
    }
    in_buffer = fp_in_buffer_;
  }
  // Our state is in no vCPU now: nobody but this thread touches our buffer.
  if (!in_buffer) {
    // Never given a state (no SetFpState) and never run: start from the
    // init state, not whatever the vCPU's last thread (of this process or
    // of another sharing the address space) left in its registers.
    FpState().CopyTo(as_->slot_base(slot_) + kXsaveOff, kXsaveImage, FpState::HostFeatures());
  }
  if (!Xsave(kKvmSetXsave, vcpu_, *this)) {
    absl::MutexLock l(&pool_.mu);
    fp_in_buffer_ = true;
    return fail("KVM_SET_XSAVE");
  }
  absl::MutexLock l(&pool_.mu);
  pool_.claims[vcpu_].fp_owner = this;
  fp_vcpu_ = vcpu_;
  fp_in_buffer_ = false;
  return absl::OkStatus();
}

Status KvmContext::GetFpState(FpState& fp) {
  if (dead_) return Errno(ESRCH);
  const uint8_t* buf = as_->slot_base(slot_) + kXsaveOff;
  absl::MutexLock l(&pool_.mu);
  const int d = HoldFpVcpuLocked();
  if (d < 0) {
    // In our buffer, where only this thread touches it now, or never set
    // and never run: the init state it would start with.
    if (!fp_in_buffer_) {
      fp = FpState();
    } else {
      fp.CopyFrom(buf, kXsaveImage, FpState::HostFeatures());
    }
    return {};
  }
  // In vCPU d, which this thread holds for the copy: nobody moves ours into
  // the buffer meanwhile. The state stays in d.
  pool_.mu.Unlock();
  const bool ok = Xsave(kKvmGetXsave, d, *this);
  if (ok) fp.CopyFrom(buf, kXsaveImage, FpState::HostFeatures());
  pool_.mu.Lock();
  ReleaseFpVcpuLocked(d);
  return ok ? Status{} : Errno(EIO);
}

Status KvmContext::SetFpState(const FpState& fp) {
  if (dead_) return Errno(ESRCH);
  {
    absl::MutexLock l(&pool_.mu);
    AwaitFpReachableLocked();
    if (fp_vcpu_ >= 0) {
      // The vCPU's copy is nobody's now: the next run loads the buffer's.
      pool_.claims[fp_vcpu_].fp_owner = nullptr;
      fp_vcpu_ = -1;
    }
    fp_in_buffer_ = true;
  }
  // In no vCPU: only this thread touches our buffer.
  fp.CopyTo(as_->slot_base(slot_) + kXsaveOff, kXsaveImage, FpState::HostFeatures());
  return {};
}

absl::Status KvmContext::SetUpVcpu(int v) {
  auto fail = [&](const char* what, long r) {
    return absl::InternalError(absl::StrCat("kvm: vCPU ", v, ": ", what, ": ",
                                            std::strerror(static_cast<int>(r < 0 ? -r : EIO))));
  };
  const KvmShared& sh = as_->shared();
  VcpuPool::Vcpu& c = pool_.vcpus[v];
  long fd = StubCall(SYS_ioctl, as_->vm_fd(), KVM_CREATE_VCPU, v);
  if (fd <= 0) return fail("KVM_CREATE_VCPU", fd);
  const uint64_t run = kRunBase + static_cast<uint64_t>(v) * kRunStride;
  long r = StubCall(SYS_mmap, static_cast<long>(run), sh.vcpu_mmap_size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, fd, 0);
  if (r < 0 && r > -4096) {
    StubCall(SYS_close, fd);
    return fail("mapping kvm_run", r);
  }
  StubCall(SYS_madvise, static_cast<long>(run), sh.vcpu_mmap_size, MADV_DONTFORK);
  // From here a failure closes the vCPU's fd in the stub too.
  auto fail_made = [&](const char* what, long err) {
    StubCall(SYS_close, fd);
    return fail(what, err);
  };
  r = StubCall(SYS_ioctl, fd, kKvmSetCpuid2, static_cast<long>(kRegionBase + kCpuidOff));
  if (r != 0) return fail_made("KVM_SET_CPUID2", r);
  kvm_sregs s;
  r = StubCall(SYS_ioctl, fd, KVM_GET_SREGS, static_cast<long>(PutArgs(&s, 0)));
  if (r != 0) return fail_made("KVM_GET_SREGS", r);
  GetArgs(&s, sizeof(s));
  s = InitialSregs(s, v);
  WriteSlotTss(as_->region(), v);
  r = StubCall(SYS_ioctl, fd, KVM_SET_SREGS, static_cast<long>(PutArgs(&s, sizeof(s))));
  if (r != 0) return fail_made("KVM_SET_SREGS", r);
  Msrs m{};
  m.nmsrs = 3;
  m.e[0].index = kMsrStar, m.e[0].data = (uint64_t{0x23} << 48) | (uint64_t{kKernelCs} << 32);
  m.e[1].index = kMsrLstar, m.e[1].data = LstarAddr();
  m.e[2].index = kMsrSfmask, m.e[2].data = 0x47700;  // TF IF DF NT AC, as Linux
  r = StubCall(SYS_ioctl, fd, kKvmSetMsrs, static_cast<long>(PutArgs(&m, sizeof(m))));
  if (r != 3) return fail_made("KVM_SET_MSRS (STAR, LSTAR, SFMASK)", r < 0 ? r : -EINVAL);
  kvm_xcrs x{};
  x.nr_xcrs = 1;
  x.xcrs[0].xcr = 0;
  x.xcrs[0].value = sh.xcr0;
  r = StubCall(SYS_ioctl, fd, KVM_SET_XCRS, static_cast<long>(PutArgs(&x, sizeof(x))));
  if (r != 0) return fail_made("KVM_SET_XCRS", r);
  if (sh.vdso) {
    // The guest's TSC is the host's: the vDSO scales a TSC read in the VM
    // with the host's vvar data (README.md, "The vDSO"). KVM starts a VM's
    // TSC near 0 elsewhere; on this host (PVM) the offset is 0 already.
    struct {
      kvm_device_attr attr;
      uint64_t offset;
    } a{};
    const uint64_t at = PutArgs(&a, sizeof(a));
    a.attr.group = KVM_VCPU_TSC_CTRL;
    a.attr.attr = KVM_VCPU_TSC_OFFSET;
    a.attr.addr = at + offsetof(decltype(a), offset);
    PutArgs(&a, sizeof(a));
    r = StubCall(SYS_ioctl, fd, KVM_SET_DEVICE_ATTR, static_cast<long>(at));
    if (r != 0) return fail_made("KVM_SET_DEVICE_ATTR (TSC offset 0, for the vDSO)", r);
  }
  // SIGURG may interrupt KVM_RUN (the thread blocks it everywhere else).
  struct {  // struct kvm_signal_mask with an 8-byte (empty) set
    uint32_t len;
    uint8_t set[8];
  } mask{};
  mask.len = 8;
  r = StubCall(SYS_ioctl, fd, kKvmSetSignalMask, static_cast<long>(PutArgs(&mask, sizeof(mask))));
  if (r != 0) return fail_made("KVM_SET_SIGNAL_MASK", r);
  c.ring0 = true;
  c.fs_base = c.gs_base = 0;
  c.fd = static_cast<int>(fd);  // last: a vCPU with an fd is a made one
  return absl::OkStatus();
}

}  // namespace seedvisor::platform::kvm
