#include "platform/platform.h"

#include "absl/strings/str_cat.h"
#include "platform/kvm/kvm_platform.h"
#include "platform/ptrace/ptrace_platform.h"
#include "platform/systrap/systrap_platform.h"

namespace seedvisor::platform {

std::vector<std::string_view> PlatformNames() { return {"systrap", "ptrace", "kvm"}; }

absl::StatusOr<std::unique_ptr<Platform>> NewPlatform(std::string_view name) {
  if (name == "ptrace") return ptrace::NewPtracePlatform();
  if (name == "systrap") return systrap::NewSystrapPlatform();
  if (name == "kvm") return kvm::NewKvmPlatform();
  std::string known;
  for (std::string_view n : PlatformNames()) known += (known.empty() ? "" : ", ") + std::string(n);
  return absl::InvalidArgumentError(
      absl::StrCat("--platform: unknown platform \"", std::string(name), "\" (known: ", known, ")"));
}

}  // namespace seedvisor::platform
