// `seedsc start ID`: runs the startContainer hooks and the container's process
// (config.json's) in the sandbox, then the poststart hooks.
#include "runsc/cmd_common.h"
#include "runsc/container/hooks.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

// Shared with `run`.
absl::Status StartContainer(const GlobalConfig& cfg, const container::State& st) {
  control::v1::StartRequest req;
  req.set_container_id(st.id);
  // --boot-timeout bounds the start of the container's process, plus what
  // its startContainer hooks may take.
  absl::Duration timeout = BootTimeout(cfg).value_or(absl::Seconds(60));
  auto spec = container::SavedSpec(cfg.root, st);
  if (spec.ok() && !spec->hooks.start_container.empty()) {
    // startContainer hooks run inside the sandbox (the container's
    // namespaces), before the container's process.
    for (const oci::Hook& h : spec->hooks.start_container) {
      control::v1::Hook* p = req.add_start_container_hooks();
      p->set_path(h.path);
      for (const std::string& a : h.args) p->add_args(a);
      for (const std::string& e : h.env) p->add_env(e);
      p->set_timeout_s(h.timeout_s.value_or(0));
      if (!h.timeout_s.has_value()) timeout = absl::InfiniteDuration();
      timeout += absl::Seconds(h.timeout_s.value_or(0));
    }
    req.set_state_json(container::OciStateJson(st, "created", -1));
  }
  control::v1::StartResponse resp;
  absl::Status started = container::Call(
      st, "Start", req, &resp,
      timeout == absl::InfiniteDuration() ? absl::ZeroDuration() : timeout);
  if (absl::IsDeadlineExceeded(started)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "container \"", st.id, "\": its process did not start within ",
        absl::FormatDuration(timeout), " (--boot-timeout): the sandbox never answered Start"));
  }
  if (!started.ok()) return started;
  if (spec.ok() && !spec->hooks.poststart.empty()) {
    // runtime-spec: a failing poststart hook is a warning; the container runs.
    absl::Status s = container::RunHooks("poststart", spec->hooks.poststart,
                                         container::OciStateJson(st, "running", -1));
    if (!s.ok()) std::fprintf(stderr, "seedsc: warning: %s\n", std::string(s.message()).c_str());
  }
  return absl::OkStatus();
}

int CmdStart(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("start");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "start <container id>", &pos)) return kExitUsage;
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  auto lock = container::Lock::Acquire(cfg.root, pos[0]);
  if (!lock.ok()) return Fail(lock.status());
  if (absl::Status s = StartContainer(cfg, *st); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
