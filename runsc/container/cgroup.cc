#include "runsc/container/cgroup.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace seedvisor::container {
namespace {

constexpr const char* kControllers[] = {"memory", "cpu", "pids"};

absl::Status WriteFile(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return absl::InternalError(absl::StrCat("cgroup: opening ", path, ": ", std::strerror(errno)));
  out << value;
  out.flush();
  if (!out.good()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup: writing \"", value, "\" to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// The directories of `path` from the outermost to the leaf ("a", "a/b").
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) {
      cur = cur.empty() ? path.substr(i, j - i) : cur + "/" + path.substr(i, j - i);
      out.push_back(cur);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string CgroupPathFor(const oci::Spec& spec, const std::string& id) {
  std::string p = spec.cgroups_path;
  // systemd's "slice:prefix:name" form: there is no systemd here to ask, so
  // it becomes a plain path (seedsc has no --systemd-cgroup).
  p = absl::StrReplaceAll(p, {{":", "/"}});
  while (!p.empty() && p[0] == '/') p.erase(0, 1);
  const oci::Resources& r = spec.resources;
  bool any = r.memory_limit || r.memory_reservation || r.cpu_shares || r.cpu_quota ||
             r.cpu_period || r.pids_limit;
  if (p.empty() && any) p = "seedsc/" + id;
  if (p.find("..") != std::string::npos) return "";
  return p;
}

absl::Status ApplyCgroups(const oci::Spec& spec, const std::string& path,
                          const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  auto fail = [&](absl::Status s) {
    RemoveCgroups(path, mount_root).IgnoreError();
    return s;
  };
  for (const char* c : kControllers) {
    std::string base = absl::StrCat(mount_root, "/", c);
    if (!Exists(base)) continue;  // controller not mounted: nothing to limit with
    for (const std::string& pre : Prefixes(path)) {
      std::string d = absl::StrCat(base, "/", pre);
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail(absl::InternalError(absl::StrCat("cgroup: mkdir ", d, ": ", std::strerror(errno))));
      }
    }
  }
  const oci::Resources& r = spec.resources;
  std::string mem = absl::StrCat(mount_root, "/memory/", path, "/");
  std::string cpu = absl::StrCat(mount_root, "/cpu/", path, "/");
  std::string pids = absl::StrCat(mount_root, "/pids/", path, "/");
  std::vector<std::pair<std::string, std::string>> writes;
  if (r.memory_limit) writes.push_back({mem + "memory.limit_in_bytes", absl::StrCat(*r.memory_limit)});
  if (r.memory_reservation) {
    writes.push_back({mem + "memory.soft_limit_in_bytes", absl::StrCat(*r.memory_reservation)});
  }
  if (r.memory_swap && Exists(mem + "memory.memsw.limit_in_bytes")) {
    writes.push_back({mem + "memory.memsw.limit_in_bytes", absl::StrCat(*r.memory_swap)});
  }
  if (r.cpu_shares) writes.push_back({cpu + "cpu.shares", absl::StrCat(*r.cpu_shares)});
  if (r.cpu_period) writes.push_back({cpu + "cpu.cfs_period_us", absl::StrCat(*r.cpu_period)});
  if (r.cpu_quota) writes.push_back({cpu + "cpu.cfs_quota_us", absl::StrCat(*r.cpu_quota)});
  if (r.pids_limit) {
    writes.push_back({pids + "pids.max", *r.pids_limit > 0 ? absl::StrCat(*r.pids_limit) : "max"});
  }
  for (const auto& [file, value] : writes) {
    if (absl::Status s = WriteFile(file, value); !s.ok()) return fail(s);
  }
  // "0" names the writing process itself (cgroups(7), cgroup.procs).
  for (const char* c : kControllers) {
    std::string procs = absl::StrCat(mount_root, "/", c, "/", path, "/cgroup.procs");
    if (!Exists(procs)) continue;
    if (absl::Status s = WriteFile(procs, "0"); !s.ok()) return fail(s);
  }
  return absl::OkStatus();
}

absl::Status RemoveCgroups(const std::string& path, const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  absl::Status result;
  std::vector<std::string> pre = Prefixes(path);
  for (const char* c : kControllers) {
    for (auto it = pre.rbegin(); it != pre.rend(); ++it) {
      std::string d = absl::StrCat(mount_root, "/", c, "/", *it);
      bool leaf = it == pre.rbegin();
      for (int i = 0; i < 200; ++i) {
        if (rmdir(d.c_str()) == 0 || errno == ENOENT) break;
        // A parent still holding other cgroups is not ours to remove.
        if (!leaf || errno != EBUSY) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (leaf && Exists(d)) {
        result = absl::InternalError(absl::StrCat("cgroup: cannot remove ", d, ": ", std::strerror(errno)));
        break;
      }
    }
  }
  return result;
}

}  // namespace seedvisor::container
