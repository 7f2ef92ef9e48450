#include "runsc/container/host_process.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sentry/base/deadline.h"
#include "sentry/base/read_file.h"

namespace seedvisor::container {
namespace {

// What /proc/<pid>/stat says about a process.
struct Stat {
  char state = 0;           // field 3: 'R', 'S', 'D', 'Z', ...
  pid_t ppid = 0;           // field 4
  uint64_t start_time = 0;  // field 22
};

// /proc/<path>/stat's fields; false if it cannot be read. The command
// name (field 2) may hold spaces and parentheses: fields are counted from
// the last ')'.
bool ReadStat(const std::string& stat_path, Stat* out) {
  std::ifstream in(stat_path);
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const std::vector<absl::string_view> f = absl::StrSplit(
      absl::string_view(line).substr(paren + 2), ' ');
  if (f.size() < 20 || f[0].size() != 1) return false;
  out->state = f[0][0];
  return absl::SimpleAtoi(f[1], &out->ppid) && absl::SimpleAtoi(f[19], &out->start_time);
}

// The state letter of /proc/<path>/stat, or 0.
char StateOf(const std::string& stat_path) {
  Stat s;
  return ReadStat(stat_path, &s) ? s.state : 0;
}

// Read once it was read: no process outlives its boot. (seedd asks for it
// twice per call, for the fork's identity and for the kill that destroys
// it.) A read that failed (EMFILE under load, no /proc yet) is not kept:
// an empty id kept for a long-lived seedd's life would match no identity
// recorded with the real one, and its sandboxes would never be ended.
std::string BootId() {
  static std::mutex mu;
  static std::string id;
  std::lock_guard<std::mutex> l(mu);
  if (id.empty()) {
    id = ReadFileOrEmpty("/proc/sys/kernel/random/boot_id");
    while (!id.empty() && id.back() == '\n') id.pop_back();
  }
  return id;
}

// Whether `s`, read from /proc/<id.pid>/stat, is the process `id` names.
bool Matches(const ProcessIdentity& id, const Stat& s) {
  if (id.start_time == 0) return false;  // unknown: nothing can be told to be it
  return s.start_time == id.start_time && (id.boot_id.empty() || id.boot_id == BootId());
}

// pidfd_send_signal(2); 0 or -1 with errno.
int PidfdSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// The pid a pidfd names in this pid namespace (fdinfo's "Pid:"), or 0.
pid_t PidOfPidfd(int pidfd) {
  std::ifstream in(absl::StrCat("/proc/self/fdinfo/", pidfd));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    pid_t pid = 0;
    if (absl::ConsumePrefix(&v, "Pid:") && absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &pid)) {
      return pid > 0 ? pid : 0;
    }
  }
  return 0;
}

// SO_PEERPIDFD (Linux 6.5, include/uapi/asm-generic/socket.h); older
// kernels answer ENOPROTOOPT.
#ifdef SO_PEERPIDFD
constexpr int kSoPeerPidfd = SO_PEERPIDFD;
#else
constexpr int kSoPeerPidfd = 77;
#endif

}  // namespace

bool IsSeedscSandbox(pid_t pid) {
  const std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
  const std::vector<absl::string_view> argv = absl::StrSplit(cmdline, '\0');
  if (argv.empty() || argv[0] != "seedsc") return false;
  return std::find(argv.begin(), argv.end(), "boot") != argv.end();
}

absl::Time StartedAt(const ProcessIdentity& id) {
  // /proc/PID/stat's start time counts from boot on CLOCK_BOOTTIME.
  timespec real{}, boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  const absl::Time booted = absl::TimeFromTimespec(real) - absl::DurationFromTimespec(boot);
  const int64_t hz = sysconf(_SC_CLK_TCK);
  return booted + absl::Seconds(static_cast<double>(id.start_time) / static_cast<double>(hz));
}

