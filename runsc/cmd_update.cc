// `seedsc update --resources=FILE|- ID`: new linux.resources (an OCI
// LinuxResources JSON object; "-" reads stdin) for a container's sandbox,
// written into its cgroups (memory, cpu, cpuset, pids). Limits not named in
// the object stay as they are.
#include <fstream>
#include <iostream>
#include <iterator>

#include "runsc/cmd_common.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/sandbox.h"
#include "runsc/oci/spec.h"

namespace seedvisor::runsc {

int CmdUpdate(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("update");
  std::string resources;
  fs.String("resources", &resources, "LinuxResources JSON file (\"-\": stdin)");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "update --resources=FILE <container id>", &pos)) return kExitUsage;
  if (resources.empty()) return Fail("update: --resources is required");
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  std::string text;
  if (resources == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(resources);
    if (!in) return Fail("update: cannot read " + resources);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  absl::StatusOr<oci::Resources> r = oci::ParseResourcesJson(text, "resources");
  if (!r.ok()) return Fail(r.status());
  if (st->cgroups_path.empty()) {
    return Fail("update: container " + st->id +
                " has no cgroup (config.json sets neither linux.cgroupsPath nor resources)");
  }
  if (absl::Status s = container::UpdateCgroups(*r, st->cgroups_path); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
