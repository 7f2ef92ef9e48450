// `seedsc events [--stats] [--interval S] ID`: resource usage as runsc's
// event JSON ({"type":"stats","id":...,"data":{...}}); once with --stats,
// else every --interval seconds until the container stops.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "nlohmann/json.hpp"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

int CmdEvents(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("events");
  bool stats = false;
  std::string interval = "5";
  fs.Bool("stats", &stats, "print the stats once and exit");
  fs.String("interval", &interval, "seconds between stats events");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "events [--stats] [--interval S] <container id>", &pos)) {
    return kExitUsage;
  }
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  int every = std::max(1, std::atoi(interval.c_str()));
  for (;;) {
    control::v1::StatsRequest req;
    req.set_container_id(st->id);
    control::v1::StatsResponse r;
    if (absl::Status s = container::Call(*st, "Stats", req, &r); !s.ok()) {
      return stats ? Fail(s) : 0;  // the stream ends with the container
    }
    nlohmann::json data = {
        {"cpu", {{"usage", {{"total", r.cpu_usage_ns()}, {"user", r.cpu_user_ns()},
                            {"kernel", r.cpu_system_ns()}}}}},
        {"memory", {{"usage", {{"usage", r.memory_usage_bytes()}, {"limit", r.memory_limit_bytes()},
                               {"max", r.memory_max_rss_bytes()}}}}},
        {"pids", {{"current", r.pids_current()}, {"limit", r.pids_limit()}}}};
    nlohmann::json ev = {{"type", "stats"}, {"id", st->id}, {"data", data}};
    std::printf("%s\n", ev.dump().c_str());
    std::fflush(stdout);
    if (stats) return 0;
    sleep(every);
  }
}

}  // namespace seedvisor::runsc