absl::StatusOr<ProcessIdentity> ListenerOf(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  auto none = [&] { return absl::NotFoundError(absl::StrCat("nobody listens on ", path)); };
  if (path.size() >= sizeof(a.sun_path)) return none();
  memcpy(a.sun_path, path.c_str(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return none();
  }
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  const bool have_pidfd = getsockopt(fd, SOL_SOCKET, kSoPeerPidfd, &pidfd, &len) == 0;
  ucred cred{};
  len = sizeof(cred);
  const bool have_cred = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
  close(fd);
  if (!have_pidfd) {
    if (!have_cred || cred.pid <= 0) return none();
    return IdentityOf(cred.pid);
  }
  // The pidfd pins the listener: if it still runs after /proc was read,
  // what /proc said was its.
  absl::StatusOr<ProcessIdentity> id = IdentityOf(PidOfPidfd(pidfd));
  const bool alive = PidfdSignal(pidfd, 0) == 0;
  close(pidfd);
  if (!alive || !id.ok()) return absl::NotFoundError(absl::StrCat("the listener on ", path,
                                                                  " has exited"));
  return id;
}

absl::StatusOr<ProcessIdentity> IdentityOf(pid_t pid) {
  Stat s;
  if (pid <= 0 || !ReadStat(absl::StrCat("/proc/", pid, "/stat"), &s)) {
    return absl::NotFoundError(absl::StrCat("host process ", pid, " does not exist"));
  }
  return ProcessIdentity{.pid = pid, .start_time = s.start_time, .boot_id = BootId()};
}

bool ProcessAlive(const ProcessIdentity& id) {
  Stat s;
  if (id.pid <= 0 || !ReadStat(absl::StrCat("/proc/", id.pid, "/stat"), &s)) return false;
  return s.state != 'Z' && s.state != 'X' && Matches(id, s);
}

absl::StatusOr<int> OpenProcess(const ProcessIdentity& id) {
  auto gone = [&] {
    return absl::NotFoundError(absl::StrCat("host process ", id.pid, " (started at tick ",
                                            id.start_time, ") is gone"));
  };
  if (id.pid <= 0) return gone();
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0));
  if (pidfd < 0) {
    if (errno == ESRCH) return gone();
    return absl::InternalError(absl::StrCat("pidfd_open(", id.pid, "): ", std::strerror(errno)));
  }
  // The pidfd pins the pid until the process is reaped; if it has not
  // been reaped after /proc was read, what /proc said was its.
  Stat s;
  const bool read = ReadStat(absl::StrCat("/proc/", id.pid, "/stat"), &s);
  const bool matches = read && Matches(id, s);
  if (!matches || (PidfdSignal(pidfd, 0) != 0 && errno == ESRCH)) {
    close(pidfd);
    return gone();
  }
  return pidfd;
}

absl::Status SignalProcess(const ProcessIdentity& id, int sig) {
  absl::StatusOr<int> pidfd = OpenProcess(id);
  if (!pidfd.ok()) return pidfd.status();
  const int r = PidfdSignal(*pidfd, sig);
  const int err = errno;
  close(*pidfd);
  if (r == 0) return absl::OkStatus();
  if (err == ESRCH) return absl::NotFoundError(absl::StrCat("host process ", id.pid, " is gone"));
  return absl::InternalError(absl::StrCat("signal ", sig, " to host process ", id.pid, ": ",
                                          std::strerror(err)));
}

std::vector<pid_t> OrphanedStubs(const std::vector<pid_t>& pids) {
  std::vector<pid_t> out;
  for (pid_t pid : pids) {
    const std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    const std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
    pid_t pgid = 0;
    if (f.size() < 3 || f[0] == "Z" || !absl::SimpleAtoi(f[2], &pgid) || pgid <= 0) continue;
    const std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
    if (cmdline.rfind(std::string("seedsc-stub\0"), 0) != 0) continue;
    // A pid stays taken while a group bears its number: /proc/PGID is the
    // leader itself (alive, or a zombie whose group is being killed).
    Stat leader;
    if (ReadStat(absl::StrCat("/proc/", pgid, "/stat"), &leader) && leader.state != 'Z') continue;
    out.push_back(pid);
  }
  return out;
}

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

