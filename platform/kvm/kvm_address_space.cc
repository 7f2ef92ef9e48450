#include "platform/kvm/kvm_address_space.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "platform/kvm/kvm_guest.h"
#include "platform/kvm/kvm_host_maps.h"

namespace seedvisor::platform::kvm {
namespace {

// Where injected setup calls find their arguments: a page of the region's
// fixed part that nothing else uses.
constexpr uint64_t kSetupOff = 0x8000;

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};
constexpr uint64_t kSaRestorer = 0x04000000;

// Host syscalls made by one of the calling task's stub thread (no filter
// stands between a kvm stub and the host: the guest never runs host code
// there, it runs in the VM).
class ContextCalls : public stub::StubSyscalls {
 public:
  explicit ContextCalls(KvmContext* ctx) : ctx_(ctx) {}

 protected:
  long Invoke(long nr, const long (&a)[6]) override {
    return ctx_->StubCall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }

 private:
  KvmContext* ctx_;
};

}  // namespace

KvmShared::~KvmShared() {
  if (kvm_fd >= 0) close(kvm_fd);
}

KvmAddressSpace::KvmAddressSpace(pid_t pid, const stub::StubLayout& layout,
                                 std::shared_ptr<const KvmShared> shared)
    : StubAddressSpace(pid, layout), shared_(std::move(shared)) {}

KvmAddressSpace::~KvmAddressSpace() {
  if (region_ != nullptr) munmap(region_, kRegionSize);
}

void KvmAddressSpace::AbandonInForkChild() {
  if (region_ != nullptr) munmap(region_, kRegionSize);
  region_ = nullptr;
  StubAddressSpace::AbandonInForkChild();
}

CommPage* KvmAddressSpace::comm(int slot) const {
  // SAFETY: a slot's first bytes, page-aligned in our mapping of the region.
  return reinterpret_cast<CommPage*>(slot_base(slot));
}

absl::StatusOr<std::shared_ptr<KvmAddressSpace>> KvmAddressSpace::Create(
    pid_t pid, const stub::StubLayout& layout, std::shared_ptr<const KvmShared> shared,
    KvmAddressSpace* parent) {
  std::shared_ptr<KvmAddressSpace> as(new KvmAddressSpace(pid, layout, std::move(shared)));
  if (absl::Status s = as->Setup(parent); !s.ok()) return s;
  return as;
}

