#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/cgroup_files.h"

namespace seedvisor::container {

using cgroup_files::kControllers;
using cgroup_files::ReadTrimmed;
using cgroup_files::WriteFile;

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

}  // namespace seedvisor::container
