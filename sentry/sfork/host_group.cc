#include "sentry/sfork/host_group.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sentry/base/mono_clock.h"

namespace seedvisor::sentry {
namespace {

struct StatLine {
  char state = 0;
  pid_t pgrp = -1;
  std::string comm;
};

// /proc/PID/stat's name, state and pgrp; false if the process is gone. The
// name may hold spaces and parentheses: it ends at the last ')'.
bool ReadStat(pid_t pid, StatLine* out) {
  char path[40];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* open_paren = strchr(buf, '(');
  const char* close_paren = strrchr(buf, ')');
  if (open_paren == nullptr || close_paren == nullptr || close_paren < open_paren) return false;
  int ppid = 0, pgrp = 0;
  if (sscanf(close_paren + 1, " %c %d %d", &out->state, &ppid, &pgrp) != 3) return false;
  out->pgrp = pgrp;
  out->comm.assign(open_paren + 1, close_paren);
  return true;
}

// Whether process `pid`, whose /proc state is `state`, has exited as a
// whole. A zombie ('Z') or one on its way out of the process table ('X')
// may still have threads running: /proc shows its leader's state, which is
// Z as soon as that one thread has exited (a kvm stub's SIGKILLed leader
// is a zombie while its vCPU threads still tear down the VM). Only then
// does its pidfd poll readable.
bool Exited(pid_t pid, char state) {
  if (state != 'Z' && state != 'X') return false;
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // reaped since
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  const bool exited = poll(&p, 1, 0) == 1;
  close(fd);
  return exited;
}

bool IsLiveMember(pid_t pid, pid_t pgid, StatLine* st) {
  return ReadStat(pid, st) && st->pgrp == pgid && !Exited(pid, st->state);
}

}  // namespace

std::vector<pid_t> LiveGroupMembers(pid_t pgid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    StatLine st;
    if (IsLiveMember(static_cast<pid_t>(pid), pgid, &st)) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

bool KillGroupAndWait(pid_t pgid, absl::Duration deadline) {
  if (pgid <= 0) return true;
  if (kill(-pgid, SIGKILL) != 0 && errno == ESRCH) return true;  // no process bears it
  std::vector<int> pidfds;
  for (pid_t pid : LiveGroupMembers(pgid)) {
    const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) continue;  // exited and reaped since
    // The pid may have passed to another process between /proc and
    // pidfd_open: wait only for one that is still a live member.
    StatLine st;
    if (!IsLiveMember(pid, pgid, &st)) {
      close(fd);
      continue;
    }
    pidfds.push_back(fd);
  }
  return WaitPidfdsBy(std::move(pidfds), deadline);
}

bool WaitPidfdsBy(std::vector<int> pidfds, absl::Duration deadline) {
  std::vector<pollfd> waits;
  for (int fd : pidfds) waits.push_back(pollfd{.fd = fd, .events = POLLIN, .revents = 0});
  // A pidfd polls readable once its whole thread group has exited.
  while (!waits.empty()) {
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) break;
    const int r = poll(waits.data(), waits.size(),
                       static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno != EINTR) break;
    for (size_t i = 0; r > 0 && i < waits.size();) {
      if (waits[i].revents != 0) {
        close(waits[i].fd);
        waits[i] = waits.back();
        waits.pop_back();
      } else {
        ++i;
      }
    }
  }
  const bool all_gone = waits.empty();
  for (const pollfd& p : waits) close(p.fd);
  return all_gone;
}

std::string DescribeGroup(pid_t pgid) {
  std::string out;
  for (pid_t pid : LiveGroupMembers(pgid)) {
    StatLine st;
    if (!ReadStat(pid, &st)) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", pid, " (", st.comm, ") state ",
                    std::string(1, st.state));
  }
  return out;
}

}  // namespace seedvisor::sentry
