// The shim is a child subreaper (PR_SET_CHILD_SUBREAPER): `seedsc create`
// forks the sandbox's pid 1 (which reaps the sentry, pid 2 there) and exits,
// so that pid 1 becomes our child; the sentry never is. One thread
// reaps every child and keeps each exit status until someone asks for it;
// child processes are started through Spawn so that no exit is missed.
//
//   Reaper::Get().Start();
//   ASSIGN_OR_RETURN(pid_t pid, Reaper::Get().Spawn(argv, {0: devnull, ...}));
//   int status = Reaper::Get().Wait(pid);   // raw wait(2) status
#ifndef SEEDVISOR_SHIM_REAPER_H_
#define SEEDVISOR_SHIM_REAPER_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::shim {

class Reaper {
 public:
  static Reaper& Get();

  // Becomes a subreaper and starts the reaping thread.
  void Start();

  // fork+exec argv[0] (a path) with fds[i] as fd i (i = 0, 1, 2); every
  // other fd is closed on exec (all of ours are O_CLOEXEC).
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const int fds[3]);

  // The raw wait status of pid once it exits; absl::nullopt-like -1 on
  // timeout (timeout <= 0: wait forever).
  int Wait(pid_t pid, absl::Duration timeout = absl::ZeroDuration());

 private:
  Reaper() = default;
  void Loop();

  absl::Mutex mu_;
  sentry::MonoCondVar cv_;  // signalled when exited_ or children_ grows
  std::map<pid_t, int> exited_ ABSL_GUARDED_BY(mu_);
  int children_ ABSL_GUARDED_BY(mu_) = 0;  // spawned, a hint for the loop
};

// "exit code, or 128+signal" from a raw wait status (SIGKILL → 137).
uint32_t ExitCode(int wait_status);

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_REAPER_H_
