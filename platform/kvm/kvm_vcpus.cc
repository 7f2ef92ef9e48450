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
  VcpuPool& p = as_->vcpus();
  if (vcpu_ >= 0 && p.vcpus[vcpu_].runner == nullptr && p.vcpus[vcpu_].fd >= 0) return vcpu_;
  if (p.made < as_->shared().max_vcpus) return p.made++;
  // Every vCPU is made: a free one, best one whose FP state is nobody's.
  int any = -1;
  for (int v = 0; v < p.made; ++v) {
    if (p.vcpus[v].runner != nullptr || p.vcpus[v].fd < 0) continue;
    if (p.vcpus[v].fp_owner == nullptr) return v;
    if (any < 0) any = v;
  }
  return any;
}

absl::Status KvmContext::HoldVcpu() {
  VcpuPool& p = as_->vcpus();
  absl::MutexLock l(&p.mu);
  int v = -1;
  absl::CondVar turn;
  bool queued = false;
  for (;;) {
    // Behind others in line: only the first may pick.
    if (queued ? p.line.front() == &turn : p.line.empty()) {
      v = PickVcpuLocked();
      if (v < 0 && p.broken >= as_->shared().max_vcpus) {
        // None can ever run: fail rather than wait for one forever.
        if (queued) {
          p.line.pop_front();
          p.WakeFirstLocked();
        }
        return absl::UnavailableError("kvm: no vCPU of this VM could be made");
      }
    }
    if (v >= 0) break;
    if (!queued) {
      p.line.push_back(&turn);
      queued = true;
      continue;
    }
    if (p.line.front() != &turn) {
      turn.Wait(&p.mu);
      continue;
    }
    if (turn.WaitWithTimeout(&p.mu, kVcpuWaitSlice)) {
      // Every vCPU has run the same threads for a while: kick one out.
      for (int i = 0; i < p.made; ++i) {
        const VcpuPool::Vcpu& k = p.vcpus[p.kick_next];
        p.kick_next = (p.kick_next + 1) % p.made;
        if (k.runner == nullptr || k.runner == this) continue;
        // SAFETY: a runner is alive while it holds its vCPU, which it
        // gives back only under p.mu.
        const_cast<KvmContext*>(k.runner)->Interrupt();
        break;
      }
    }
  }
  if (queued) {
    p.line.pop_front();
    p.WakeFirstLocked();  // the next in line may find another free vCPU
  }
  VcpuPool::Vcpu& c = p.vcpus[v];
  c.runner = this;
  vcpu_ = v;
  comm()->vcpu_fd = c.fd;
  comm()->run_addr = kRunBase + static_cast<uint64_t>(v) * kRunStride;
  if (c.fd <= 0) {
    // A new vCPU: made without the lock, which nobody needs for a vCPU
    // that this thread holds. One whose making fails is never used again
    // (KVM keeps its id until the VM goes: KVM_CREATE_VCPU says EEXIST).
    p.mu.Unlock();
    absl::Status s = SetUpVcpu(v);
    p.mu.Lock();
    if (!s.ok()) {
      c.fd = -1;
      ++p.broken;
      c.runner = nullptr;
      p.WakeFirstLocked();
      return s;
    }
    comm()->vcpu_fd = c.fd;
  }
  if (absl::Status s = TakeFpLocked(); !s.ok()) {
    c.runner = nullptr;
    p.WakeFirstLocked();
    return s;
  }
  return absl::OkStatus();
}

void KvmContext::ReleaseVcpu() {
  VcpuPool& p = as_->vcpus();
  absl::MutexLock l(&p.mu);
  p.vcpus[vcpu_].runner = nullptr;
  p.WakeFirstLocked();
}

bool KvmContext::SaveFpLocked(int v, KvmContext* owner) {
  const long r = StubCall(SYS_ioctl, as_->vcpus().vcpus[v].fd, kKvmGetXsave,
                          static_cast<long>(SlotAddr(owner->slot_) + kXsaveOff));
  if (r != 0) return false;
  as_->vcpus().vcpus[v].fp_owner = nullptr;
  owner->fp_vcpu_ = -1;
  owner->fp_in_buffer_ = true;
  return true;
}