absl::Status KvmAddressSpace::Setup(KvmAddressSpace* parent) {
  const bool fresh = parent == nullptr;
  if (!proc_.ok()) {
    return absl::InternalError(absl::StrCat("kvm: opening stub ", proc_.pid(), " (mem, pidfd) failed"));
  }
  int memfd = memfd_create("seedsc-kvm", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, static_cast<off_t>(kRegionSize)) != 0) {
    if (memfd >= 0) close(memfd);
    return absl::InternalError("kvm: creating the region failed");
  }
  void* m = mmap(nullptr, kRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (m == MAP_FAILED) {
    close(memfd);
    return absl::InternalError("kvm: mapping the region in the sentry failed");
  }
  // SAFETY: our own fresh shared mapping of kRegionSize bytes.
  region_ = static_cast<uint8_t*>(m);
  WriteRegionTables(region_);
  if (shared_->cpuid.size() > kCpuidSize) {
    close(memfd);
    return absl::InternalError("kvm: the CPUID table does not fit the region");
  }
  std::memcpy(region_ + kCpuidOff, shared_->cpuid.data(), shared_->cpuid.size());

  absl::Status st = absl::OkStatus();
  stub::Injector inj(proc_.pid(), layout_.entry);
  if (!inj.ok()) {
    close(memfd);
    return absl::InternalError(absl::StrCat("kvm: attaching to stub ", proc_.pid(), " failed"));
  }
  auto fail = [&](const char* what, long r) {
    if (st.ok()) {
      st = absl::InternalError(absl::StrCat("kvm: setting up stub ", proc_.pid(), ": ", what, ": ",
                                            std::strerror(static_cast<int>(-r))));
    }
  };
  // A stub forked from a guest's stub holds that stub's VM and vCPU fds
  // (useless here: KVM serves only the mm that made the VM).
  inj.Call(SYS_close_range, 0, ~0L, 0);
  // Opens the sentry's `fd` in the stub through /proc, with `flags`.
  auto open_in_stub = [&](int fd, int flags) -> long {
    char path[64];
    int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), fd);
    if (!WriteForce(UserAddr(layout_.scratch), path, static_cast<size_t>(n) + 1).ok()) return -EIO;
    return inj.Call(SYS_openat, AT_FDCWD, static_cast<long>(layout_.scratch), flags | O_CLOEXEC);
  };
  long fd = open_in_stub(memfd, O_RDWR);
  close(memfd);
  if (fd < 0) fail("opening the region", fd);
  if (st.ok()) {
    long r = inj.Call(SYS_mmap, static_cast<long>(kRegionBase), static_cast<long>(kRegionSize),
                      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    inj.Call(SYS_close, fd);
    if (r < 0 && r > -4096) fail("mapping the region", r);
  }
  if (st.ok()) {
    // A forked stub maps a region of its own (Create(fresh=false)).
    long r = inj.Call(SYS_madvise, static_cast<long>(kRegionBase), static_cast<long>(kRegionSize),
                      MADV_DONTFORK);
    if (r != 0) fail("MADV_DONTFORK on the region", r);
  }
  long kfd = st.ok() ? open_in_stub(shared_->kvm_fd, O_RDWR) : -EIO;
  if (st.ok() && kfd < 0) fail("opening /dev/kvm", kfd);
  if (st.ok()) {
    // The stub keeps /dev/kvm open (as fd 0): no vCPU fd is ever 0, which
    // the comm page uses for "no vCPU yet".
    vm_fd_ = static_cast<int>(inj.Call(SYS_ioctl, kfd, KVM_CREATE_VM, 0));
    if (vm_fd_ < 0) fail("KVM_CREATE_VM", vm_fd_);
  }
  // Memslot 0: the region; then one per GiB of guest memory.
  // SAFETY: the setup page lies in the region, mapped in both processes.
  auto* mr = reinterpret_cast<kvm_userspace_memory_region*>(region_ + kSetupOff);
  auto add_slot = [&](uint32_t id, uint64_t addr, uint64_t size) {
    *mr = kvm_userspace_memory_region{id, 0, addr, size, addr};
    long r = inj.Call(SYS_ioctl, vm_fd_, KVM_SET_USER_MEMORY_REGION,
                      static_cast<long>(kRegionBase + kSetupOff));
    if (r != 0) fail("KVM_SET_USER_MEMORY_REGION", r);
  };
  if (st.ok()) add_slot(0, kRegionBase, kRegionSize);
  // A fork's copy has its parent's vDSO: the guest's libc holds pointers
  // into it.
  if (st.ok() && (fresh ? shared_->vdso : parent->vdso_)) st = MapVdso(inj);
  if (parent != nullptr && st.ok()) {
    // The parent's page tables describe this copy's memory exactly.
    absl::MutexLock pl(&parent->mu_);
    absl::MutexLock l(&mu_);
    for (uint64_t gib : parent->gibs_) {
      if (!st.ok()) break;
      add_slot(static_cast<uint32_t>(gibs_.size() + kFirstGibSlot), gib * kGiB, kGiB);
      gibs_.insert(gib);
    }
    CopyPageTables(region_, parent->region_, parent->next_pd_, parent->next_pt_);
    next_pd_ = parent->next_pd_;
    next_pt_ = parent->next_pt_;
  }
  if (st.ok() && fresh) {
    // SIGURG, the sentry's kick, must not be ignored (an ignored signal is
    // dropped while KVM_RUN unblocks it); it is only ever taken by
    // rt_sigtimedwait (stub_amd64.S).
    auto* sa = reinterpret_cast<KernelSigaction*>(region_ + kSetupOff);
    *sa = KernelSigaction{layout_.entry + kStubUrgHandler, SA_RESTART | kSaRestorer,
                          layout_.entry + kStubRestorer, ~uint64_t{0}};
    long r = inj.Call(SYS_rt_sigaction, SIGURG, static_cast<long>(kRegionBase + kSetupOff), 0, 8);
    if (r != 0) fail("rt_sigaction(SIGURG)", r);
  }
  std::memset(region_ + kSetupOff, 0, 0x1000);
  return st;
}

