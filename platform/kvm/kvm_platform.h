// The kvm platform (`--platform=kvm`): guest code in a KVM virtual machine.
// The design, and what it costs on these machines, is in README.md beside
// this file.
//
// What exists so far is the host check: NewKvmPlatform() fails with one
// line naming the reason when /dev/kvm is missing or unusable (ProbeKvm).
// Where KVM is usable it still fails, with a line that says the guest side
// is not built yet, so that no caller mistakes it for a running platform.
//
//   auto p = kvm::NewKvmPlatform();
//   if (!p.ok()) std::cerr << p.status().message();  // "kvm: /dev/kvm: ..."
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_PLATFORM_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_PLATFORM_H_

#include <memory>

#include "platform/platform.h"

namespace seedvisor::platform::kvm {

absl::StatusOr<std::unique_ptr<Platform>> NewKvmPlatform(const char* device = "/dev/kvm");

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_PLATFORM_H_
