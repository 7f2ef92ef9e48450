// ForkWatch: what each Fork RPC of a seed is doing and who holds the seed's
// fork lock, so that a Fork that stops advancing explains itself in the
// seed's log (issue 9: a Fork once hung past fri's 30 s with nothing said).
//
// The Fork handler names each step it enters; the seed's watchdog loop asks
// once a second which Forks have stayed in one step for `stall` or more and
// logs each such step once, with the fork lock's holder and its step.
//
//   ForkWatch w;
//   ForkWatch::Token t = w.Begin("c7");
//   w.Step(t, "waiting for the fork lock");
//   { absl::MutexLock fl(&fork_mu); w.Locked(t); ...; w.Unlocked(); }
//   w.End(t);
//   for (const std::string& line : w.Stalled(absl::Seconds(5))) Log::Warning("%s", line);
//
// Cheap and fork-safe: one small mutex, never held across anything that
// blocks; steps are string literals.
#ifndef SEEDVISOR_SENTRY_CONTROL_FORK_WATCH_H_
#define SEEDVISOR_SENTRY_CONTROL_FORK_WATCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_clock.h"

namespace seedvisor::control {

class ForkWatch {
 public:
  using Token = int64_t;
  // `now` is the clock (tests pass their own). Not absl::Now(): it runs in
  // the seed beside its host forks (sentry/base/mono_clock.h).
  explicit ForkWatch(std::function<absl::Duration()> now = sentry::MonotonicNow);

  // A Fork (or the seed's spare loop, ...) named `who` starts; its first
  // step is "started".
  Token Begin(std::string who);
  // It enters `step` (a string literal).
  void Step(Token t, const char* step);
  void End(Token t);
  // `t` holds the fork lock from now on / nobody does.
  void Locked(Token t);
  void Unlocked();

  // One line for each of them whose step began `stall` or more ago and has
  // not been reported yet: its name, step and how long, the fork lock's
  // holder (name, step, for how long) and how many are in flight.
  std::vector<std::string> Stalled(absl::Duration stall);

 private:
  struct Entry {
    std::string who;
    const char* step = "started";
    absl::Duration since;
    bool reported = false;
  };
  const std::function<absl::Duration()> now_;
  absl::Mutex mu_;
  Token next_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<Token, Entry> entries_ ABSL_GUARDED_BY(mu_);
  Token holder_ ABSL_GUARDED_BY(mu_) = 0;  // 0: the fork lock is free
  absl::Duration held_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_FORK_WATCH_H_
