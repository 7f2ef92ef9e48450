// `seedsc delete [--force] ID...`: removes stopped containers (with --force
// also running ones): no sandbox process, mount, cgroup or state dir stays.
#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/container/leftover.h"
#include "runsc/container/sandbox.h"

namespace seedvisor::runsc {

// Shared with `run`.
absl::Status DeleteContainer(const GlobalConfig& cfg, const std::string& id, bool force) {
  auto st = LoadContainer(cfg, id);
  // No state, but its dir: a create or fork killed before it recorded
  // the container (issue 9); nothing else removes that. A sandbox still
  // serving it runs: ended only with --force, as runc's delete would.
  if (absl::IsNotFound(st.status())) {
    absl::Status left = container::RemoveLeftover(cfg.root, id, force);
    return absl::IsNotFound(left) ? st.status() : left;
  }
  if (!st.ok()) return st.status();
  auto lock = container::Lock::Acquire(cfg.root, id);
  if (!lock.ok()) return lock.status();
  std::string status = container::LiveStatus(*st);
  // runc deletes a created (never started) container without --force.
  if (!force && status != "stopped" && status != "created") {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot delete container \"", id, "\" that is not stopped: ", status, " (use --force)"));
  }
  return container::DestroySandbox(cfg.root, *st);
}

int CmdDelete(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("delete");
  bool force = false;
  fs.Bool("force", &force, "kill the container if it is still running");
  fs.Alias("f", "force");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1000, "delete [--force] <container id>...", &pos)) return kExitUsage;
  int rc = 0;
  for (const std::string& id : pos) {
    if (absl::Status s = DeleteContainer(cfg, id, force); !s.ok()) rc = Fail(s);
  }
  return rc;
}

}  // namespace seedvisor::runsc
