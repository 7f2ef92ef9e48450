// `seedsc ps [--format table|json] ID`: the container's processes; json is
// the list of pids (what containerd's runsc shim parses), table is runsc's
// UID PID PPID C STIME TIME CMD.
#include <time.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

int CmdPs(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("ps");
  std::string format = "table";
  fs.Choice("format", &format, {"table", "json"}, "output format");
  fs.Alias("f", "format");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "ps [--format table|json] <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  control::v1::ProcessesRequest req;
  req.set_container_id(st->id);
  control::v1::ProcessesResponse resp;
  if (absl::Status s = container::Call(*st, "Processes", req, &resp); !s.ok()) return Fail(s);
  if (format == "json") {
    nlohmann::json pids = nlohmann::json::array();
    for (const auto& p : resp.processes()) pids.push_back(p.pid());
    std::printf("%s\n", pids.dump().c_str());
    return 0;
  }
  std::printf("%-8s %-8s %-8s %-3s %-8s %-10s %s\n", "UID", "PID", "PPID", "C", "STIME", "TIME", "CMD");
  for (const auto& p : resp.processes()) {
    time_t start = p.start_unix_nanos() / 1000000000LL;
    struct tm tm;
    localtime_r(&start, &tm);
    char stime[16];
    strftime(stime, sizeof(stime), "%H:%M", &tm);
    uint64_t secs = (p.utime_ns() + p.stime_ns()) / 1000000000ULL;
    std::string t = absl::StrFormat("%02d:%02d:%02d", secs / 3600, secs / 60 % 60, secs % 60);
    std::printf("%-8u %-8d %-8d %-3d %-8s %-10s %s\n", p.uid(), p.pid(), p.ppid(), 0, stime,
                t.c_str(), p.cmd().c_str());
  }
  return 0;
}

}  // namespace seedvisor::runsc
