#include "platform/kvm/kvm_probe.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace seedvisor::platform::kvm {
namespace {

constexpr int kKvmApiVersion = 12;  // the only stable one (Documentation/virt/kvm/api.rst)
// KVM_CAP_SYNC_REGS bits the design uses: registers and segment registers
// travel in the shared kvm_run page instead of one ioctl each per exit.
constexpr int kSyncRegsNeeded = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status Unusable(const char* device, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat(
      "kvm: ", device, ": ", why, " (the kvm platform needs a usable KVM; use --platform=systrap)"));
}

std::string Flavour() {
  struct stat st;
  if (stat("/sys/module/kvm_intel", &st) == 0) return "vmx";
  if (stat("/sys/module/kvm_amd", &st) == 0) return "svm";
  if (stat("/sys/module/kvm_pvm", &st) == 0) return "pvm";
  return "unknown";
}

}  // namespace

absl::StatusOr<KvmHost> ProbeKvm(const char* device) {
  Fd kvm(open(device, O_RDWR | O_CLOEXEC));
  if (kvm.get() < 0) return Unusable(device, std::strerror(errno));
  KvmHost h;
  h.api_version = ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (h.api_version < 0) {
    return Unusable(device, absl::StrCat("not a KVM device (KVM_GET_API_VERSION: ",
                                         std::strerror(errno), ")"));
  }
  if (h.api_version != kKvmApiVersion) {
    return Unusable(device, absl::StrCat("KVM API version ", h.api_version, ", want ",
                                         kKvmApiVersion));
  }
  auto cap = [&](long c) { return ioctl(kvm.get(), KVM_CHECK_EXTENSION, c); };
  if (cap(KVM_CAP_USER_MEMORY) <= 0) return Unusable(device, "no KVM_CAP_USER_MEMORY");
  if ((cap(KVM_CAP_SYNC_REGS) & kSyncRegsNeeded) != kSyncRegsNeeded) {
    return Unusable(device, "no KVM_CAP_SYNC_REGS for registers and segment registers");
  }
  h.nr_memslots = cap(KVM_CAP_NR_MEMSLOTS);
  h.max_vcpu_id = cap(KVM_CAP_MAX_VCPU_ID);
  if (h.nr_memslots <= 1) return Unusable(device, "too few memory slots");
  h.vcpu_mmap_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (h.vcpu_mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return Unusable(device, "KVM_GET_VCPU_MMAP_SIZE is smaller than struct kvm_run");
  }
  // Permissions and module state show only here (EACCES from a group-less
  // device, ENODEV once virtualization is off, ENOMEM/ENOSPC in nested
  // setups).
  Fd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (vm.get() < 0) {
    return Unusable(device, absl::StrCat("KVM_CREATE_VM: ", std::strerror(errno)));
  }
  h.flavour = Flavour();
  if (ioctl(vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) {
    h.no_vdso_why = "no KVM_CAP_READONLY_MEM";
    return h;
  }
  Fd vcpu(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  kvm_device_attr tsc_offset{};
  tsc_offset.group = KVM_VCPU_TSC_CTRL;
  tsc_offset.attr = KVM_VCPU_TSC_OFFSET;
  if (vcpu.get() < 0) {
    h.no_vdso_why = absl::StrCat("KVM_CREATE_VCPU: ", std::strerror(errno));
  } else if (ioctl(vcpu.get(), KVM_HAS_DEVICE_ATTR, &tsc_offset) != 0) {
    h.no_vdso_why = "no KVM_VCPU_TSC_OFFSET (the guest's TSC could differ from the host's)";
  } else {
    h.vdso = true;
  }
  return h;
}

}  // namespace seedvisor::platform::kvm
