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

// The host processes of the sandbox whose sentry is `sentry`: it, its
// descendants, and the members of their process groups (a forked sandbox's
// anchor leads a group of its zygote and stubs). A descendant that is
// itself in `other_sentries` (a sandbox forked from this one) is another
// sandbox: it, its subtree and its groups are left out, and so is the
// caller's own process group.
std::vector<pid_t> SandboxProcesses(pid_t sentry, const std::set<pid_t>& other_sentries,
                                    const std::vector<ProcEntry>& table);

}  // namespace seedvisor::fri

#endif  // SEEDVISOR_FRI_HOST_MEMORY_H_
