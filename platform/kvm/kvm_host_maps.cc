#include "platform/kvm/kvm_host_maps.h"

#include <sys/mman.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace seedvisor::platform::kvm {

std::optional<HostVma> ParseMapsLine(std::string_view line) {
  // start-end perms offset dev inode [path]
  std::string s(line);
  unsigned long start, end, offset, inode;
  char perms[5] = {};
  char dev[16] = {};
  if (std::sscanf(s.c_str(), "%lx-%lx %4s %lx %15s %lu", &start, &end, perms, &offset, dev,
                  &inode) != 6) {
    return std::nullopt;
  }
  HostVma v;
  v.start = start, v.end = end;
  v.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
           (perms[2] == 'x' ? PROT_EXEC : 0);
  v.backed = inode != 0;
  return v;
}

std::vector<HostVma> HostVmas(pid_t pid, uint64_t top) {
  std::vector<HostVma> out;
  FILE* maps = std::fopen(absl::StrCat("/proc/", pid, "/maps").c_str(), "re");
  if (maps == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), maps) != nullptr) {
    std::optional<HostVma> v = ParseMapsLine(line);
    if (v && v->end <= top) out.push_back(*v);
    // A line longer than the buffer (a long path): skip its rest.
    while (std::string_view(line).find('\n') == std::string_view::npos &&
           std::fgets(line, sizeof(line), maps) != nullptr) {
    }
  }
  std::fclose(maps);
  return out;
}

std::optional<HostVma> FindHostVma(pid_t pid, uint64_t addr) {
  for (const HostVma& v : HostVmas(pid, ~uint64_t{0})) {
    if (addr >= v.start && addr < v.end) return v;
  }
  return std::nullopt;
}

}  // namespace seedvisor::platform::kvm
