// The kvm platform (`--platform=kvm`): guest code in a KVM virtual machine.
// The design, and what it costs on these machines, is in README.md beside
// this file. As on systrap, every guest address space is a stub process
// (forked from a zygote, forked again for a guest fork); here each stub
// also owns a VM over its own memory, and each stub thread runs one vCPU.
// Guest syscalls and faults exit KVM_RUN; the stub hands each exit to the
// sentry through its slot's comm page and a futex (stub_amd64.S).
//
// NewKvmPlatform() fails with one line naming the reason when /dev/kvm is
// missing or unusable (ProbeKvm). Sandbox fork works as on systrap.
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
