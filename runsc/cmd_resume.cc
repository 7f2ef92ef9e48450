// `seedsc resume ID`: see cmd_pause.cc.
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

int CmdResume(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("resume");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "resume <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  control::v1::ResumeRequest req;
  req.set_container_id(st->id);
  control::v1::ResumeResponse resp;
  if (absl::Status s = container::Call(*st, "Resume", req, &resp); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
