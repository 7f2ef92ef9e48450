// HostFdFile: a file whose state and readiness live in one host fd the
// sentry owns (timerfd, epoll instances, sockets). After a sandbox fork the
// child shares that host object with its parent: each user is a candidate
// to move into sentry memory (as pipes and eventfds did).
//
// The host fd is O_NONBLOCK; a blocking guest read or write waits in
// TaskBlockOnFd so a signal interrupts it, and PollFd() hands the fd to
// poll/select/epoll, so readiness is exactly the host kernel's.
//
//   int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
//   FileRef f = std::make_shared<HostFdFile>(O_RDWR, tfd, "anon_inode:[timerfd]");
#ifndef SEEDVISOR_SENTRY_FS_ANON_HOSTFD_FILE_H_
#define SEEDVISOR_SENTRY_FS_ANON_HOSTFD_FILE_H_

#include <time.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

// Sandbox fork: a HostFdFile keeps FileDescription's AdoptInForkChild
// (refused: the host object would be shared with the seed) unless the
// derived file copies its host state (timerfd, signalfd, inotify, epoll).
class HostFdFile : public FileDescription {
 public:
  // Owns `host_fd` (made O_NONBLOCK here). `display` is what /proc/PID/fd
  // shows, e.g. "anon_inode:[eventfd]".
  HostFdFile(int flags, int host_fd, std::string display);
  ~HostFdFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override { return fd_; }
  std::string DisplayPath() const override { return display_; }
  int host_fd() const { return fd_; }

 protected:
  // Sandbox fork: `fresh`, the child's own host object made like ours, takes
  // our fd number (dup3), which dropped the seed's; `fresh` is closed. The
  // number never changes, so whoever holds it (a task's exit path, an
  // epoll registration) now reaches the child's object.
  absl::Status ReplaceHostFdInForkChild(int fresh);
  // For files whose host fd is only a readiness eventfd while their state
  // lives in sentry memory (signalfd, inotify): a new eventfd with the same
  // count, so the file stays exactly as readable as it was.
  absl::Status RecreateReadinessEventFdInForkChild();
  // For those files: makes the readiness eventfd say `readable` (a count of
  // 1, or 0) when that changes; `ready` is the caller's record of what it
  // says, kept under the caller's lock. `edge`: one more count when it is
  // readable already, a new edge for edge-triggered pollers and O_ASYNC (on
  // Linux each added event wakes them).
  void SetReadinessEventFd(bool& ready, bool readable, bool edge = false);

  // Runs `op` (a non-blocking host call returning -1/errno on failure) until
  // it does not fail with EAGAIN, waiting for `events` in between unless the
  // file is non-blocking. `deadline` as TaskBlockOnFd's.
  template <typename Op>
  Result<ssize_t> Retry(Task& t, short events, Op op, const timespec* deadline = nullptr) {
    for (;;) {
      ssize_t n = op();
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return Errno(errno);
      if (nonblocking()) return Errno(EAGAIN);
      SV_TRY(WaitFor(t, events, deadline));
    }
  }
  Status WaitFor(Task& t, short events, const timespec* deadline);

 private:
  const int fd_;
  const std::string display_;
};

// The typed flavour, so that timerfd_settime(2) on another file fails with
// EINVAL.
class TimerFdFile : public HostFdFile {
 public:
  TimerFdFile(int flags, int host_fd, clockid_t clock)
      : HostFdFile(flags, host_fd, "anon_inode:[timerfd]"), clock_(clock) {}
  // The clock it was made on (absolute times are on it).
  clockid_t clock() const { return clock_; }
  // A new host timerfd on the same clock, armed for the same remaining time
  // and interval, with the same unread expirations (TFD_IOC_SET_TICKS).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  const clockid_t clock_;
};

// The value of `key` ("eventfd-count", "ticks", "clockid") in the host's
// /proc/self/fdinfo/FD, or an error naming what is missing. Reading it does
// not consume anything, unlike read(2) on the fd.
absl::StatusOr<std::string> HostFdInfo(int fd, std::string_view key);
// A new non-blocking, close-on-exec eventfd with the count of `fd`'s.
absl::StatusOr<int> CopyEventFd(int fd);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_ANON_HOSTFD_FILE_H_
