#include "fri/host_memory.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace seedvisor::fri {

absl::StatusOr<Memory> ParseSmapsRollup(const std::string& text) {
  Memory m;
  bool have_pss = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 2) continue;
    uint64_t kb = 0;
    if (!absl::SimpleAtoi(f[1], &kb)) continue;
    if (f[0] == "Pss:") {
      m.pss_bytes += kb << 10;
      have_pss = true;
    } else if (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:") {
      m.uss_bytes += kb << 10;
    }
  }
  if (!have_pss) return absl::InvalidArgumentError("smaps_rollup: no Pss: line");
  m.processes = 1;
  return m;
}

Memory SumMemory(const std::vector<pid_t>& pids) {
  Memory sum;
  for (pid_t pid : pids) {
    std::ifstream f(absl::StrCat("/proc/", pid, "/smaps_rollup"));
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    absl::StatusOr<Memory> m = ParseSmapsRollup(ss.str());
    if (!m.ok()) continue;  // a zombie or kernel thread has no mappings
    sum.uss_bytes += m->uss_bytes;
    sum.pss_bytes += m->pss_bytes;
    sum.processes += 1;
  }
  return sum;
}

std::vector<ProcEntry> ReadProcTable() {
  std::vector<ProcEntry> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat;
    if (!std::getline(f, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<absl::string_view> rest =
        absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
    ProcEntry pe{pid, 0, 0};
    if (rest.size() < 3 || !absl::SimpleAtoi(rest[1], &pe.ppid) ||
        !absl::SimpleAtoi(rest[2], &pe.pgid)) {
      continue;
    }
    out.push_back(pe);
  }
  closedir(d);
  return out;
}

std::vector<pid_t> SandboxProcesses(pid_t sentry, const std::set<pid_t>& other_sentries,
                                    const std::vector<ProcEntry>& table) {
  std::multimap<pid_t, pid_t> children;
  std::map<pid_t, pid_t> pgid_of;
  for (const ProcEntry& e : table) {
    children.emplace(e.ppid, e.pid);
    pgid_of[e.pid] = e.pgid;
  }
  auto subtree = [&](pid_t root) {
    std::set<pid_t> seen;
    std::vector<pid_t> todo{root};
    while (!todo.empty()) {
      pid_t p = todo.back();
      todo.pop_back();
      if (!seen.insert(p).second) continue;
      auto [b, e] = children.equal_range(p);
      for (auto it = b; it != e; ++it) {
        pid_t c = it->second;
        if (c != sentry && !other_sentries.contains(c)) todo.push_back(c);
      }
    }
    return seen;
  };
  if (!pgid_of.contains(sentry)) return {};
  // Process groups that belong to someone else.
  std::set<pid_t> foreign_groups{getpgrp()};
  for (pid_t o : other_sentries) {
    for (pid_t p : subtree(o)) {
      if (auto it = pgid_of.find(p); it != pgid_of.end()) foreign_groups.insert(it->second);
    }
  }
  std::set<pid_t> mine;
  for (pid_t p : subtree(sentry)) mine.insert(p);
  std::set<pid_t> groups;
  for (pid_t p : mine) {
    pid_t g = pgid_of[p];
    if (!foreign_groups.contains(g)) groups.insert(g);
  }
  for (const ProcEntry& e : table) {
    if (groups.contains(e.pgid)) mine.insert(e.pid);
  }
  return {mine.begin(), mine.end()};
}

}  // namespace seedvisor::fri
