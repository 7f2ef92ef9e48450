#include "runsc/container/pod_pid_ns.h"

#include <dirent.h>

#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace seedvisor::container {
namespace {

// The pid in "/proc/<pid>/ns/pid", or 0 for any other path.
pid_t ProcPidOf(const std::string& path) {
  absl::string_view p = path;
  int pid = 0;
  if (!absl::ConsumePrefix(&p, "/proc/") || !absl::ConsumeSuffix(&p, "/ns/pid") ||
      !absl::SimpleAtoi(p, &pid) || pid <= 0) {
    return 0;
  }
  return pid;
}

}  // namespace

absl::StatusOr<PidNamespaceChoice> PidNamespaceOf(const std::string& root, const State& pod,
                                                  const oci::Spec& spec) {
  PidNamespaceChoice choice;
  for (const oci::Namespace& n : spec.namespaces) {
    if (n.type != "pid") continue;
    if (n.path.empty()) {
      choice.own = true;
      return choice;
    }
    const pid_t pid = ProcPidOf(n.path);
    if (pid != 0 && pid == pod.sandbox_pid) return choice;  // the pod sandbox's
    if (pid != 0) {
      for (const std::string& id : ListIds(root)) {
        absl::StatusOr<State> st = LoadState(root, id);
        if (st.ok() && st->sandbox_id == pod.id && st->container_pid == pid) {
          choice.of = id;
          return choice;
        }
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: linux.namespaces: pid namespace \"", n.path,
        "\" is not one of its pod's (the pid of the pod's sandbox, ", pod.sandbox_pid,
        ", or of one of its containers with a pid namespace of its own)"));
  }
  return choice;
}

pid_t HostTidOf(pid_t pid, pid_t ns_tid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  pid_t found = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(dir, "/", e->d_name, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      absl::string_view rest = line;
      if (!absl::ConsumePrefix(&rest, "NSpid:")) continue;
      // Ids from this process's /proc's namespace down: the first is the
      // host's (ours), the last the sandbox process's own.
      std::vector<absl::string_view> ids =
          absl::StrSplit(rest, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      int first = 0, last = 0;
      if (!ids.empty() && absl::SimpleAtoi(ids.front(), &first) &&
          absl::SimpleAtoi(ids.back(), &last) && last == ns_tid) {
        found = first;
      }
      break;
    }
    if (found != 0) break;
  }
  closedir(d);
  return found;
}

absl::StatusOr<pid_t> ContainerHostId(const PidNamespaceChoice& ns, pid_t sandbox_pid,
                                      pid_t host_thread) {
  if (!ns.own && ns.of.empty()) return 0;
  const pid_t id = host_thread > 0 ? HostTidOf(sandbox_pid, host_thread) : 0;
  if (id == 0) {
    return absl::InternalError(absl::StrCat(
        "its pid namespace is not the sandbox's but it has no host id of its own (the sandbox "
        "gave thread ", host_thread, ", not one of /proc/", sandbox_pid,
        "/task); its pid would be the sandbox's"));
  }
  return id;
}

}  // namespace seedvisor::container
