// `seedsc state ID`: the OCI state JSON, indented, as runsc prints it.
#include <cstdio>

#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"

namespace seedvisor::runsc {

int CmdState(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("state");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "state <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  std::printf("%s\n", container::OciStateJson(*st, container::LiveStatus(*st), 2).c_str());
  return 0;
}

}  // namespace seedvisor::runsc
