#include "sentry/control/stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "shim/ttrpc/socket.h"

namespace seedvisor::control {

namespace {
int g_host_proc_fd = -1;

int OpenPath(const std::string& path, int flags) {
  if (g_host_proc_fd >= 0 && path.rfind("/proc/", 0) == 0) {
    return openat(g_host_proc_fd, path.c_str() + 6, flags);
  }
  return open(path.c_str(), flags);
}
}  // namespace

void SetHostProcFd(int fd) { g_host_proc_fd = fd; }

std::string HostPathOf(pid_t pid, const std::string& path) {
  if (pid <= 0 || g_host_proc_fd < 0) return path;
  return absl::StrCat("/proc/self/fd/", g_host_proc_fd, "/", pid, "/root", path);
}

pid_t HostPid() {
  char buf[32] = {};
  if (g_host_proc_fd >= 0 && readlinkat(g_host_proc_fd, "self", buf, sizeof(buf) - 1) > 0) {
    return static_cast<pid_t>(atoi(buf));
  }
  return getpid();
}

HostStdio::HostStdio(HostStdio&& o) noexcept {
  for (int i = 0; i < 3; ++i) {
    fds[i] = o.fds[i];
    owned_[i] = o.owned_[i];
    o.owned_[i] = false;
  }
}

HostStdio::~HostStdio() {
  for (int i = 0; i < 3; ++i) {
    if (!owned_[i]) continue;
    // The pty slave may sit in all three slots: close it once.
    bool dup_earlier = false;
    for (int j = 0; j < i; ++j) dup_earlier |= owned_[j] && fds[j] == fds[i];
    if (!dup_earlier) close(fds[i]);
  }
}

absl::Status SendFdToSocket(const std::string& path, int fd) {
  absl::StatusOr<int> sock = ttrpc::DialUnix(path);
  if (!sock.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("console socket: ", sock.status().message()));
  }
  absl::Status sent = ttrpc::SendFd(*sock, fd);
  close(*sock);
  if (!sent.ok()) {
    return absl::InternalError(absl::StrCat("sending the pty to ", path, ": ", sent.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<HostStdio> OpenStdio(const v1::Stdio& io, const int* defaults) {
  HostStdio out;
  if (io.terminal()) {
    if (io.console_socket().empty()) {
      return absl::InvalidArgumentError("a terminal needs a console socket");
    }
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
      if (master >= 0) close(master);
      return absl::InternalError(absl::StrCat("allocating a pty: ", std::strerror(errno)));
    }
    char name[128];
    if (ptsname_r(master, name, sizeof(name)) != 0) {
      close(master);
      return absl::InternalError("ptsname failed");
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
      int e = errno;
      close(master);
      return absl::InternalError(absl::StrCat("opening ", name, ": ", std::strerror(e)));
    }
    absl::Status s = SendFdToSocket(io.console_socket(), master);
    close(master);
    if (!s.ok()) {
      close(slave);
      return s;
    }
    for (int i = 0; i < 3; ++i) {
      out.fds[i] = slave;
      out.owned_[i] = true;
    }
    return out;
  }
  const std::string* paths[3] = {&io.stdin(), &io.stdout(), &io.stderr()};
  for (int i = 0; i < 3; ++i) {
    if (paths[i]->empty()) {
      if (defaults != nullptr && defaults[i] >= 0) {
        out.fds[i] = defaults[i];
        continue;
      }
      out.fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
    } else {
      // A fifo opened for writing blocks until its reader is there, as in
      // runc (containerd opens its end first).
      // A path reopens the caller's file with an offset of its own: append,
      // or a regular file (`> out`) would be overwritten from its start.
      out.fds[i] = OpenPath(*paths[i], (i == 0 ? O_RDONLY : O_WRONLY | O_APPEND) | O_CLOEXEC);
      // Reopening a regular file (a caller's `> file` via /proc/PID/fd/N)
      // starts a new offset at 0: append instead of overwriting its start.
      struct stat st;
      if (i > 0 && out.fds[i] >= 0 && fstat(out.fds[i], &st) == 0 && S_ISREG(st.st_mode)) {
        fcntl(out.fds[i], F_SETFL, fcntl(out.fds[i], F_GETFL) | O_APPEND);
      }
    }
    if (out.fds[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("opening stdio ", i, " \"", *paths[i],
                                                     "\": ", std::strerror(errno)));
    }
    out.owned_[i] = true;
  }
  return out;
}

}  // namespace seedvisor::control