absl::Status EndProcess(const ProcessIdentity& id, absl::Duration timeout) {
  const sentry::Deadline deadline = sentry::Deadline::In(timeout);
  absl::StatusOr<int> opened = OpenProcess(id);
  if (absl::IsNotFound(opened.status())) return absl::OkStatus();  // reaped, or not ours
  if (!opened.ok()) return opened.status();
  const int pidfd = *opened;
  PidfdSignal(pidfd, SIGKILL);
  // Readable once every thread has exited (pidfd_open(2)): a zombie, or
  // reaped. The pid names our process for as long as the pidfd says it is
  // not reaped, so /proc is read between two such checks.
  pollfd p{pidfd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, deadline.PollMs())) < 0 && errno == EINTR) {
  }
  std::string what = r > 0 ? "" : DescribeProcess(id.pid);
  const bool left = r <= 0 && PidfdSignal(pidfd, 0) == 0;
  close(pidfd);
  if (!left) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat("host process ", id.pid, " has not exited ",
                                                  absl::FormatDuration(timeout), " after SIGKILL",
                                                  what.empty() ? "" : " (" + what + ")"));
}

namespace {

// Whether process `pid` has a child that has not exited: /proc's children
// list (CONFIG_PROC_CHILDREN) holds zombies too, until they are reaped.
// True when the list cannot be read, as nothing can be told then.
bool HasLiveChild(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  if (!in) return true;
  for (pid_t child; in >> child;) {
    const char st = StateOf(absl::StrCat("/proc/", child, "/stat"));
    if (st != 0 && st != 'Z' && st != 'X') return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ProcessIdentity> NamespaceInitOf(const ProcessIdentity& sentry) {
  const std::string stat = absl::StrCat("/proc/", sentry.pid, "/stat");
  Stat s;
  auto none = [&] {
    return absl::NotFoundError(
        absl::StrCat("host process ", sentry.pid, "'s parent is no pid namespace's pid 1"));
  };
  if (sentry.pid <= 0 || !ReadStat(stat, &s) || !Matches(sentry, s) || s.ppid <= 1) return none();
  // NSpid: its id here first, its own namespace's last.
  std::ifstream in(absl::StrCat("/proc/", s.ppid, "/status"));
  std::vector<std::string> nspid;
  for (std::string line; std::getline(in, line);) {
    absl::string_view v = line;
    if (!absl::ConsumePrefix(&v, "NSpid:")) continue;
    nspid = absl::StrSplit(v, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    break;
  }
  if (nspid.size() < 2 || nspid.back() != "1") return none();
  absl::StatusOr<ProcessIdentity> init = IdentityOf(s.ppid);
  // Still its parent after that read: the identity read was the parent's
  // (a parent that died in between would have handed its child on).
  Stat again;
  if (!init.ok() || !ReadStat(stat, &again) || again.ppid != s.ppid) return none();
  return init;
}

absl::Status AwaitNamespaceEnd(const ProcessIdentity& init, absl::Duration timeout) {
  const sentry::Deadline deadline = sentry::Deadline::In(timeout);
  absl::StatusOr<int> opened = OpenProcess(init);
  if (absl::IsNotFound(opened.status())) return absl::OkStatus();
  if (!opened.ok()) return opened.status();
  const int pidfd = *opened;
  bool exited = false;
  for (;;) {
    // Readable once it has exited. Between short waits: a live child (a
    // sandbox forked from this one) keeps it, and rightly so.
    pollfd p{pidfd, POLLIN, 0};
    const int r = poll(&p, 1, std::min(deadline.PollMs(), 20));
    if (r > 0) exited = true;
    if (exited || (r < 0 && errno != EINTR) || HasLiveChild(init.pid)) break;
    if (deadline.Passed()) break;
  }
  const bool left = !exited && !HasLiveChild(init.pid) && PidfdSignal(pidfd, 0) == 0;
  close(pidfd);
  if (!left) return absl::OkStatus();
  const std::string what = DescribeProcess(init.pid);
  return absl::DeadlineExceededError(absl::StrCat(
      "pid 1 (host process ", init.pid, ") has not exited ", absl::FormatDuration(timeout),
      " after the last other process of its pid namespace", what.empty() ? "" : " (" + what + ")"));
}

}  // namespace seedvisor::container
