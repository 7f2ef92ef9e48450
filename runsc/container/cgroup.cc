#include "runsc/container/cgroup.h"

#include <cstdint>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runsc/container/cgroup_files.h"
#include "runsc/container/cgroup_record.h"

namespace seedvisor::container {
namespace cgroup_files {

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

}  // namespace cgroup_files

using cgroup_files::Exists;
using cgroup_files::kControllers;
using cgroup_files::Prefixes;
using cgroup_files::ReadTrimmed;
using cgroup_files::WriteFile;

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
  if (joined && cgroup_path.empty()) {
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
                           const std::string& root, const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  {
    // Under the record's lock: a sibling's delete removes no parent of
    // ours between our mkdir of it and of the leaf inside.
    absl::StatusOr<CgroupRecord> rec = CgroupRecord::Open(root);
    if (!rec.ok()) return rec.status();
    std::vector<std::string> missing;
    for (const char* c : kControllers) {
      std::string base = absl::StrCat(mount_root, "/", c);
      if (!Exists(base)) continue;  // controller not mounted: nothing to limit with
      for (const std::string& pre : Prefixes(path)) {
        std::string d = absl::StrCat(base, "/", pre);
        if (!Exists(d)) missing.push_back(d);
      }
    }
    for (const std::string& d : missing) rec->Intend(d);
    if (absl::Status s = missing.empty() ? absl::OkStatus() : rec->Save(); !s.ok()) return s;
    std::vector<std::string> made;
    absl::Status s;
    for (const std::string& d : missing) {
      if (s.ok() && mkdir(d.c_str(), 0755) == 0) {
        rec->Add(d);
        made.push_back(d);
        continue;
      }
      if (s.ok() && errno != EEXIST) {
        s = absl::InternalError(absl::StrCat("cgroup: mkdir ", d, ": ", std::strerror(errno)));
      }
      rec->Drop(d);  // someone else's after all, or not made
    }
    if (!s.ok()) {
      // What this call made goes now, innermost first.
      for (auto it = made.rbegin(); it != made.rend(); ++it) {
        if (rmdir(it->c_str()) == 0) rec->Drop(*it);
      }
      rec->Save().IgnoreError();
      return s;
    }
    if (absl::Status saved = missing.empty() ? absl::OkStatus() : rec->Save(); !saved.ok()) {
      return saved;
    }
  }
  auto fail = [&](absl::Status s) {
    RemoveCgroups(path, root, mount_root).IgnoreError();
    return s;
  };
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
                          const std::string& root, const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  if (absl::Status s = CreateCgroups(spec, path, root, mount_root); !s.ok()) return s;
  auto fail = [&](absl::Status s) {
    RemoveCgroups(path, root, mount_root).IgnoreError();
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

// rmdir of a leaf seedsc made, retried for ~2 s while it is busy (its
// processes still leaving). Whether it is gone.
bool RemoveLeaf(const std::string& dir) {
  for (int i = 0; i < 200; ++i) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) return false;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, nullptr);
  }
  return false;
}

}  // namespace

absl::Status RemoveCgroups(const std::string& path, const std::string& root,
                           const std::string& mount_root) {
  if (path.empty()) return absl::OkStatus();
  std::vector<std::string> pre = Prefixes(path);
  // Which leaves are seedsc's, under the lock; then they go without it (a
  // leaf is one container's: nobody else waits on it), so that a sibling's
  // create does not wait for our exiting processes.
  std::map<std::string, std::optional<ino_t>> leaves;
  {
    absl::StatusOr<CgroupRecord> rec = CgroupRecord::Open(root);
    if (!rec.ok()) return rec.status();
    for (const char* c : kControllers) {
      std::string leaf = absl::StrCat(mount_root, "/", c, "/", path);
      if (rec->Made(leaf)) leaves[leaf] = rec->Recorded(leaf);
    }
  }
  absl::Status result;
  for (const auto& [leaf, ino] : leaves) {
    if (!RemoveLeaf(leaf)) {
      result = absl::InternalError(
          absl::StrCat("cgroup: cannot remove ", leaf, ": ", std::strerror(errno)));
    }
  }
  // Then, per controller whose leaf is gone, the parents seedsc made, now
  // empty, from the innermost up: the first that is not seedsc's, or not
  // empty (a sibling container in it), ends the walk.
  absl::StatusOr<CgroupRecord> rec = CgroupRecord::Open(root);
  if (!rec.ok()) return rec.status();
  for (const char* c : kControllers) {
    std::string base = absl::StrCat(mount_root, "/", c);
    std::string leaf = absl::StrCat(base, "/", path);
    if (auto it = leaves.find(leaf); it != leaves.end() && !Exists(leaf)) {
      rec->Drop(leaf, it->second);
    }
    if (!Exists(base) || Exists(leaf)) continue;
    for (auto it = pre.rbegin() + 1; it < pre.rend(); ++it) {
      std::string d = absl::StrCat(base, "/", *it);
      const std::optional<ino_t> ino = rec->Recorded(d);
      if (!Exists(d)) {
        if (ino) rec->Drop(d, ino);  // removed by someone else: forgotten
        continue;
      }
      if (!rec->Made(d)) {
        if (ino) rec->Drop(d, ino);  // a stale entry: made anew by someone else
        break;
      }
      if (rmdir(d.c_str()) != 0) break;
      rec->Drop(d, ino);
    }
  }
  rec->ForgetStale();
  if (absl::Status s = rec->Save(); !s.ok() && result.ok()) result = s;
  return result;
}

}  // namespace seedvisor::container
