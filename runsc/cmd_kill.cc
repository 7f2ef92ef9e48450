// `seedsc kill [--all] [--pid N] ID [SIGNAL]`: signals the container's
// process (default SIGTERM), every process (--all), or sandbox pid N.
#include <signal.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

int CmdKill(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("kill");
  bool all = false;
  std::string pid = "0";
  fs.Bool("all", &all, "send the signal to every process in the container");
  fs.String("pid", &pid, "send the signal to this process (a pid inside the sandbox)");
  fs.Alias("a", "all");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 2, "kill [--all] [--pid N] <container id> [signal]", &pos)) {
    return kExitUsage;
  }
  int sig = pos.size() > 1 ? ParseSignal(pos[1]) : SIGTERM;
  if (sig == 0) return Fail(absl::StrCat("unknown signal \"", pos[1], "\""));
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  control::v1::SignalRequest req;
  req.set_container_id(st->id);
  req.set_signal(sig);
  req.set_all(all);
  req.set_pid(std::atoi(pid.c_str()));
  control::v1::SignalResponse resp;
  if (absl::Status s = container::Call(*st, "Signal", req, &resp); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
