// `seedsc release-cgroups PATH` (internal): what a sandbox's pid 1 becomes
// once the last process of its pid namespace is gone (sandbox_create.cc):
// it removes the cgroups of PATH that seedsc made, per the record under
// --root (container::RemoveCgroups), which a create killed before it
// recorded the sandbox leaves to nobody else.
#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/container/cgroup.h"

namespace seedvisor::runsc {

int CmdReleaseCgroups(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("release-cgroups");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "release-cgroups <cgroup path> (internal)", &pos)) {
    return kExitUsage;
  }
  if (pos[0].empty() || pos[0].find("..") != std::string::npos) {
    return Fail(absl::StrCat("release-cgroups: not a cgroup path: \"", pos[0], "\""));
  }
  if (absl::Status s = container::RemoveCgroups(pos[0], cfg.root); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
