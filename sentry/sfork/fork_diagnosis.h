// What a sandbox fork that never reported was doing, told before the seed
// kills it (issue 9: one ptrace fork in ~20,000 never reported, and the
// seed's log said only that it was killed).
//
// Two sources:
//   - ForkTrace: a page the seed maps MAP_SHARED before the host fork, in
//     which the forked sentry's only thread names each step of its way to
//     the report (ForkChildStep) with the time it entered it; the seed reads
//     it when the child is late. It is the child's own watchdog, which it
//     cannot run itself (no thread of its own is allowed to start before it
//     reports, and a hung child cannot talk).
//   - /proc: every host thread of the forked sentry and of every process in
//     its anchor's group (zygote, stub copies, the anchor), with its state,
//     wchan, syscall, tracer, pending and blocked signals and kernel stack
//     where readable.
//
//   SV: in the seed, around the host fork:
//   ForkTrace* trace = ForkTrace::Map();      // before fork(); may be null
//   // child: SetForkChildTrace(trace); ForkChildStep("adopting the zygote"); ...
//   // seed, when the report is late:
//   Log::Warning("%s", DescribeUnreportedFork(sentry, anchor, trace));
//   ForkTrace::Unmap(trace);
#ifndef SEEDVISOR_SENTRY_SFORK_FORK_DIAGNOSIS_H_
#define SEEDVISOR_SENTRY_SFORK_FORK_DIAGNOSIS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace seedvisor::sentry {

class ForkTrace {
 public:
  static constexpr int kHistory = 24;   // the steps kept, latest last
  static constexpr int kStepLen = 96;   // a step's name, truncated

  // A zeroed page shared with the processes forked after this call; null
  // if the host refused the mapping (the fork then runs untraced).
  static ForkTrace* Map();
  static void Unmap(ForkTrace* t);

  // The child enters `step` (copied; truncated). Async-signal-safe: no
  // allocation, no lock (one writer: the child's forking thread).
  void Step(const char* step);
  // The seed: the steps so far, with when each began (relative to the
  // first) and how long the last has lasted by `now_ns` (CLOCK_MONOTONIC).
  std::string Describe(int64_t now_ns) const;

 private:
  struct Entry {
    int64_t since_ns;
    char name[kStepLen];
  };
  std::atomic<uint32_t> count_;  // steps entered so far (the ring wraps)
  Entry steps_[kHistory];
};
static_assert(sizeof(ForkTrace) <= 4096);

// In a forked sentry, before it reports: where ForkChildStep writes. Call
// it once, first thing after the host fork. Null: steps go nowhere.
void SetForkChildTrace(ForkTrace* trace);
// The forked sentry's current step (see ForkTrace::Step); does nothing in
// a process that is not a fork on its way to its report. Async-signal-safe.
void ForkChildStep(const char* step);

// Every host thread of process `sentry` and of every process in process
// group `pgid` (if > 0): one line each with its state, wchan, syscall,
// tracer and signal masks, then its kernel stack if readable; `trace`'s
// steps first if not null; then what the caller's fd `report_fd` (if >= 0)
// is and which of `sentry`'s fds is the same file (a report the caller
// waits for on a file the child does not hold can never come). Reads /proc
// of the caller's pid namespace.
std::string DescribeUnreportedFork(pid_t sentry, pid_t pgid, const ForkTrace* trace,
                                   int report_fd = -1);

// One process of the above (all its threads), `what` naming it.
std::string DescribeHostProcess(pid_t pid, const std::string& what);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_FORK_DIAGNOSIS_H_
