#include "platform/kvm/kvm_platform.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "platform/kvm/kvm_probe.h"

namespace seedvisor::platform::kvm {

absl::StatusOr<std::unique_ptr<Platform>> NewKvmPlatform(const char* device) {
  absl::StatusOr<KvmHost> host = ProbeKvm(device);
  if (!host.ok()) return host.status();
  return absl::UnimplementedError(absl::StrCat(
      "kvm: ", device, " is usable here (", host->flavour,
      ") but the kvm platform cannot run guests yet (platform/kvm/README.md); use "
      "--platform=systrap"));
}

}  // namespace seedvisor::platform::kvm
