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

namespace {

// Calls `f(line, vma)` for each line of /proc/PID/maps that parses.
template <typename F>
void ForEachMapsLine(pid_t pid, F f) {
  FILE* maps = std::fopen(absl::StrCat("/proc/", pid, "/maps").c_str(), "re");
  if (maps == nullptr) return;
  char line[512];
  while (std::fgets(line, sizeof(line), maps) != nullptr) {
    std::optional<HostVma> v = ParseMapsLine(line);
    if (v) f(std::string_view(line), *v);
    // A line longer than the buffer (a long path): skip its rest.
    while (std::string_view(line).find('\n') == std::string_view::npos &&
           std::fgets(line, sizeof(line), maps) != nullptr) {
    }
  }
  std::fclose(maps);
}

}  // namespace

std::vector<HostVma> HostVmas(pid_t pid, uint64_t top) {
  std::vector<HostVma> out;
  ForEachMapsLine(pid, [&](std::string_view, const HostVma& v) {
    if (v.end <= top) out.push_back(v);
  });
  return out;
}

std::vector<HostVma> HostVdsoVmas(pid_t pid) {
  std::vector<HostVma> out;
  ForEachMapsLine(pid, [&](std::string_view line, const HostVma& v) {
    for (std::string_view name : {"[vvar]\n", "[vvar_vclock]\n", "[vdso]\n"}) {
      if (line.size() >= name.size() && line.substr(line.size() - name.size()) == name) out.push_back(v);
    }
  });
  return out;
}

std::optional<HostVma> FindHostVma(pid_t pid, uint64_t addr) {
  for (const HostVma& v : HostVmas(pid, ~uint64_t{0})) {
    if (addr >= v.start && addr < v.end) return v;
  }
  return std::nullopt;
}

}  // namespace seedvisor::platform::kvm
