#include "sentry/control/start_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sentry/control/stdio.h"

namespace seedvisor::control {
namespace {

absl::Status RunOne(sentry::Kernel& kernel, const sentry::ProcessSpec& init,
                    const std::string& name, const v1::Hook& h, const std::string& state) {
  sentry::ProcessSpec spec = init;
  spec.before_init = true;
  spec.exec_path = h.path();
  spec.argv.assign(h.args().begin(), h.args().end());
  if (spec.argv.empty()) spec.argv.push_back(h.path());
  spec.envp.assign(h.env().begin(), h.env().end());
  absl::StatusOr<HostStdio> null = OpenStdio(v1::Stdio(), nullptr);
  if (!null.ok()) return null.status();
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat(name, ": pipe: ", std::strerror(errno)));
  }
  // The state fits the pipe; a hook that does not read it must not block us.
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  if (write(in[1], state.data(), state.size()) < 0) {
    // EAGAIN: the hook gets what fitted.
  }
  close(in[1]);
  spec.stdio[0] = in[0];
  spec.stdio[1] = null->fds[1];
  spec.stdio[2] = null->fds[2];
  absl::StatusOr<std::shared_ptr<sentry::ThreadGroup>> tg = kernel.StartProcess(spec);
  close(in[0]);
  if (!tg.ok()) return absl::FailedPreconditionError(absl::StrCat(name, ": ", tg.status().message()));
  std::optional<int> ws = kernel.WaitProcessFor(
      *tg, h.timeout_s() > 0 ? absl::Seconds(h.timeout_s()) : absl::InfiniteDuration());
  if (!ws) {
    kernel.KillProcess(**tg);
    kernel.WaitProcess(*tg);
    kernel.Release(*tg);
    return absl::DeadlineExceededError(
        absl::StrCat(name, ": ", h.path(), " timed out after ", h.timeout_s(), "s"));
  }
  kernel.Release(*tg);
  if (WIFEXITED(*ws) && WEXITSTATUS(*ws) == 0) return absl::OkStatus();
  if (WIFEXITED(*ws)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": ", h.path(), " exited with status ", WEXITSTATUS(*ws)));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(name, ": ", h.path(), " killed by signal ", WTERMSIG(*ws)));
}

}  // namespace

absl::Status RunStartHooks(sentry::Kernel& kernel, const sentry::ProcessSpec& init,
                           const v1::StartRequest& req) {
  for (int i = 0; i < req.start_container_hooks_size(); ++i) {
    absl::Status s = RunOne(kernel, init, absl::StrCat("hooks.startContainer[", i, "]"),
                            req.start_container_hooks(i), req.state_json());
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::control
