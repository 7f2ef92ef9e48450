#include "runsc/container/cgroup.h"

#include <cstdint>

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace seedvisor::container {
namespace {

// cpuacct: for the sandbox's CPU usage (Stats); cpuset: linux.resources.cpu.cpus.
constexpr const char* kControllers[] = {"memory", "cpu", "cpuacct", "pids", "cpuset"};

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

// The file's content without surrounding whitespace, or "" if unreadable.
std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::string v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
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

bool SetsHostLimits(const oci::Resources& r) {
  return r.memory_limit || r.memory_reservation || r.memory_swap || r.cpu_shares || r.cpu_quota ||
         r.cpu_period || r.cpuset_cpus;
}

absl::Status PodMemberHostLimits(const oci::Resources& r, const std::string& id) {
  if (!SetsHostLimits(r)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "update: container ", id,
      " runs in its pod's sandbox: its memory and cpu limits are that sandbox's cgroup's (the pod "
      "sandbox container's); only its pids limit is its own"));
}

absl::Status ApplyUpdate(const oci::Resources& r, const std::string& id, bool joined,
                         const std::string& cgroup_path,
                         const std::function<absl::Status(int64_t)>& set_guest_pids_limit,
                         const std::string& mount_root) {
  if (joined) {
    if (absl::Status s = PodMemberHostLimits(r, id); !s.ok()) return s;
  } else if (cgroup_path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("update: container ", id,
                     " has no cgroup of its own (config.json sets neither linux.cgroupsPath nor "
                     "linux.resources)"));
  } else if (absl::Status s = UpdateCgroups(r, cgroup_path, mount_root); !s.ok()) {
    // The host's share first (with room for the sandbox's own tasks), then
    // the guest's limit, which only the sandbox keeps.
    return s;
  }
  if (!r.pids_limit || *r.pids_limit == 0) return absl::OkStatus();
  if (absl::Status s = set_guest_pids_limit(*r.pids_limit); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("update: pids.limit: ", s.message()));
  }
  return absl::OkStatus();
}

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

int64_t HostPidsMax(int64_t limit) {
  // Measured: about two host tasks per guest task (sentry thread, stub
  // thread) and a few dozen for the sandbox itself; room to spare on both.
  constexpr int64_t kPerTask = 3, kSandbox = 256;
  if (limit > (INT64_MAX - kSandbox) / kPerTask) return INT64_MAX;
  return limit * kPerTask + kSandbox;
}

absl::Status CreateCgroups(const oci::Spec& spec, const std::string& path,
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
  // A new v1 cpuset has no cpus and no mems, and nothing can join it until
  // both are set (cpuset(7), "cpuset.cpus"): inherit the parent's.
  std::string cpuset = absl::StrCat(mount_root, "/cpuset");
  if (Exists(cpuset)) {
    std::string parent = cpuset;
    for (const std::string& pre : Prefixes(path)) {
      std::string d = absl::StrCat(cpuset, "/", pre);
      for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
        std::string mine = ReadTrimmed(absl::StrCat(d, "/", f));
        if (!mine.empty()) continue;
        if (absl::Status s = WriteFile(absl::StrCat(d, "/", f), ReadTrimmed(absl::StrCat(parent, "/", f)));
            !s.ok()) {
          return fail(s);
        }
      }
      parent = d;
    }
  }
  if (absl::Status s = UpdateCgroups(spec.resources, path, mount_root); !s.ok()) return fail(s);
  return absl::OkStatus();
}

absl::Status ApplyCgroups(const oci::Spec& spec, const std::string& path,
                          const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  if (absl::Status s = CreateCgroups(spec, path, mount_root); !s.ok()) return s;
  auto fail = [&](absl::Status s) {
    RemoveCgroups(path, mount_root).IgnoreError();
    return s;
  };
  // "0" names the writing process itself (cgroups(7), cgroup.procs).
  for (const char* c : kControllers) {
    std::string procs = absl::StrCat(mount_root, "/", c, "/", path, "/cgroup.procs");
    if (!Exists(procs)) continue;
    if (absl::Status s = WriteFile(procs, "0"); !s.ok()) return fail(s);
  }
  return absl::OkStatus();
}

