#include "sentry/kernel/host_cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {

absl::StatusOr<std::shared_ptr<const HostCgroups>> HostCgroups::Open(const std::string& path,
                                                                    const std::string& mount_root) {
  if (path.empty() || path.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup \"", path, "\": not a cgroup path"));
  }
  std::shared_ptr<HostCgroups> cg(new HostCgroups(path, getpid()));
  for (const char* c : kControllers) {
    const std::string dir = absl::StrCat(mount_root, "/", c, "/", path);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::string file = dir + "/cgroup.procs";
    const int fd = open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("cgroup \"", path, "\": ", file, ": ",
                                              std::strerror(errno)));
    }
    cg->procs_.push_back({std::move(file), fd});
  }
  if (cg->procs_.empty()) {
    return absl::NotFoundError(absl::StrCat("cgroup \"", path, "\": no such cgroup under ",
                                            mount_root, "/{memory,cpu,cpuacct,cpuset}"));
  }
  return std::shared_ptr<const HostCgroups>(std::move(cg));
}

HostCgroups::~HostCgroups() {
  for (const Procs& p : procs_) close(p.fd);
}

bool HostCgroups::OpenedHere() const {
  // A sandbox fork is a host fork of the sentry: same object, new pid
  // (glibc's getpid asks the kernel; it caches nothing across a fork).
  return getpid() == opener_;
}

absl::Status HostCgroups::Join(pid_t pid) const {
  if (!OpenedHere()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cgroup \"", path_, "\": opened by the sentry of host process ", opener_,
                     ", not this one (a sandbox fork of it): host process ", pid,
                     " stays in this sandbox's own cgroups"));
  }
  const std::string v = absl::StrCat(pid);
  for (const Procs& p : procs_) {
    if (write(p.fd, v.data(), v.size()) != static_cast<ssize_t>(v.size())) {
      return absl::InternalError(absl::StrCat("moving host process ", pid, " into ", p.file, ": ",
                                              std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::sentry
