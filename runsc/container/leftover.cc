#include "runsc/container/leftover.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/host_process.h"
#include "runsc/container/sandbox.h"

namespace seedvisor::container {
namespace {

// When `dir` was made (statx's birth time; its ctime where the file system
// keeps none, which is later, so fewer processes pass as younger).
absl::Time MadeAt(const std::string& dir) {
  struct statx sx{};
  if (statx(AT_FDCWD, dir.c_str(), 0, STATX_BTIME | STATX_CTIME, &sx) != 0) {
    return absl::InfiniteFuture();
  }
  const statx_timestamp t = (sx.stx_mask & STATX_BTIME) ? sx.stx_btime : sx.stx_ctime;
  return absl::FromUnixSeconds(t.tv_sec) + absl::Nanoseconds(t.tv_nsec);
}

// The parent of host process `pid` (/proc/PID/stat's fourth field, counted
// from the last ')'), or -1.
pid_t ParentOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return -1;
  const size_t end = line.rfind(')');
  if (end == std::string::npos) return -1;
  std::istringstream rest(line.substr(end + 1));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// Whether `server`, serving the control socket of the leftover dir `dir`
// under `root`, is that leftover's sandbox: forked or booted for a caller
// that died before recording it. Only a seedsc sandbox started after the
// dir was made (to a clock tick, twice), or forked by a sandbox a state
// names (a fork made ahead: its seed forked it before the request,
// sentry/sfork), never one a state names itself (a seed, whose listener a
// fork could have inherited).
bool IsLeftoverSandbox(const std::string& root, const std::string& dir,
                        const ProcessIdentity& server) {
  bool younger = StartedAt(server) + absl::Milliseconds(20) >= MadeAt(dir);
  bool named = false;
  const pid_t parent = ParentOf(server.pid);
  for (const std::string& other : ListIds(root)) {
    absl::StatusOr<State> st = LoadState(root, other);
    if (!st.ok()) continue;
    named |= st->sandbox_pid == server.pid;
    younger |= st->sandbox_pid == parent;
  }
  return IsSeedscSandbox(server.pid) && younger && !named;
}

}  // namespace

absl::Status RemoveLeftover(const std::string& root, const std::string& id, bool end_sandbox) {
  if (absl::Status s = ValidateId(id); !s.ok()) return s;
  const std::string dir = StateDir(root, id);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist"));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (faccessat(fd, "state.json", F_OK, 0) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", id, "\" has a state: not a leftover"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", id, "\" is being made by another seedsc"));
  }
  // EndProcess checks the start time again through a pidfd, so what was
  // checked is what is killed.
  const std::string sock = ControlAddressFor(dir);
  if (absl::StatusOr<ProcessIdentity> server = ListenerOf(sock); server.ok()) {
    const bool ours = IsLeftoverSandbox(root, dir, *server);
    if (ours && !end_sandbox) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", id, "\" (a leftover) has a running sandbox (host pid ", server->pid,
          "): use --force"));
    }
    if (ours) {
      if (absl::Status s = EndProcess(*server, kEndProcessTimeout); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("container \"", id, "\" (a leftover): the "
                                                   "sandbox serving its control socket: ",
                                                   s.message()));
      }
    }
  }
  if (sock.rfind(dir, 0) != 0) unlink(sock.c_str());
  return RemoveStateDir(root, id);
}

void EndOrphanedStubs(const std::string& cgroups_path) {
  for (int round = 0; round < 3; ++round) {
    const std::vector<pid_t> stubs = OrphanedStubs(CgroupProcs(cgroups_path));
    if (stubs.empty()) return;
    for (pid_t pid : stubs) {
      if (absl::StatusOr<ProcessIdentity> id = IdentityOf(pid); id.ok()) {
        EndProcess(*id, absl::Seconds(3)).IgnoreError();
      }
    }
  }
}

void WarnIfSandboxUnknown(const State& st) {
  if (st.sandbox_pid <= 0 || st.sandbox_start_time != 0) return;
  fprintf(stderr, "seedsc: warning: container \"%s\": its state (from an older seedsc) does "
          "not say which process host pid %d was; none is signalled, the state goes\n",
          st.id.c_str(), st.sandbox_pid);
}

}  // namespace seedvisor::container
