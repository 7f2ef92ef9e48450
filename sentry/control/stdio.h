// Host-side stdio for processes the control server starts: the paths of
// control.proto's Stdio opened in the sandbox process, or a pty whose master
// is handed to a console socket (the runc --console-socket convention).
//
//   absl::StatusOr<HostStdio> io = OpenStdio(req.stdio(), defaults);
//   spec.stdio = io->fds;   // dup'ed by the kernel; io closes its own
#ifndef SEEDVISOR_SENTRY_CONTROL_STDIO_H_
#define SEEDVISOR_SENTRY_CONTROL_STDIO_H_

#include <string>

#include "absl/status/statusor.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::control {

class HostStdio {
 public:
  HostStdio() = default;
  HostStdio(HostStdio&& o) noexcept;
  HostStdio& operator=(HostStdio&&) = delete;
  ~HostStdio();  // closes the fds it opened
  int fds[3] = {-1, -1, -1};

 private:
  friend absl::StatusOr<HostStdio> OpenStdio(const v1::Stdio&, const int*);
  bool owned_[3] = {false, false, false};
};

// Opens `io`. An empty path takes defaults[i] (not owned) or, when
// defaults[i] < 0, /dev/null. With io.terminal(), allocates a pty: the slave
// becomes 0, 1 and 2 and the master is sent to io.console_socket().
absl::StatusOr<HostStdio> OpenStdio(const v1::Stdio& io, const int* defaults);

// A dir fd of the host's /proc, for stdio paths under /proc/ (the sandbox
// process has its own pid namespace's /proc mounted there).
void SetHostProcFd(int fd);
// The host path `path` as the host process `pid` sees it (in its mount
// namespace, which may hold mounts made after this sandbox's was copied: a
// pod's next container's rootfs): a path through that /proc's
// <pid>/root. `path` itself without a host /proc or with pid 0. Opened
// while `pid` lives, such a path's fd stays valid after.
std::string HostPathOf(pid_t pid, const std::string& path);
// This process's pid in the host's pid namespace (through that /proc), or
// getpid() without one.
pid_t HostPid();

// Sends `fd` over the unix socket at `path` with SCM_RIGHTS.
absl::Status SendFdToSocket(const std::string& path, int fd);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_STDIO_H_
