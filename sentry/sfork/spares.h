// Spares: the host processes a sandbox fork needs, made ahead in the
// quiesced seed, so that a fork only adopts them. Internal to sentry/sfork:
// sfork.cc takes them (StartFork) and adopts one in the forked sentry; the
// seed's pool of them is spares.cc's, which also implements sfork.h's
// PrepareForkSpare, PublishForkSpare, DropForkSpare, ReapEndedForks and
// EndHostProcesses.
//
// A fork needs host processes of its own: an anchor, a zygote, a copy of
// every guest address space's stub. Making them costs most of a fork (each
// a host fork or a ptrace injection), and none of it depends on the fork's
// caller, so the seed makes them while it waits (PrepareForkSpare: after
// pause and after each fork, a pool of a few) and a fork only adopts one.
// They are copies of the seed's state at the time, which a quiesced seed
// keeps: a spare is valid while the kernel stays in the same quiesce epoch
// with the same address spaces and tasks. The platform keeps its part of
// each spare under the spare's anchor pid (Platform::PrepareForkZygote ...).
//
// The anchor is the seed's child, but it belongs to the fork: its life line
// is a pipe whose only write end ends up in the forked sentry (the seed
// closes its own right after the host fork; the anchor holds only the read
// end; a forked sentry closes its inherited copies of every other spare's
// line, and of its parent's, at once). End of file on it means the forked
// sentry is gone, however it died (anchor.h). A spare whose anchor died
// (or whose fork made ahead did) is dropped before a fork could take it.
//
// Everything here runs under the caller's fork lock (sfork.h).
//
//   SV: in StartFork:
//   absl::StatusOr<Spare> spare = TakeSpare(k, opts.progress);
//   ... host fork; in the child: AdoptSpareInForkChild(*spare) ...
//   SV: in FinishFork:
//   LetGoOfSpare(k, spare, /*child_took_it=*/f.ok);
//   AddForkedChild(f.sentry);
#ifndef SEEDVISOR_SENTRY_SFORK_SPARES_H_
#define SEEDVISOR_SENTRY_SFORK_SPARES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "sentry/kernel/kernel.h"
#include "sentry/sfork/sfork.h"

namespace seedvisor::sentry {

// The live tasks of a kernel that have an address space and a context, by
// address space.
using TasksByMm = std::map<MM*, std::vector<std::shared_ptr<Task>>>;
TasksByMm LiveTasksByMm(Kernel& k);

struct Spare {
  uint64_t epoch = 0;           // the seed's quiesce epoch it copied
  std::map<MM*, size_t> shape;  // the address spaces it copied, and their tasks
  pid_t anchor = -1;
  int life_fd = -1;  // the write end of the anchor's life line
  // A fork made ahead (sfork.h: StartForkAhead): the forked sentry that
  // adopted the spare and waits for its request (it holds the life line),
  // the seed's end of its channel, its trace page, the seed version it
  // copied.
  pid_t sentry = -1;
  int channel = -1;
  ForkTrace* trace = nullptr;
  uint64_t version = 0;
  bool ahead() const { return sentry > 0; }
};

// Reaps the ended forks, drops the spares that no longer fit the seed and
// takes one: with `ahead_version`, the oldest fork made ahead of that
// version if one is ready (the others of other versions are killed);
// otherwise, or with none, the oldest plain one, made now if there is none.
absl::StatusOr<Spare> TakeSpare(Kernel& k, const ForkProgress& progress,
                                const uint64_t* ahead_version = nullptr);
// For StartForkAhead: drops the spares that no longer fit the seed and the
// forks made ahead of another version than `version`; then, if fewer than
// `want` forks made ahead remain, takes the newest plain spare (none: the
// pool has no plain one, or enough made ahead).
std::optional<Spare> TakeSpareToForkAhead(Kernel& k, size_t want, uint64_t version);
// A fork made ahead, ready: into the pool. How many it holds now.
size_t AddForkAhead(Spare spare);
size_t CountForksAhead();
// A spare taken but not used (the fork could not start): the next one taken.
void PutBackSpare(Spare spare);

// The seed lets go of `spare` (no longer in the pool): it closes its end of
// the anchor's life line, if still open, and reaps the anchor once it
// ends. If a fork took the spare, the anchor and what the platform made are
// the fork's (the life line's other end is in the forked sentry);
// otherwise closing the line ends the anchor, which kills its group (the
// spare zygote and stub copies), and the platform kills what it made
// through its pidfds too. A fork made ahead that no fork took is killed
// (its anchor then ends its group).
void LetGoOfSpare(Kernel& k, Spare& spare, bool child_took_it);

// A forked sentry of ours: reaped by a later fork or spare once it ends.
void AddForkedChild(pid_t pid);

// In the forked sentry, on its only thread: `spare` is its own (it keeps
// the anchor's life line for its whole life); the seed's other spares, its
// own anchor's line and its children are not.
void AdoptSpareInForkChild(const Spare& spare);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_SPARES_H_
