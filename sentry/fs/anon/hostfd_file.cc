#include "sentry/fs/anon/hostfd_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)  // <linux/timerfd.h>
#endif

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

HostFdFile::HostFdFile(int flags, int host_fd, std::string display)
    : FileDescription(flags), fd_(host_fd), display_(std::move(display)) {
  int fl = fcntl(fd_, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd_, F_SETFL, fl | O_NONBLOCK);
}

HostFdFile::~HostFdFile() { close(fd_); }

Status HostFdFile::WaitFor(Task& t, short events, const timespec* deadline) {
  return TaskBlockOnFd(t, fd_, events, deadline);
}

Result<size_t> HostFdFile::Read(Task& t, char* buf, size_t len) {
  SV_ASSIGN_OR_RETURN(ssize_t n, Retry(t, POLLIN, [&] { return read(fd_, buf, len); }));
  return static_cast<size_t>(n);
}

Result<size_t> HostFdFile::Write(Task& t, const char* buf, size_t len) {
  SV_ASSIGN_OR_RETURN(ssize_t n, Retry(t, POLLOUT, [&] { return write(fd_, buf, len); }));
  return static_cast<size_t>(n);
}

Result<struct stat> HostFdFile::Stat() {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return Errno(errno);
  return st;
}

Result<long> HostFdFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    int n = 0;
    if (ioctl(fd_, FIONREAD, &n) != 0) return Errno(errno);
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

absl::StatusOr<std::string> HostFdInfo(int fd, std::string_view key) {
  std::string path = absl::StrCat("/proc/self/fdinfo/", fd);
  int f = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0) return absl::InternalError(absl::StrCat(path, ": ", strerror(errno)));
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(f, buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(f);
  std::string want = absl::StrCat(std::string(key), ":");
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.substr(0, want.size()) == want) {
      line.remove_prefix(want.size());
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      return std::string(line);
    }
    pos = end + 1;
  }
  return absl::InternalError(absl::StrCat(path, " has no ", std::string(key)));
}

absl::StatusOr<int> CopyEventFd(int fd) {
  absl::StatusOr<std::string> count = HostFdInfo(fd, "eventfd-count");
  if (!count.ok()) return count.status();
  unsigned long long v = strtoull(count->c_str(), nullptr, 16);  // "%16llx"
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  uint64_t add = v;
  if (add != 0 && write(efd, &add, sizeof(add)) != sizeof(add)) {
    int e = errno;
    close(efd);
    return absl::InternalError(absl::StrCat("eventfd count ", v, ": ", strerror(e)));
  }
  return efd;
}

absl::Status HostFdFile::ReplaceHostFdInForkChild(int fresh) {
  int r = dup3(fresh, fd_, O_CLOEXEC);
  int e = errno;
  close(fresh);
  if (r < 0) return absl::InternalError(absl::StrCat(display_, ": dup3: ", strerror(e)));
  int fl = fcntl(fd_, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd_, F_SETFL, fl | O_NONBLOCK);
  return absl::OkStatus();
}

void HostFdFile::SetReadinessEventFd(bool& ready, bool readable, bool edge) {
  uint64_t v = 1;
  if (readable && (!ready || edge)) {
    (void)!write(fd_, &v, sizeof(v));
  } else if (!readable && ready) {
    (void)!read(fd_, &v, sizeof(v));
  }
  ready = readable;
}

absl::Status HostFdFile::RecreateReadinessEventFdInForkChild() {
  absl::StatusOr<int> efd = CopyEventFd(fd_);
  if (!efd.ok()) return absl::Status(efd.status().code(), absl::StrCat(display_, ": ", efd.status().message()));
  return ReplaceHostFdInForkChild(*efd);
}

absl::Status TimerFdFile::AdoptInForkChild(ForkFileContext&) {
  auto fail = [&](std::string_view what, int err) {
    return absl::InternalError(absl::StrCat("timerfd: ", std::string(what), ": ", strerror(err)));
  };
  absl::StatusOr<std::string> clock = HostFdInfo(host_fd(), "clockid");
  if (!clock.ok()) return clock.status();
  absl::StatusOr<std::string> ticks_s = HostFdInfo(host_fd(), "ticks");
  if (!ticks_s.ok()) return ticks_s.status();
  uint64_t ticks = strtoull(ticks_s->c_str(), nullptr, 10);
  itimerspec cur {};
  if (timerfd_gettime(host_fd(), &cur) != 0) return fail("timerfd_gettime", errno);
  int fresh = timerfd_create(atoi(clock->c_str()), TFD_NONBLOCK | TFD_CLOEXEC);
  if (fresh < 0) return fail("timerfd_create", errno);
  // The remaining time, relative: the same deadline on the host's clock.
  // (TFD_TIMER_CANCEL_ON_SET is not carried: the fork's timer is relative.)
  if (timerfd_settime(fresh, 0, &cur, nullptr) != 0 ||
      (ticks != 0 && ioctl(fresh, TFD_IOC_SET_TICKS, &ticks) != 0)) {
    int e = errno;
    close(fresh);
    return fail(ticks != 0 ? "carrying unread expirations (TFD_IOC_SET_TICKS)" : "timerfd_settime", e);
  }
  return ReplaceHostFdInForkChild(fresh);
}

}  // namespace seedvisor::sentry
