// Whether this host's KVM can hold a guest, asked before the kvm platform
// starts, so that `--platform=kvm` on a host without (usable) KVM fails with
// one line that says why instead of a hang or a crash later.
//
//   absl::StatusOr<kvm::KvmHost> host = kvm::ProbeKvm();
//   if (!host.ok()) return host.status();  // "kvm: /dev/kvm: ..."
//
// ProbeKvm opens the device, checks the API version and the capabilities
// the platform's design needs (platform/kvm/README.md) and creates (and
// drops) one VM. It runs no guest code.
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_PROBE_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_PROBE_H_

#include <string>

#include "absl/status/statusor.h"

namespace seedvisor::platform::kvm {

struct KvmHost {
  int api_version = 0;
  int nr_memslots = 0;   // KVM_CAP_NR_MEMSLOTS
  int max_vcpu_id = 0;   // KVM_CAP_MAX_VCPU_ID
  int vcpu_mmap_size = 0;
  // "vmx", "svm" or "pvm" (the host's KVM module: PVM runs guests under
  // shadow paging without hardware virtualization, and in nested setups
  // such as this project's machines); "unknown" if none is found.
  std::string flavour;
  // Whether the guest can have the host's vDSO (README.md, "The vDSO"):
  // read-only memslots over the stub's [vvar] pages, and a vCPU TSC offset
  // that can be set to 0 (the vDSO's clocks read the TSC in the guest and
  // scale it with the host's vvar data). Otherwise `no_vdso_why` says why,
  // and guest clocks are syscalls.
  bool vdso = false;
  std::string no_vdso_why;
};

// `device` is /dev/kvm outside tests. Every error is one line that starts
// with "kvm: " and names the device.
absl::StatusOr<KvmHost> ProbeKvm(const char* device = "/dev/kvm");

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_PROBE_H_
