// Memory of a sandbox's host processes, for FRI Stats: which processes make
// up a sandbox (the sentry and its helpers) and what they map, from
// /proc/<pid>/smaps_rollup.
//
//   std::vector<pid_t> pids = fri::SandboxProcesses(sentry_pid, other_sentries);
//   fri::Memory m = fri::SumMemory(pids);   // m.uss_bytes, m.pss_bytes
#ifndef SEEDVISOR_FRI_HOST_MEMORY_H_
#define SEEDVISOR_FRI_HOST_MEMORY_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedvisor::fri {

struct Memory {
  uint64_t uss_bytes = 0;  // Private_Clean + Private_Dirty
  uint64_t pss_bytes = 0;
  uint32_t processes = 0;  // how many smaps_rollup files were read
};

// Parses one smaps_rollup text (the kB lines); InvalidArgument if it has
// no Pss line.
absl::StatusOr<Memory> ParseSmapsRollup(const std::string& text);

// Sums the smaps_rollup of `pids`; a process that is gone is skipped.
Memory SumMemory(const std::vector<pid_t>& pids);

struct ProcEntry {
  pid_t pid, ppid, pgid;
};
// Every process in /proc.
std::vector<ProcEntry> ReadProcTable();

// The pipe inodes among `pid`'s open fds (/proc/PID/fd).
std::set<uint64_t> PipesOf(pid_t pid);

// The host processes of the sandbox whose sentry is `sentry`: it, its
// descendants, and the members of the process groups of its anchors. A
// descendant that is itself in `other_sentries` (a sandbox forked from this
// one) is another sandbox, left out with its subtree. A fork's anchor,
// zygote and stubs are made by the seed (its children, or its zygote's)
// ahead of the fork, as a spare: an anchor's group belongs to the sentry
// that shares a pipe with the anchor (`pipes_of`), the seed until a fork
// adopts it, then that fork; so a fork's pages are never its seed's. A group
// that holds a sentry, or the caller, is not followed.
std::vector<pid_t> SandboxProcesses(pid_t sentry, const std::set<pid_t>& other_sentries,
                                    const std::vector<ProcEntry>& table,
                                    const std::function<std::set<uint64_t>(pid_t)>& pipes_of = PipesOf);

}  // namespace seedvisor::fri

#endif  // SEEDVISOR_FRI_HOST_MEMORY_H_