absl::Status KvmAddressSpace::MapVdso(stub::Injector& inj) {
  // [vvar] and [vvar_vclock] are the kernel's time data (PFN mappings: KVM
  // maps their pages as the host's page tables hold them, so the guest
  // reads the live words), [vdso] its code, which reads them at fixed
  // offsets from itself: the guest sees all three at the stub's addresses
  // (guest-virtual = guest-physical = stub address). Read-only memslots,
  // read-only user PTEs. Every stub has them at the same place (no ASLR).
  const std::vector<HostVma> vmas = HostVdsoVmas(proc_.pid());
  bool has_vdso = false;
  for (const HostVma& v : vmas) has_vdso |= v.start == layout_.vdso.value();
  if (!has_vdso || vmas.size() > kFirstGibSlot - kVdsoFirstSlot) {
    return absl::InternalError(absl::StrCat("kvm: stub ", proc_.pid(),
                                            ": its [vvar] and [vdso] mappings are not as expected"));
  }
  uint32_t id = kVdsoFirstSlot;
  for (const HostVma& v : vmas) {
    // SAFETY: the setup page lies in the region, mapped in both processes.
    auto* mr = reinterpret_cast<kvm_userspace_memory_region*>(region_ + kSetupOff);
    *mr = kvm_userspace_memory_region{id++, KVM_MEM_READONLY, v.start, v.end - v.start, v.start};
    const long r = inj.Call(SYS_ioctl, vm_fd_, KVM_SET_USER_MEMORY_REGION,
                            static_cast<long>(kRegionBase + kSetupOff));
    if (r != 0) {
      return absl::InternalError(absl::StrCat("kvm: setting up stub ", proc_.pid(),
                                              ": a read-only memslot for its vDSO: ",
                                              std::strerror(static_cast<int>(-r))));
    }
    if (!MapVdsoPages(region_, v.start, v.end - v.start, (v.prot & PROT_EXEC) != 0)) {
      return absl::InternalError(absl::StrCat("kvm: stub ", proc_.pid(), ": its vDSO at ",
                                              absl::Hex(v.start), " is not where the platform maps it"));
    }
  }
  vdso_ = true;
  return absl::OkStatus();
}

Status KvmAddressSpace::EnsureGibs(UserAddr addr, uint64_t len) {
  if (len == 0) return {};
  const uint64_t first = addr.value() / kGiB, last = (addr.value() + len - 1) / kGiB;
  if (addr.value() + len > kRegionBase || addr.value() + len < addr.value()) return Errno(ENOMEM);
  absl::MutexLock l(&mu_);
  // One memslot per GiB the guest can touch: a request for more than a
  // TiB of accessible memory at once is refused as Linux refuses what it
  // cannot back (brk or mmap far beyond memory: ENOMEM).
  uint64_t missing = 0;
  for (uint64_t gib = first; gib <= last && missing <= kMaxNewGibs; ++gib) missing += gibs_.count(gib) == 0;
  if (missing > kMaxNewGibs) return Errno(ENOMEM);
  for (uint64_t gib = first; gib <= last; ++gib) {
    if (gibs_.count(gib) != 0) continue;
    KvmContext* ctx = contexts_.Caller();
    if (ctx == nullptr) return Errno(EFAULT);  // a sentry bug: no task of ours calls
    const kvm_userspace_memory_region mr{static_cast<uint32_t>(gibs_.size() + kFirstGibSlot), 0, gib * kGiB,
                                         kGiB, gib * kGiB};
    // SAFETY: KVM reads the struct from the caller's slot, in the stub; the
    // memslot covers stub addresses below UserTop only (guest memory).
    long r = ctx->StubCall(SYS_ioctl, vm_fd_, KVM_SET_USER_MEMORY_REGION,
                           static_cast<long>(ctx->PutArgs(&mr, sizeof(mr))));
    if (r != 0) return Errno(r == -ENOSPC || r == -EEXIST ? ENOMEM : (r < 0 ? static_cast<int>(-r) : EIO));
    gibs_.insert(gib);
  }
  return {};
}

