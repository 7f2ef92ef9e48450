#include "sentry/sfork/fork_diagnosis.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace seedvisor::sentry {
namespace {

ForkTrace* g_child_trace = nullptr;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// A small /proc file, whole; "" if unreadable.
std::string ReadProcFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 64 * 1024) break;
  }
  close(fd);
  return out;
}

// /proc/PID/stat's fields after the command name: [0] state, [1] ppid,
// [2] pgrp, ... (proc(5) numbers them from 3). The name may hold spaces and
// parentheses: it ends at the last ')'.
std::vector<std::string> StatFields(const std::string& stat, std::string* comm) {
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  if (comm != nullptr) *comm = stat.substr(open + 1, close - open - 1);
  return absl::StrSplit(absl::StripAsciiWhitespace(stat.substr(close + 1)), ' ',
                        absl::SkipEmpty());
}

// The value of `key:` in a /proc status file, or "?".
std::string StatusField(const std::string& status, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, key) && absl::ConsumePrefix(&line, ":")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "?";
}

// Where a /proc fd link points ("pipe:[123]", a path); "" if unreadable.
std::string FdTarget(const std::string& link) {
  char buf[512];
  // readlinkat: the sentry's seccomp policy allows it, not readlink.
  const ssize_t n = readlinkat(AT_FDCWD, link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// "read", "write" or "read-write": the access mode in a /proc fdinfo file.
std::string FdMode(const std::string& fdinfo) {
  const std::string flags = StatusField(ReadProcFile(fdinfo), "flags");
  const long v = std::strtol(flags.c_str(), nullptr, 8);  // octal (proc(5))
  switch (v & O_ACCMODE) {
    case O_RDONLY: return "read";
    case O_WRONLY: return "write";
    default: return "read-write";
  }
}

std::vector<int> NumericEntries(const std::string& dir) {
  std::vector<int> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long v = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && v > 0) out.push_back(static_cast<int>(v));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string DescribeThread(pid_t pid, int tid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task/", tid, "/");
  std::vector<std::string> stat = StatFields(ReadProcFile(dir + "stat"), nullptr);
  const std::string status = ReadProcFile(dir + "status");
  std::string out = absl::StrCat(
      "  thread ", tid, ": state ", stat.empty() ? "?" : stat[0], ", wchan ",
      ReadProcFile(dir + "wchan"), ", syscall ",
      absl::StripAsciiWhitespace(ReadProcFile(dir + "syscall")), ", tracer ",
      StatusField(status, "TracerPid"), ", pending ", StatusField(status, "SigPnd"), "/",
      StatusField(status, "ShdPnd"), ", blocked ", StatusField(status, "SigBlk"), "\n");
  const std::string stack = ReadProcFile(dir + "stack");
  for (absl::string_view line : absl::StrSplit(stack, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "    ", line, "\n");
  }
  return out;
}

}  // namespace

ForkTrace* ForkTrace::Map() {
  void* p = mmap(nullptr, sizeof(ForkTrace), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // SAFETY: a fresh zeroed page of ForkTrace's size; ForkTrace is plain
  // data (an atomic counter and byte arrays), for which zero is its start.
  return new (p) ForkTrace();
}

void ForkTrace::Unmap(ForkTrace* t) {
  if (t != nullptr) munmap(t, sizeof(ForkTrace));
}

void ForkTrace::Step(const char* step) {
  const uint32_t n = count_.load(std::memory_order_relaxed);
  Entry& e = steps_[n % kHistory];
  e.since_ns = MonotonicNs();
  size_t i = 0;
  for (; i + 1 < sizeof(e.name) && step[i] != '\0'; ++i) e.name[i] = step[i];
  e.name[i] = '\0';
  count_.store(n + 1, std::memory_order_release);
}

std::string ForkTrace::Describe(int64_t now_ns) const {
  const uint32_t n = count_.load(std::memory_order_acquire);
  if (n == 0) return "the forked sentry named no step (it did not reach its first one)\n";
  const uint32_t first = n > kHistory ? n - kHistory : 0;
  const int64_t t0 = steps_[first % kHistory].since_ns;
  std::string out = absl::StrCat("the forked sentry's steps (", n, " in all",
                                 first > 0 ? ", the latest shown" : "", "):\n");
  for (uint32_t i = first; i < n; ++i) {
    const Entry& e = steps_[i % kHistory];
    absl::StrAppendFormat(&out, "  +%.3f ms %.*s%s\n", (e.since_ns - t0) / 1e6,
                          static_cast<int>(sizeof(e.name)),
                          e.name, i + 1 == n ? "  <- current" : "");
  }
  const Entry& last = steps_[(n - 1) % kHistory];
  absl::StrAppendFormat(&out, "  in its current step for %.3f ms\n", (now_ns - last.since_ns) / 1e6);
  return out;
}

void SetForkChildTrace(ForkTrace* trace) { g_child_trace = trace; }

void ForkChildStep(const char* step) {
  if (g_child_trace != nullptr) g_child_trace->Step(step);
}

std::string DescribeHostProcess(pid_t pid, const std::string& what) {
  std::string comm;
  std::vector<std::string> stat =
      StatFields(ReadProcFile(absl::StrCat("/proc/", pid, "/stat")), &comm);
  if (stat.size() < 3) return absl::StrCat(what, " ", pid, ": gone (no /proc entry)\n");
  std::string out = absl::StrCat(what, " ", pid, " (", comm, "): state ", stat[0], ", parent ",
                                 stat[1], ", group ", stat[2], "\n");
  for (int tid : NumericEntries(absl::StrCat("/proc/", pid, "/task"))) {
    absl::StrAppend(&out, DescribeThread(pid, tid));
  }
  return out;
}

std::string DescribeUnreportedFork(pid_t sentry, pid_t pgid, const ForkTrace* trace,
                                   int report_fd) {
  std::string out;
  if (trace != nullptr) out = trace->Describe(MonotonicNs());
  if (report_fd >= 0) {
    const std::string seen = FdTarget(absl::StrCat("/proc/self/fd/", report_fd));
    std::string held;
    for (int fd : NumericEntries(absl::StrCat("/proc/", sentry, "/fd"))) {
      if (!seen.empty() && FdTarget(absl::StrCat("/proc/", sentry, "/fd/", fd)) == seen) {
        absl::StrAppend(&held, held.empty() ? "" : ", ", fd, " (",
                        FdMode(absl::StrCat("/proc/", sentry, "/fdinfo/", fd)), ")");
      }
    }
    absl::StrAppend(&out, "the report is awaited on fd ", report_fd, " (",
                    seen.empty() ? "unreadable" : seen, "); the forked sentry holds it as ",
                    held.empty() ? "no fd" : absl::StrCat("fd ", held), "\n");
  }
  absl::StrAppend(&out, DescribeHostProcess(sentry, "the forked sentry"));
  if (pgid <= 0) return out;
  for (int pid : NumericEntries("/proc")) {
    if (pid == sentry) continue;
    std::vector<std::string> stat = StatFields(ReadProcFile(absl::StrCat("/proc/", pid, "/stat")),
                                               nullptr);
    if (stat.size() < 3 || stat[2] != absl::StrCat(pgid)) continue;
    absl::StrAppend(&out, DescribeHostProcess(pid, pid == pgid ? "its anchor" : "in its group"));
  }
  return out;
}

}  // namespace seedvisor::sentry
