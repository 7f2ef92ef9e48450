#include "shim/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "sentry/base/deadline.h"

namespace seedvisor::shim {

uint32_t ExitCode(int st) {
  if (WIFEXITED(st)) return static_cast<uint32_t>(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return 128 + static_cast<uint32_t>(WTERMSIG(st));
  return 255;
}

Reaper& Reaper::Get() {
  static Reaper* r = new Reaper();
  return *r;
}

void Reaper::Start() {
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  std::thread([this] { Loop(); }).detach();
}

void Reaper::Loop() {
  for (;;) {
    int st = 0;
    pid_t pid = wait4(-1, &st, 0, nullptr);
    if (pid > 0) {
      absl::MutexLock l(&mu_);
      exited_[pid] = st;
      if (children_ > 0) --children_;
      cv_.SignalAll();
      continue;
    }
    if (errno == EINTR) continue;
    // ECHILD: nothing to reap until the next Spawn (orphans only arrive
    // through our own children). Poll slowly as a backstop.
    absl::MutexLock l(&mu_);
    cv_.Await(&mu_, absl::Condition(+[](int* c) { return *c > 0; }, &children_),
              sentry::Deadline::In(absl::Milliseconds(200)));
  }
}

absl::StatusOr<pid_t> Reaper::Spawn(const std::vector<std::string>& argv, const int fds[3]) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  absl::MutexLock l(&mu_);  // the reaper cannot miss this child's exit
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Child: async-signal-safe calls only (no allocation, no locks).
    int tmp[3];
    for (int i = 0; i < 3; ++i) tmp[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 10) : -1;
    for (int i = 0; i < 3; ++i) {
      if (tmp[i] >= 0) dup2(tmp[i], i);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execv(args[0], args.data());
    _exit(127);
  }
  ++children_;
  cv_.SignalAll();
  return pid;
}

int Reaper::Wait(pid_t pid, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  struct Arg {
    Reaper* r;
    pid_t pid;
  } arg{this, pid};
  absl::Condition done(
      +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->r->exited_.count(a->pid) > 0; },
      &arg);
  // On the monotonic clock (mono_condvar.h, issue 10).
  const sentry::Deadline by =
      timeout > absl::ZeroDuration() ? sentry::Deadline::In(timeout) : sentry::Deadline::Never();
  if (!cv_.Await(&mu_, done, by)) return -1;
  int st = exited_[pid];
  exited_.erase(pid);
  return st;
}

}  // namespace seedvisor::shim