absl::Status UpdateCgroups(const oci::Resources& r, const std::string& path,
                           const std::string& mount_root) {
  if (path.empty() || path.find("..") != std::string::npos) {
    return absl::FailedPreconditionError("cgroup: the container has no cgroup path");
  }
  struct Write {
    const char* field;  // the OCI field, for errors
    std::string file;
    std::string value;
  };
  std::string mem = absl::StrCat(mount_root, "/memory/", path, "/");
  std::string cpu = absl::StrCat(mount_root, "/cpu/", path, "/");
  std::string pids = absl::StrCat(mount_root, "/pids/", path, "/");
  std::string cpuset = absl::StrCat(mount_root, "/cpuset/", path, "/");
  std::vector<Write> writes;
  bool swap = r.memory_swap && Exists(mem + "memory.memsw.limit_in_bytes");
  // v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every
  // step (mem_cgroup_resize_max: EINVAL otherwise): when the swap limit
  // grows, it goes first.
  bool swap_first = false;
  if (swap && r.memory_limit) {
    int64_t cur = 0;
    std::string cur_text = ReadTrimmed(mem + "memory.memsw.limit_in_bytes");
    cur = cur_text.empty() ? 0 : std::strtoll(cur_text.c_str(), nullptr, 10);
    swap_first = *r.memory_swap == -1 || *r.memory_swap > cur;
  }
  Write swap_write{"memory.swap", mem + "memory.memsw.limit_in_bytes",
                   swap ? absl::StrCat(*r.memory_swap) : ""};
  if (swap_first) writes.push_back(swap_write);
  if (r.memory_limit) {
    writes.push_back({"memory.limit", mem + "memory.limit_in_bytes", absl::StrCat(*r.memory_limit)});
  }
  if (swap && !swap_first) writes.push_back(swap_write);
  if (r.memory_reservation) {
    writes.push_back({"memory.reservation", mem + "memory.soft_limit_in_bytes",
                      absl::StrCat(*r.memory_reservation)});
  }
  if (r.cpu_shares) writes.push_back({"cpu.shares", cpu + "cpu.shares", absl::StrCat(*r.cpu_shares)});
  if (r.cpu_period) {
    writes.push_back({"cpu.period", cpu + "cpu.cfs_period_us", absl::StrCat(*r.cpu_period)});
  }
  if (r.cpu_quota) writes.push_back({"cpu.quota", cpu + "cpu.cfs_quota_us", absl::StrCat(*r.cpu_quota)});
  if (r.cpuset_cpus) writes.push_back({"cpu.cpus", cpuset + "cpuset.cpus", *r.cpuset_cpus});
  if (r.pids_limit && *r.pids_limit != 0) {  // runc: 0 leaves the limit as it is
    writes.push_back({"pids.limit", pids + "pids.max",
                      *r.pids_limit > 0 ? absl::StrCat(HostPidsMax(*r.pids_limit)) : "max"});
  }
  for (const Write& w : writes) {
    if (absl::Status s = WriteFile(w.file, w.value); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(w.field, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

namespace {

uint64_t ReadU64(const std::string& path, bool* ok = nullptr) {
  std::string v = ReadTrimmed(path);
  if (ok != nullptr) *ok = !v.empty();
  return v.empty() ? 0 : std::strtoull(v.c_str(), nullptr, 10);
}

// The "key value" lines of memory.stat, memory.oom_control, cpuacct.stat.
std::map<std::string, uint64_t> ReadKeyed(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(path);
  std::string k;
  uint64_t v;
  while (in >> k >> v) out[k] = v;
  return out;
}

}  // namespace

CgroupStats ReadCgroupStats(const std::string& path, const std::string& mount_root) {
  CgroupStats st;
  if (path.empty() || path.find("..") != std::string::npos) return st;
  std::string mem = absl::StrCat(mount_root, "/memory/", path, "/");
  st.memory_usage = ReadU64(mem + "memory.usage_in_bytes", &st.has_memory);
  if (st.has_memory) {
    st.memory_max_usage = ReadU64(mem + "memory.max_usage_in_bytes");
    st.memory_failcnt = ReadU64(mem + "memory.failcnt");
    uint64_t limit = ReadU64(mem + "memory.limit_in_bytes");
    // v1 reports "no limit" as PAGE_COUNTER_MAX pages: a huge number.
    st.memory_limit = limit >= (1ULL << 62) ? 0 : limit;
    std::map<std::string, uint64_t> ms = ReadKeyed(mem + "memory.stat");
    st.memory_rss = ms["total_rss"];
    st.memory_cache = ms["total_cache"];
    st.oom_kills = ReadKeyed(mem + "memory.oom_control")["oom_kill"];
  }
  std::string acct = absl::StrCat(mount_root, "/cpuacct/", path, "/");
  st.cpu_usage_ns = ReadU64(acct + "cpuacct.usage", &st.has_cpu);
  if (st.has_cpu) {
    st.cpu_user_ns = ReadU64(acct + "cpuacct.usage_user");
    st.cpu_system_ns = ReadU64(acct + "cpuacct.usage_sys");
  }
  std::string pids = absl::StrCat(mount_root, "/pids/", path, "/");
  st.pids_current = ReadU64(pids + "pids.current", &st.has_pids);
  if (st.has_pids) st.pids_limit = ReadU64(pids + "pids.max");  // "max" reads as 0
  return st;
}

absl::StatusOr<int> RegisterOomEventFd(const std::string& path, const std::string& mount_root) {
  if (path.empty() || path.find("..") != std::string::npos) {
    return absl::FailedPreconditionError("cgroup: the container has no cgroup path");
  }
  std::string mem = absl::StrCat(mount_root, "/memory/", path, "/");
  int oom = open((mem + "memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
  if (oom < 0) {
    return absl::NotFoundError(absl::StrCat("cgroup: opening ", mem, "memory.oom_control: ",
                                            std::strerror(errno)));
  }
  int efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) {
    int e = errno;
    close(oom);
    return absl::InternalError(absl::StrCat("cgroup: eventfd: ", std::strerror(e)));
  }
  // "<eventfd> <fd of memory.oom_control>" (Documentation/admin-guide/
  // cgroup-v1/memory.rst, "OOM Control"); the kernel keeps only the eventfd.
  absl::Status s = WriteFile(mem + "cgroup.event_control", absl::StrCat(efd, " ", oom));
  close(oom);
  if (!s.ok()) {
    close(efd);
    return s;
  }
  return efd;
}

std::vector<pid_t> CgroupProcs(const std::string& path, const std::string& mount_root) {
  std::set<pid_t> pids;
  if (path.empty() || path.find("..") != std::string::npos) return {};
  for (const char* c : kControllers) {
    std::ifstream in(absl::StrCat(mount_root, "/", c, "/", path, "/cgroup.procs"));
    for (pid_t pid; in >> pid;) pids.insert(pid);
  }
  return {pids.begin(), pids.end()};
}

std::vector<CgroupDir> CgroupDirsOf(const std::string& path, const std::string& mount_root) {
  std::vector<CgroupDir> out;
  if (path.empty()) return out;
  std::vector<std::string> pre = Prefixes(path);
  for (const char* c : kControllers) {
    for (auto it = pre.rbegin(); it != pre.rend(); ++it) {
      out.push_back({absl::StrCat(mount_root, "/", c, "/", *it), it == pre.rbegin()});
    }
  }
  return out;
}

namespace {

// One rmdir of RemoveCgroups: a leaf still busy (processes leaving) is
// retried for ~2 s; a parent that holds other cgroups is not ours to
// remove. No allocation (RemoveCgroupDirsNoAlloc).
void RemoveCgroupDir(const CgroupDir& d) {
  for (int i = 0; i < 200; ++i) {
    if (rmdir(d.path.c_str()) == 0 || errno == ENOENT) break;
    if (!d.leaf || errno != EBUSY) break;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, nullptr);
  }
}

}  // namespace

void RemoveCgroupDirsNoAlloc(const std::vector<CgroupDir>& dirs) {
  for (const CgroupDir& d : dirs) RemoveCgroupDir(d);
}

absl::Status RemoveCgroups(const std::string& path, const std::string& mount_root) {
  absl::Status result;
  bool skip = false;  // this controller's leaf stayed: leave its parents
  for (const CgroupDir& d : CgroupDirsOf(path, mount_root)) {
    if (d.leaf) skip = false;
    if (skip) continue;
    RemoveCgroupDir(d);
    if (d.leaf && Exists(d.path)) {
      result = absl::InternalError(
          absl::StrCat("cgroup: cannot remove ", d.path, ": ", std::strerror(errno)));
      skip = true;
    }
  }
  return result;
}

}  // namespace seedvisor::container
