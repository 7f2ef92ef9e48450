#include "runsc/container/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
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

// In the forked child (no allocation): joins the namespaces of `ns_pid`
// (uts, ipc, net, pid, mount) and forks once more, since setns(2) of a pid
// namespace only applies to children; the grandchild returns to exec the
// hook, this child waits for it and passes its exit status on. Before that,
// `fd` was opened in the runtime's mount namespace (runtime-spec: the path
// resolves there). The pid namespace's /proc is the one mounted in its mount
// namespace, so the hook's /proc/self is its own.
void JoinNamespaces(pid_t ns_pid) {
  char path[64];
  for (const char* ns : {"uts", "ipc", "net", "pid", "mnt"}) {
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", ns_pid, ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    // A namespace shared with us (net with --network=host) is joined as a no-op.
    if (fd < 0 || setns(fd, 0) != 0) _exit(126);
    close(fd);
  }
  pid_t child = fork();
  if (child < 0) _exit(126);
  if (child == 0) return;
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    signal(WTERMSIG(status), SIG_DFL);
    raise(WTERMSIG(status));
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
}

// Writes what fits of `data` into the non-blocking `fd`, a pipe whose
// reader may have gone, without a SIGPIPE that the caller's disposition
// would turn into its death: a library must not depend on its caller
// ignoring SIGPIPE. The write's SIGPIPE (sent to this thread, pipe(7)) is
// blocked meanwhile and taken back unless one was pending already.
void WriteWithoutSigpipe(int fd, const std::string& data) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  if (write(fd, data.data(), data.size()) < 0 && errno == EPIPE && !was_pending) {
    const timespec now = {0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &now) < 0 && errno == EINTR) {
    }
  }
  // Otherwise EAGAIN or a short write: the hook did not want it all.
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

absl::Status RunOne(const std::string& name, const oci::Hook& h, const std::string& state,
                    pid_t ns_pid) {
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
    close(in[1]);  // the intermediate child below never execs
    if (ns_pid <= 0) {
      execve(h.path.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    // Its own process group: a timeout kills the grandchild too.
    setpgid(0, 0);
    // Not O_CLOEXEC: a #! script's interpreter opens it as /dev/fd/N.
    int fd = open(h.path.c_str(), O_PATH);
    if (fd < 0) _exit(127);
    JoinNamespaces(ns_pid);
    syscall(SYS_execveat, fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
    _exit(127);
  }
  close(in[0]);
  // The hook may not read its stdin, or may have exited already: never let
  // that block or kill us (a short write is fine).
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  WriteWithoutSigpipe(in[1], state);
  close(in[1]);
  int64_t deadline = h.timeout_s ? NowMs() + *h.timeout_s * 1000LL : 0;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, deadline ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return absl::InternalError(absl::StrCat(name, ": wait: ", std::strerror(errno)));
    if (deadline && NowMs() > deadline) {
      kill(pid, SIGKILL);
      if (ns_pid > 0) kill(-pid, SIGKILL);
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
                      const std::string& state_json, pid_t ns_pid) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    absl::Status s =
        RunOne(absl::StrCat("hooks.", kind, "[", i, "]"), hooks[i], state_json, ns_pid);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::container
