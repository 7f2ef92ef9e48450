#include "runsc/container/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::container {
namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

absl::Status RunOne(const std::string& name, const oci::Hook& h, const std::string& state) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat(name, ": pipe: ", std::strerror(errno)));
  std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : h.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat(name, ": fork: ", std::strerror(errno)));
  if (pid == 0) {
    dup2(in[0], 0);
    execve(h.path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  // The hook may not read its stdin: never let that block us (SIGPIPE is
  // ignored in seedsc; a short write is fine).
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  if (write(in[1], state.data(), state.size()) < 0) {
    // EAGAIN/EPIPE: the hook did not want it all.
  }
  close(in[1]);
  int64_t deadline = h.timeout_s ? NowMs() + *h.timeout_s * 1000LL : 0;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, deadline ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return absl::InternalError(absl::StrCat(name, ": wait: ", std::strerror(errno)));
    if (deadline && NowMs() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return absl::DeadlineExceededError(
          absl::StrCat(name, ": ", h.path, " timed out after ", *h.timeout_s, "s"));
    }
    if (deadline) usleep(5000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": ", h.path, " exited with status ", WEXITSTATUS(status)));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(name, ": ", h.path, " killed by signal ", WTERMSIG(status)));
}

}  // namespace

absl::Status RunHooks(const std::string& kind, const std::vector<oci::Hook>& hooks,
                      const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    absl::Status s = RunOne(absl::StrCat("hooks.", kind, "[", i, "]"), hooks[i], state_json);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::container
