// `seedsc pause ID` / `seedsc resume ID`: stop and continue every task of the
// container (inside the sandbox; the control server keeps answering).
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

int CmdPause(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("pause");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "pause <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  control::v1::PauseRequest req;
  req.set_container_id(st->id);
  control::v1::PauseResponse resp;
  if (absl::Status s = container::Call(*st, "Pause", req, &resp); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
