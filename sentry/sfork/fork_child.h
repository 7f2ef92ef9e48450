// Internal to sentry/sfork: the forked sentry's side of a sandbox fork
// (steps 1-4 of sfork.h), and what the seed's side of a fork made now
// (sfork.cc) and of one made ahead (ahead.cc) share. Everything here runs
// on the only thread of a forked sentry, or in the seed under the caller's
// fork lock.
//
//   SV: in a forked sentry:
//   Report r;
//   LetGoOfTheSeeds(spare);
//   absl::Status s = AdoptKernel(k, fctx, spare.anchor, &pids, r);  // steps 1-3
//   FinishInChild(k, s, false, report_fd, r, pids, spare.anchor, trace, setup, main);
#ifndef SEEDVISOR_SENTRY_SFORK_FORK_CHILD_H_
#define SEEDVISOR_SENTRY_SFORK_FORK_CHILD_H_

#include <limits.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "sentry/kernel/kernel.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/sfork/sfork.h"
#include "sentry/sfork/spares.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {

// What the child tells the seed, in one write (< PIPE_BUF: atomic).
struct Report {
  int32_t ok = 0;
  pid_t pid = 0;
  // CLOCK_MONOTONIC when each phase ended (0: not reached).
  int64_t phase_end[static_cast<int>(ForkPhase::kCount)] = {};
  char message[512] = {};
};
static_assert(sizeof(Report) < PIPE_BUF);

int64_t MonotonicNs();
// Marks the end of phase `p` in the child's report.
void EndPhase(Report& r, ForkPhase p);
// "what: strerror(err)", as an internal error.
absl::Status HostFailure(std::string_view what, int err);

// The seed's report fd and trace page of a fork between its start and
// FinishFork: every later fork's child closes and unmaps its copies
// (LetGoOfTheSeeds).
void AddInFlight(int report_fd, ForkTrace* trace);
void EndInFlight(int report_fd, ForkTrace* trace);

// ---- In the forked sentry ----
// First: the spare is ours; the seed's other spares and children are not,
// nor are the reports of its other forks in flight.
void LetGoOfTheSeeds(const Spare& spare);
// The fork made ahead the seed was starting when it forked us (its spare
// loop waits for it without the fork lock): its channel and trace are the
// seed's (ahead.cc). Part of LetGoOfTheSeeds.
void LetGoOfStartingAheadInForkChild();
// Which stdio slot each of the init's stdio files was (ForkFileContext).
void StdioSlots(const std::shared_ptr<ThreadGroup>& init, ForkFileContext* fctx);
// Steps 1-3 of sfork.h; the files adopt with `fctx` (no stdio in it: the
// stdio files wait in fctx.stdio_later). Adds the host processes adopted
// to `pids`.
absl::Status AdoptKernel(Kernel& k, ForkFileContext& fctx, pid_t anchor,
                         std::vector<pid_t>* pids, Report& r);
// Step 4, once steps 1-3 are done (`s` says how they went): the tasks'
// threads, the caller's setup, the report on `report_fd` (or, with
// `stall`, none: a test's hung fork), then `child_main`.
[[noreturn]] void FinishInChild(Kernel& k, absl::Status s, bool stall, int report_fd, Report& r,
                                const std::vector<pid_t>& pids, pid_t anchor, ForkTrace* trace,
                                const ForkChildSetup& child_setup,
                                const std::function<void()>& child_main);

// ---- In the seed ----
// Whether the child's report (or its end: the child died) arrived on `fd`
// before CLOCK_MONOTONIC reached `deadline_ns`.
bool AwaitReport(int fd, int64_t deadline_ns);
// Once a fork reported (or failed): what the seed maps MAP_SHARED stays its
// own (fork_child.cc, "MAP_SHARED memory across a fork").
void KeepSharedMappings(Kernel& k);
// Hands `opts`' request to the fork made ahead `spare` (ahead.cc). False if
// it is gone (or the request could not be sent).
bool HandOffToForkAhead(const Spare& spare, const ForkOptions& opts);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_FORK_CHILD_H_
