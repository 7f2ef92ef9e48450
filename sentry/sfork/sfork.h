// Sandbox fork: a new, independent sandbox made from a quiesced one (a seed)
// by a host fork() of the whole sentry.
//
// The seed's guest-visible state is sentry memory, which the host fork
// copies copy-on-write; what is not (guest memory in stub processes, host
// fds behind some files, threads, the control socket) the child rebuilds on
// its only thread before it reports back:
//
//   1. an anchor process: the child sentry's child, leader of the process
//      group every host process of the new sandbox joins; it kills that
//      group when the child sentry dies (parent-death signal), so nothing of
//      a destroyed fork outlives it, and nothing ties it to the seed;
//   2. the platform becomes the child's (a zygote of its own), and every
//      guest address space gets a copy-on-write copy of the seed's stub made
//      by one of its parked threads, with fresh threads for the other tasks
//      (on ptrace, whose stub threads only the seed's task threads may
//      touch, those threads make the copies and save the FP state before
//      the host fork: Platform::SeedForkOnTaskThreads);
//   3. every task gets its own wakeup fd and keeps its registers and FP
//      state; every open file adopts or refuses its host state
//      (FileDescription::AdoptInForkChild): nothing is shared by accident;
//   4. the caller's child setup (the new control server, stdio) runs, the
//      child reports its pid, and `child_main` runs forever.
//
// Nothing on this path creates a namespace, compiles a filter or parses a
// config. The seed stays quiesced and untouched; forks of one seed are
// serialized by the caller.
//
//   SV: in the seed's Fork RPC handler, with the kernel quiesced:
//   absl::StatusOr<ForkResult> r = ForkSandbox(kernel, {.stdio = fds},
//       [&] { return StartChildControlServer(); }, [&] { ServeForever(); });
#ifndef SEEDVISOR_SENTRY_SFORK_SFORK_H_
#define SEEDVISOR_SENTRY_SFORK_SFORK_H_

#include <sys/types.h>

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

struct ForkOptions {
  // The child's stdio (host fds of the seed's sentry, dup'ed by the child):
  // the init's stdio files switch to these.
  int stdio[3] = {0, 1, 2};
  // The init's thread group: its fds 0, 1, 2 say which stdio slot each of
  // the seed's stdio files was.
  std::shared_ptr<ThreadGroup> init;
};

struct ForkResult {
  pid_t pid = -1;  // the child sentry, as child_setup reported it (host pid)
};

// Forks the sandbox of `k`, which must be quiesced. In the child, after the
// kernel is the child's own, `child_setup` runs with the child's processes
// (the sentry first, then the anchor, the stubs; pids of this pid
// namespace) and sets the pid to report (an error ends the child and is
// returned here), then `child_main`, which must not return. Returns once
// the child has reported.
using ForkChildSetup = std::function<absl::Status(const std::vector<pid_t>& pids, pid_t* report)>;
absl::StatusOr<ForkResult> ForkSandbox(Kernel& k, const ForkOptions& opts,
                                       const ForkChildSetup& child_setup,
                                       const std::function<void()>& child_main);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_SFORK_H_
