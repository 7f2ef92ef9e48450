// `seedsc wait [--pid N] ID`: waits for the container's process (or sandbox
// pid N) to exit and prints {"id": ..., "exitStatus": ...} as runsc does.
// exitStatus is the exit code, or 128+signal for a killed process.
#include <cstdio>
#include <cstdlib>

#include "nlohmann/json.hpp"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

// Shared with `run`: the process's control::WaitResponse.
absl::StatusOr<control::v1::WaitResponse> WaitContainer(const container::State& st, int pid) {
  control::v1::WaitRequest req;
  req.set_container_id(st.id);
  req.set_pid(pid);
  control::v1::WaitResponse resp;
  if (absl::Status s = container::Call(st, "Wait", req, &resp); !s.ok()) return s;
  return resp;
}

int CmdWait(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("wait");
  std::string pid = "0", rootpid = "0";
  fs.String("pid", &pid, "wait for this process (a pid inside the sandbox)");
  fs.String("rootpid", &rootpid, "the same (runsc compatibility)");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "wait [--pid N] <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  int p = std::atoi(pid.c_str());
  if (p == 0) p = std::atoi(rootpid.c_str());
  auto resp = WaitContainer(*st, p);
  if (!resp.ok()) return Fail(resp.status());
  nlohmann::json j = {{"id", st->id}, {"exitStatus", resp->exit_status()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace seedvisor::runsc