// Each call changes the host mapping first (the truth: KVM drops its
// translations of the range), then the guest's PTEs. A failed PTE update
// leaves pages absent in the guest, which only costs a fault.
Status KvmAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                            uint64_t offset) {
  if (prot != PROT_NONE) SV_TRY(EnsureGibs(addr, len));
  SV_TRY(StubAddressSpace::Map(addr, len, prot, flags, host_fd, offset));
  absl::MutexLock l(&mu_);
  if (!SetPtes({region_, &next_pd_, &next_pt_}, addr.value(), len, prot)) return Errno(ENOMEM);
  return {};
}

Status KvmAddressSpace::MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags,
                                         int host_fd, uint64_t offset) {
  if (prot != PROT_NONE) SV_TRY(EnsureGibs(addr, len));
  SV_TRY(StubAddressSpace::MapImmutableFile(addr, len, prot, flags, host_fd, offset));
  absl::MutexLock l(&mu_);
  if (!SetPtes({region_, &next_pd_, &next_pt_}, addr.value(), len, prot)) return Errno(ENOMEM);
  return {};
}

Status KvmAddressSpace::Unmap(UserAddr addr, uint64_t len) {
  SV_TRY(StubAddressSpace::Unmap(addr, len));
  absl::MutexLock l(&mu_);
  SetPtes({region_, &next_pd_, &next_pt_}, addr.value(), len, -1);
  return {};
}

Status KvmAddressSpace::Protect(UserAddr addr, uint64_t len, int prot) {
  if (prot != PROT_NONE) SV_TRY(EnsureGibs(addr, len));
  SV_TRY(StubAddressSpace::Protect(addr, len, prot));
  absl::MutexLock l(&mu_);
  if (!SetPtes({region_, &next_pd_, &next_pt_}, addr.value(), len, prot)) return Errno(ENOMEM);
  return {};
}

Status KvmAddressSpace::Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                              uint64_t new_len) {
  SV_TRY(EnsureGibs(new_addr, new_len));
  SV_TRY(StubAddressSpace::Remap(old_addr, old_len, new_addr, new_len));
  absl::MutexLock l(&mu_);
  if (!MovePtes({region_, &next_pd_, &next_pt_}, old_addr.value(), old_len, new_addr.value(),
                new_len)) {
    return Errno(ENOMEM);
  }
  return {};
}

bool KvmAddressSpace::PastEnd(uint64_t addr) {
  uint8_t b;
  return !ReadForce(UserAddr(addr & ~(kPageSize - 1)), &b, 1).ok();
}

bool KvmAddressSpace::HidePastEnd() {
  bool found = false;
  for (const HostVma& v : HostVmas(host_pid(), UserTop().value())) {
    if (!v.backed || v.prot == PROT_NONE || !PastEnd(v.end - kPageSize)) continue;
    // The pages past the object's end are a suffix of the mapping: find
    // its first page (lo readable or -1, hi past the end).
    int64_t lo = -1, hi = static_cast<int64_t>((v.end - v.start) / kPageSize) - 1;
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      (PastEnd(v.start + static_cast<uint64_t>(mid) * kPageSize) ? hi : lo) = mid;
    }
    const uint64_t first = v.start + static_cast<uint64_t>(hi) * kPageSize;
    absl::MutexLock l(&mu_);
    SetPtes({region_, &next_pd_, &next_pt_}, first, v.end - first, -1);
    found = true;
  }
  return found;
}

void KvmAddressSpace::ShowPage(uint64_t addr, int prot) {
  if (addr >= UserTop().value()) return;  // never a user PTE onto the platform's pages
  absl::MutexLock l(&mu_);
  SetPtes({region_, &next_pd_, &next_pt_}, addr & ~(kPageSize - 1), kPageSize, prot);
}

long KvmAddressSpace::MemoryCall(long nr, const long (&a)[6]) {
  KvmContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return -EFAULT;
  return ctx->StubCall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

std::unique_ptr<stub::StubSyscalls> KvmAddressSpace::FileCalls() {
  KvmContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return nullptr;
  return std::make_unique<ContextCalls>(ctx);
}

}  // namespace seedvisor::platform::kvm
