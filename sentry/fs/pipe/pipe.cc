#include "sentry/fs/pipe/pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {
std::atomic<uint64_t> g_next_pipe_ino{0x10000};
}  // namespace

Result<std::pair<FileRef, FileRef>> NewPipe(int flags) {
  if (flags & ~(O_NONBLOCK | O_DIRECT | O_CLOEXEC)) return Errno(EINVAL);
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC | (flags & O_DIRECT)) != 0) return Errno(errno);
  uint64_t ino = g_next_pipe_ino.fetch_add(1);
  int f = flags & (O_NONBLOCK | O_DIRECT);
  FileRef r = std::make_shared<PipeFile>(O_RDONLY | f, fds[0], ino);
  FileRef w = std::make_shared<PipeFile>(O_WRONLY | f, fds[1], ino);
  return std::make_pair(std::move(r), std::move(w));
}

PipeFile::PipeFile(int flags, int host_fd, uint64_t ino, std::shared_ptr<Dentry> d)
    : FileDescription(flags, std::move(d)), fd_(host_fd), ino_(ino) {}

PipeFile::~PipeFile() { close(fd_); }

Result<size_t> PipeFile::Read(Task& t, char* buf, size_t len) {
  for (;;) {
    ssize_t n = read(fd_, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Errno(errno);
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(TaskBlockOnFd(t, fd_, POLLIN));
  }
}

Result<size_t> PipeFile::Write(Task& t, const char* buf, size_t len) {
  // pipe_write(): a blocking write returns only when everything is written,
  // or early (with the count so far) when a signal arrives.
  size_t done = 0;
  while (done < len || len == 0) {
    ssize_t n = write(fd_, buf + done, len - done);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      if (len == 0) break;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      if (done > 0) return done;
      return Errno(errno);  // EPIPE: the dispatcher sends SIGPIPE
    }
    if (nonblocking()) {
      if (done > 0) return done;
      return Errno(EAGAIN);
    }
    Status s = TaskBlockOnFd(t, fd_, POLLOUT);
    if (!s.ok()) {
      if (done > 0) return done;
      return s.error();
    }
  }
  return done;
}

Result<struct stat> PipeFile::Stat() {
  struct stat st {};
  st.st_mode = S_IFIFO | 0600;
  st.st_ino = ino_;
  st.st_dev = 0xc;  // pipefs
  st.st_nlink = 1;
  st.st_blksize = 4096;
  st.st_uid = 0;
  st.st_gid = 0;
  clock_gettime(CLOCK_REALTIME, &st.st_mtim);
  st.st_atim = st.st_ctim = st.st_mtim;
  return st;
}

Result<long> PipeFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    int n = 0;
    if (ioctl(fd_, FIONREAD, &n) != 0) return Errno(errno);
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

std::string PipeFile::DisplayPath() const { return absl::StrCat("pipe:[", ino_, "]"); }

Result<FileRef> PipeFile::Reopen(int flags) {
  // The host reopens the same pipe through our own fd's magic link, with
  // the access mode asked for; O_RDWR on a pipe is allowed, as in Linux.
  std::string path = absl::StrCat("/proc/self/fd/", fd_);
  int fd = open(path.c_str(), (flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Errno(errno);
  return FileRef(std::make_shared<PipeFile>(flags & ~O_CLOEXEC, fd, ino_));
}

}  // namespace seedvisor::sentry
