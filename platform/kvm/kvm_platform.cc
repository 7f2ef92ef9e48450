#include "platform/kvm/kvm_platform.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_layout.h"
#include "platform/kvm/kvm_probe.h"
#include "platform/kvm/stub_image.h"
#include "platform/stub/injector.h"
#include "platform/stub/stub_platform.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::kvm {
namespace {

// KvmShared::stub_spin_max: SEEDSC_KVM_SPIN_US if set (0 turns spinning
// off, for a benchmark's "before" column; at most 100), else
// kDefaultStubSpinNs.
uint64_t StubSpinMaxTicks() {
  int64_t ns = kDefaultStubSpinNs;
  if (const char* s = getenv("SEEDSC_KVM_SPIN_US"); s != nullptr && *s != '\0') {
    char* end = nullptr;
    const long us = std::strtol(s, &end, 10);
    if (*end == '\0' && us >= 0 && us <= 100) ns = us * 1000;
  }
  return static_cast<uint64_t>(static_cast<double>(ns) * systrap::TscTicksPerNs());
}

// KvmShared::max_vcpus: SEEDSC_KVM_MAX_VCPUS if set (1 to kVcpus), else
// kVcpus.
int MaxVcpus() {
  if (const char* s = getenv("SEEDSC_KVM_MAX_VCPUS"); s != nullptr && *s != '\0') {
    char* end = nullptr;
    const long n = std::strtol(s, &end, 10);
    if (*end == '\0' && n >= 1 && n <= kVcpus) return static_cast<int>(n);
  }
  return kVcpus;
}

class KvmPlatform : public stub::StubPlatform {
 public:
  std::string_view name() const override { return "kvm"; }

  absl::Status Init(const char* device, const KvmHost& host) {
    auto shared = std::make_shared<KvmShared>();
    shared->kvm_fd = open(device, O_RDWR | O_CLOEXEC);
    if (shared->kvm_fd < 0) {
      return absl::FailedPreconditionError(absl::StrCat("kvm: ", device, ": ", std::strerror(errno)));
    }
    shared->vcpu_mmap_size = host.vcpu_mmap_size;
    // SEEDSC_KVM_VDSO=0: clocks through syscalls, for a benchmark's
    // "before" column (bench/kvm_bench.sh).
    const char* vdso_env = getenv("SEEDSC_KVM_VDSO");
    shared->vdso = host.vdso && (vdso_env == nullptr || std::strcmp(vdso_env, "0") != 0);
    shared->stub_spin_max = StubSpinMaxTicks();
    shared->max_vcpus = MaxVcpus();
    // The guest sees what this KVM supports (CPUID runs in the VM).
    // struct kvm_cpuid2 is 8 bytes in C (nent, padding) before its entries.
    constexpr size_t kHeader = 8;
    constexpr uint32_t kMaxEntries = (kCpuidSize - kHeader) / sizeof(kvm_cpuid_entry2);
    shared->cpuid.resize(kHeader + kMaxEntries * sizeof(kvm_cpuid_entry2));
    // SAFETY: a buffer sized for the header and kMaxEntries entries.
    auto* c = reinterpret_cast<kvm_cpuid2*>(shared->cpuid.data());
    c->nent = kMaxEntries;
    if (ioctl(shared->kvm_fd, kKvmGetSupportedCpuid, c) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("kvm: ", device, ": KVM_GET_SUPPORTED_CPUID: ", std::strerror(errno)));
    }
    shared->cpuid.resize(kHeader + c->nent * sizeof(kvm_cpuid_entry2));
    // XCR0: the host's user components that this KVM lets a guest enable
    // (CPUID leaf 0xD, subleaf 0).
    uint64_t allowed = FpState::kFeaturesFpSse;
    for (uint32_t i = 0; i < c->nent; ++i) {
      kvm_cpuid_entry2 e;
      std::memcpy(&e, shared->cpuid.data() + kHeader + i * sizeof(e), sizeof(e));
      if (e.function == 0xd && e.index == 0) allowed = e.eax | (uint64_t{e.edx} << 32);
    }
    shared->xcr0 = (FpState::HostHasXsave() ? FpState::HostFeatures() : FpState::kFeaturesFpSse) & allowed;
    shared_ = std::move(shared);
    return StartZygote(kStubImage, kStubImageSize);
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    Result<pid_t> pid = ForkStubFromZygote();
    if (!pid.ok()) {
      return absl::InternalError(absl::StrCat("kvm: forking a stub from the zygote: ",
                                              std::strerror(pid.error().value())));
    }
    auto as = KvmAddressSpace::Create(*pid, layout(), shared_, /*parent=*/nullptr);
    if (!as.ok()) {
      kill(*pid, SIGKILL);
      return as.status();
    }
    (*as)->set_dies_with(zygote());
    return std::shared_ptr<AddressSpace>(*as);
  }

  absl::StatusOr<std::unique_ptr<Context>> Attach(std::shared_ptr<AddressSpace> as,
                                                  ThreadHandle thread) override {
    auto kas = std::dynamic_pointer_cast<KvmAddressSpace>(as);
    if (kas == nullptr) return absl::InvalidArgumentError("kvm: not a kvm address space");
    auto ctx = KvmContext::Create(kas, thread.host_tid);
    if (!ctx.ok()) return ctx.status();
    return std::unique_ptr<Context>(std::move(*ctx));
  }

  // Sandbox fork, as on systrap (stub::SeedForkSpares): the seed makes each
  // fork's zygote and, per address space, a copy of its stub with as many
  // parked threads as tasks. The copy is a guest fork's (ForkAddressSpace):
  // a host fork of the stub (copy-on-write guest memory, the memslots'
  // backing) with its own region, a new VM whose memslots cover the seed's
  // GiBs and a copy of the seed's page tables, all made in the seed, off
  // the fork's path. The forked sentry's tasks attach the parked threads,
  // and each gets a new vCPU then (KvmContext::Create); registers and FP
  // state travel in the tasks, which save their FP state in the seed
  // (SeedForkOnTaskThreads: reading it is a call into the seed's stub,
  // which the forked sentry must never make).
  bool SeedForkOnTaskThreads() const override { return true; }
  // Its guest memory is the memslots' backing, not at the guest's addresses.
  pid_t SeedCopyProcess(const AddressSpace&, pid_t) override { return -1; }

  absl::Status PrepareSeedFork(Context& ctx, pid_t pgid, int threads) override {
    Result<std::shared_ptr<AddressSpace>> copy = ctx.ForkAddressSpace();
    if (!copy.ok()) {
      return absl::InternalError(absl::StrCat("kvm: forking a seed stub: ",
                                              std::strerror(copy.error().value())));
    }
    auto kas = std::static_pointer_cast<KvmAddressSpace>(*copy);
    Result<std::vector<pid_t>> tids =
        stub::PrepareForkedStub(kas->host_pid(), layout().entry, pgid, threads);
    // On failure `kas` dies here (SIGKILL through its pidfd).
    if (!tids.ok()) {
      return absl::InternalError(absl::StrCat("kvm: preparing a forked stub: ",
                                              std::strerror(tids.error().value())));
    }
    AddSpareCopy(pgid, ctx.address_space(), std::move(kas), std::move(*tids));
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const KvmShared> shared_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Platform>> NewKvmPlatform(const char* device) {
  absl::StatusOr<KvmHost> host = ProbeKvm(device);
  if (!host.ok()) return host.status();
  auto p = std::make_unique<KvmPlatform>();
  if (absl::Status s = p->Init(device, *host); !s.ok()) return s;
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace seedvisor::platform::kvm
