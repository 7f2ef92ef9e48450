#include "runsc/container/host_process.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runsc/container/state.h"

namespace seedvisor::container {
namespace {

// The state letter of /proc/<path>/stat ('R', 'S', 'D', 'Z', ...), or 0.
char StateOf(const std::string& stat_path) {
  std::ifstream in(stat_path);
  std::string line;
  if (!std::getline(in, line)) return 0;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 0;
}

// Milliseconds left until `deadline` for poll(2), 0 once past.
int MsUntil(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

}  // namespace

std::string DescribeProcess(pid_t pid) {
  if (pid <= 0) return "";
  const std::string dir = absl::StrCat("/proc/", pid);
  DIR* d = opendir((dir + "/task").c_str());
  if (d == nullptr) return "";
  // Per state letter, how many threads; and the first live thread's wchan.
  std::map<char, int> states;
  std::string wchan;
  int threads = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string task = absl::StrCat(dir, "/task/", e->d_name);
    const char st = StateOf(task + "/stat");
    if (st == 0 || st == 'X') continue;
    ++states[st];
    ++threads;
    if (wchan.empty() && st != 'Z') {
      std::ifstream w(task + "/wchan");
      std::getline(w, wchan);
      if (wchan == "0") wchan.clear();
    }
  }
  closedir(d);
  if (threads == 0) return "";
  std::vector<std::pair<int, char>> by_count;
  for (auto [st, n] : states) by_count.push_back({n, st});
  std::sort(by_count.rbegin(), by_count.rend());
  std::vector<std::string> parts;
  for (auto [n, st] : by_count) {
    const std::string letter(1, st);
    parts.push_back(states.size() == 1 ? letter : absl::StrCat(n, " ", letter));
  }
  return absl::StrCat("state ", absl::StrJoin(parts, ", "), wchan.empty() ? "" : " in " + wchan,
                      ", ", threads, threads == 1 ? " thread" : " threads");
}

absl::Status EndProcess(pid_t pid, absl::Duration timeout) {
  if (pid <= 0) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + timeout;
  auto late = [&](const std::string& what) {
    return absl::DeadlineExceededError(absl::StrCat("host process ", pid, " has not exited ",
                                                    absl::FormatDuration(timeout), " after SIGKILL",
                                                    what.empty() ? "" : " (" + what + ")"));
  };
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    if (errno == ESRCH) return absl::OkStatus();  // reaped already
    // No pidfds (ENOSYS before Linux 5.3): by number.
    if (!SandboxAlive(pid)) return absl::OkStatus();
    kill(pid, SIGKILL);
    while (SandboxAlive(pid) && absl::Now() < deadline) usleep(5000);
    return SandboxAlive(pid) ? late(DescribeProcess(pid)) : absl::OkStatus();
  }
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  // Readable once every thread has exited (pidfd_open(2)): a zombie, or
  // reaped. The pid names our process for as long as the pidfd says it is
  // not reaped, so /proc is read between two such checks.
  pollfd p{pidfd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, MsUntil(deadline))) < 0 && errno == EINTR) {
  }
  std::string what = r > 0 ? "" : DescribeProcess(pid);
  const bool left = r <= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
  close(pidfd);
  return left ? late(what) : absl::OkStatus();
}

}  // namespace seedvisor::container
