// `seedsc list [--format text|json] [--quiet]`: the containers under --root,
// in runc/runsc's table or JSON form.
#include <sys/stat.h>

#include <cstdio>

#include "nlohmann/json.hpp"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"

namespace seedvisor::runsc {

int CmdList(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("list");
  std::string format = "text";
  bool quiet = false;
  fs.Choice("format", &format, {"text", "table", "json"}, "output format");
  fs.Bool("quiet", &quiet, "print only the container ids");
  fs.Alias("f", "format");
  fs.Alias("q", "quiet");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 0, 0, "list [--format text|json] [--quiet]", &pos)) return kExitUsage;
  // As runc: a --root that does not exist yet holds no containers; one that
  // is not a directory is a mistake to report, not an empty list.
  struct stat root_st;
  if (stat(cfg.root.c_str(), &root_st) == 0 && !S_ISDIR(root_st.st_mode)) {
    return Fail("--root " + cfg.root + ": not a directory");
  }
  std::vector<std::string> ids = container::ListIds(cfg.root);
  if (quiet) {
    for (const auto& id : ids) std::printf("%s\n", id.c_str());
    return 0;
  }
  nlohmann::json all = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
  for (const auto& id : ids) {
    auto st = container::LoadState(cfg.root, id);
    if (!st.ok()) continue;
    std::string status = container::LiveStatus(*st);
    int pid = status == "stopped" ? 0 : st->pid();
    all.push_back({{"ociVersion", st->oci_version}, {"id", id}, {"pid", pid}, {"status", status},
                   {"bundle", st->bundle}, {"rootfs", st->rootfs}, {"created", st->created},
                   {"annotations", st->annotations}, {"owner", st->owner}});
    rows.push_back({id, std::to_string(pid), status, st->bundle, st->created, st->owner});
  }
  if (format == "json") {
    std::printf("%s\n", all.dump().c_str());
    return 0;
  }
  // A tabwriter with padding 3, as runsc's.
  std::vector<size_t> width(6, 0);
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace seedvisor::runsc
