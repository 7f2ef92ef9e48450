// Helpers shared by the cgroup files (cgroup.cc, cgroup_stats.cc): the
// controllers seedsc uses and small file operations on cgroupfs. Internal to
// //runsc/container:cgroup.
#ifndef SEEDVISOR_RUNSC_CONTAINER_CGROUP_FILES_H_
#define SEEDVISOR_RUNSC_CONTAINER_CGROUP_FILES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace seedvisor::container::cgroup_files {

// cpuacct: for the sandbox's CPU usage (Stats); cpuset: linux.resources.cpu.cpus.
inline constexpr const char* kControllers[] = {"memory", "cpu", "cpuacct", "pids", "cpuset"};

// Writes `value` to the cgroup file `path`; the error names both.
absl::Status WriteFile(const std::string& path, const std::string& value);
// The file's content without surrounding whitespace, or "" if unreadable.
std::string ReadTrimmed(const std::string& path);
bool Exists(const std::string& p);
// The directories of `path` from the outermost to the leaf ("a", "a/b").
std::vector<std::string> Prefixes(const std::string& path);

}  // namespace seedvisor::container::cgroup_files

#endif  // SEEDVISOR_RUNSC_CONTAINER_CGROUP_FILES_H_
