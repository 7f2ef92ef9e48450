#include "sentry/fs/anon/hostfd_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

}  // namespace seedvisor::sentry
