#include "sentry/control/fork_cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"

namespace seedvisor::control {
namespace {

// The first line of a small cgroup file; NotFound if it does not exist.
absl::StatusOr<std::string> ReadCgroupFile(const std::string& file) {
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(file);
    return absl::InternalError(absl::StrCat(file, ": ", strerror(err)));
  }
  char buf[64];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  const int err = errno;
  close(fd);
  if (n < 0) return absl::InternalError(absl::StrCat(file, ": ", strerror(err)));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))));
}

}  // namespace

absl::Status JoinCgroup(const std::string& path, const std::vector<pid_t>& pids) {
  if (path.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup \"", path, "\": not a cgroup path"));
  }
  int joined = 0;
  for (const char* c : {"memory", "cpu", "cpuacct", "pids", "cpuset"}) {
    std::string procs = absl::StrCat("/sys/fs/cgroup/", c, "/", path, "/cgroup.procs");
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    for (pid_t p : pids) {
      std::string v = absl::StrCat(p);
      if (write(fd, v.data(), v.size()) != static_cast<ssize_t>(v.size())) {
        int err = errno;
        close(fd);
        return absl::InternalError(absl::StrCat("cgroup \"", path, "\": moving process ", p,
                                                " into ", procs, ": ", strerror(err)));
      }
    }
    close(fd);
    ++joined;
  }
  if (joined == 0) {
    return absl::NotFoundError(absl::StrCat("cgroup \"", path,
                                            "\": no such cgroup under /sys/fs/cgroup/<controller>"));
  }
  return absl::OkStatus();
}

int64_t GuestPidsLimit(int64_t host_max, int64_t host_current, int64_t guest_tasks) {
  const int64_t room = host_max - host_current - kHostTasksReserved;
  return guest_tasks + std::max<int64_t>(room, 0) / kHostTasksPerGuestTask;
}

absl::StatusOr<int64_t> GuestPidsLimitFromCgroup(const std::string& path, int64_t guest_tasks) {
  const std::string dir = absl::StrCat("/sys/fs/cgroup/pids/", path);
  absl::StatusOr<std::string> max = ReadCgroupFile(dir + "/pids.max");
  if (absl::IsNotFound(max.status())) return 0;  // no pids controller there
  if (!max.ok()) return max.status();
  if (*max == "max") return 0;
  absl::StatusOr<std::string> current = ReadCgroupFile(dir + "/pids.current");
  if (!current.ok()) return current.status();
  int64_t host_max = 0, host_current = 0;
  if (!absl::SimpleAtoi(*max, &host_max) || !absl::SimpleAtoi(*current, &host_current)) {
    return absl::InternalError(absl::StrCat("cgroup \"", path, "\": pids.max \"", *max,
                                            "\", pids.current \"", *current, "\": not numbers"));
  }
  return GuestPidsLimit(host_max, host_current, guest_tasks);
}

}  // namespace seedvisor::control
