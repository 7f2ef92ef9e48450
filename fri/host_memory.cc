#include "fri/host_memory.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
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

std::set<uint64_t> PipesOf(pid_t pid) {
  std::set<uint64_t> out;
  std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  char target[64];
  while (dirent* e = readdir(d)) {
    ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view t(target, n);
    uint64_t ino = 0;
    if (absl::ConsumePrefix(&t, "pipe:[") && absl::ConsumeSuffix(&t, "]") && absl::SimpleAtoi(t, &ino)) {
      out.insert(ino);
    }
  }
  closedir(d);
  return out;
}

std::vector<pid_t> SandboxProcesses(pid_t sentry, const std::set<pid_t>& other_sentries,
                                    const std::vector<ProcEntry>& table,
                                    const std::function<std::set<uint64_t>(pid_t)>& pipes_of) {
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
  const std::set<pid_t> tree = subtree(sentry);
  std::set<pid_t> theirs;  // processes in the other sandboxes' trees
  for (pid_t o : other_sentries) {
    for (pid_t p : subtree(o)) theirs.insert(p);
  }
  // Groups that hold a sentry (a fork's sentry stays in its seed's group),
  // and the caller's, say nothing of ownership: there the tree decides.
  std::set<pid_t> sentry_groups{getpgrp(), pgid_of[sentry]};
  for (pid_t o : other_sentries) {
    if (auto it = pgid_of.find(o); it != pgid_of.end()) sentry_groups.insert(it->second);
  }
  // Any other group led by a process of these trees is an anchor's (a
  // spare's, or an adopted one's: sentry/sfork) with its zygote and stubs,
  // whichever process made them. It belongs to the sentry that shares a pipe
  // with its leader (the anchor waits for EOF on a pipe whose write end only
  // its sentry holds: the seed for a spare, the fork once adopted), else to
  // the tree holding its leader.
  std::map<pid_t, std::set<uint64_t>> sentry_pipes;
  auto group_is_mine = [&](pid_t leader) {
    std::set<uint64_t> held = pipes_of(leader);
    if (!held.empty()) {
      std::vector<pid_t> holders;
      for (pid_t s : other_sentries) holders.push_back(s);
      holders.push_back(sentry);
      pid_t owner = 0;
      for (pid_t s : holders) {
        auto [it, fresh] = sentry_pipes.try_emplace(s);
        if (fresh) it->second = pipes_of(s);
        if (std::any_of(held.begin(), held.end(), [&](uint64_t i) { return it->second.contains(i); })) {
          owner = owner == 0 ? s : -1;  // -1: more than one holds it
        }
      }
      if (owner > 0) return owner == sentry;
    }
    return tree.contains(leader);
  };
  std::map<pid_t, bool> mine_by_group;
  std::set<pid_t> mine{sentry};
  for (const ProcEntry& e : table) {
    if (e.pid == sentry || other_sentries.contains(e.pid)) continue;
    if (!sentry_groups.contains(e.pgid) && (tree.contains(e.pgid) || theirs.contains(e.pgid))) {
      auto [it, fresh] = mine_by_group.try_emplace(e.pgid);
      if (fresh) it->second = group_is_mine(e.pgid);
      if (it->second) mine.insert(e.pid);
    } else if (tree.contains(e.pid)) {
      mine.insert(e.pid);
    }
  }
  return {mine.begin(), mine.end()};
}

}  // namespace seedvisor::fri