absl::Status KvmContext::TakeFpLocked() {
  VcpuPool::Vcpu& c = held();
  if (c.fp_owner == this) return absl::OkStatus();
  auto fail = [&](const char* what) {
    return absl::InternalError(absl::StrCat("kvm: vCPU ", vcpu_, ": ", what));
  };
  if (c.fp_owner != nullptr) {
    // The thread that ran here last is not running (it holds no vCPU, or
    // a vCPU it has just taken and not yet loaded: that waits on p.mu).
    // SAFETY: an FP owner is alive: its destructor clears the mark under p.mu.
    if (!SaveFpLocked(vcpu_, const_cast<KvmContext*>(c.fp_owner))) {
      return fail("KVM_GET_XSAVE of the thread that ran there");
    }
  }
  if (fp_vcpu_ >= 0 && !SaveFpLocked(fp_vcpu_, this)) {
    // Ours is in the vCPU we ran on last, which nobody runs (whoever took
    // it would have moved ours out first).
    return fail("KVM_GET_XSAVE of this thread's last vCPU");
  }
  if (!fp_in_buffer_ && fp_vcpu_ < 0) {
    // Never given a state (no SetFpState) and never run: start from the
    // init state, not whatever the vCPU's last thread (of this process or
    // of another sharing the address space) left in its registers.
    FpState().CopyTo(as_->slot_base(slot_) + kXsaveOff, kXsaveImage, FpState::HostFeatures());
    fp_in_buffer_ = true;
  }
  if (fp_in_buffer_) {
    const long r = StubCall(SYS_ioctl, c.fd, kKvmSetXsave,
                            static_cast<long>(SlotAddr(slot_) + kXsaveOff));
    if (r != 0) return fail("KVM_SET_XSAVE");
  }
  c.fp_owner = this;
  fp_vcpu_ = vcpu_;
  fp_in_buffer_ = false;
  return absl::OkStatus();
}

Status KvmContext::GetFpState(FpState& fp) {
  if (dead_) return Errno(ESRCH);
  VcpuPool& p = as_->vcpus();
  absl::MutexLock l(&p.mu);
  if (fp_vcpu_ >= 0) {
    const long r = StubCall(SYS_ioctl, p.vcpus[fp_vcpu_].fd, kKvmGetXsave,
                            static_cast<long>(SlotAddr(slot_) + kXsaveOff));
    if (r != 0) return Errno(EIO);
  } else if (!fp_in_buffer_) {
    fp = FpState();  // never set, never run: the init state it would start with
    return {};
  }
  fp.CopyFrom(as_->slot_base(slot_) + kXsaveOff, kXsaveImage, FpState::HostFeatures());
  return {};
}

Status KvmContext::SetFpState(const FpState& fp) {
  if (dead_) return Errno(ESRCH);
  VcpuPool& p = as_->vcpus();
  absl::MutexLock l(&p.mu);
  fp.CopyTo(as_->slot_base(slot_) + kXsaveOff, kXsaveImage, FpState::HostFeatures());
  if (fp_vcpu_ < 0) {
    fp_in_buffer_ = true;  // loaded when this thread next takes a vCPU
    return {};
  }
  const long r = StubCall(SYS_ioctl, p.vcpus[fp_vcpu_].fd, kKvmSetXsave,
                          static_cast<long>(SlotAddr(slot_) + kXsaveOff));
  return r == 0 ? Status{} : Errno(EIO);
}

absl::Status KvmContext::SetUpVcpu(int v) {
  auto fail = [&](const char* what, long r) {
    return absl::InternalError(absl::StrCat("kvm: vCPU ", v, ": ", what, ": ",
                                            std::strerror(static_cast<int>(r < 0 ? -r : EIO))));
  };
  const KvmShared& sh = as_->shared();
  VcpuPool::Vcpu& c = as_->vcpus().vcpus[v];
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
