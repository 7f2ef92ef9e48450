#include "sentry/fs/host/stdio_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

std::atomic<int> g_fg_pgid{1};
std::mutex g_tty_mu;
int g_tty_fd = -1;  // our dup of the controlling terminal, never closed

// The kernel's struct termios (include/uapi/asm-generic/termbits.h): 4 flag
// words, c_line, 19 control characters. glibc's struct termios is larger.
constexpr size_t kKernelTermiosSize = 36;

// Whether the host fd is a pipe, FIFO or socket: the objects whose reads
// and writes take RWF_NOWAIT (FMODE_NOWAIT), so the sentry never blocks in
// the host on them even though the fd itself stays blocking.
bool TakesNowait(int fd) {
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

}  // namespace

int TerminalForegroundPgid() { return g_fg_pgid.load(); }

FileRef NewHostStdioFile(int host_fd, std::shared_ptr<Dentry> console) {
  int flags = fcntl(host_fd, F_GETFL);
  int fd = flags < 0 ? -1 : fcntl(host_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) {
    // The host fd is closed: the guest gets a file that supports nothing
    // (reads and writes fail with EINVAL) rather than a hole in its table.
    return std::make_shared<FileDescription>(O_RDWR);
  }
  if (isatty(fd)) {
    std::lock_guard l(g_tty_mu);
    if (g_tty_fd < 0) g_tty_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  }
  // The guest starts blocking whatever the host fd's O_NONBLOCK says.
  return std::make_shared<HostStdioFile>(fd, flags & (O_ACCMODE | O_APPEND),
                                         isatty(fd) ? std::move(console) : nullptr);
}

Result<FileRef> OpenControllingTerminal(std::shared_ptr<Dentry> d, int flags) {
  int fd;
  {
    std::lock_guard l(g_tty_mu);
    if (g_tty_fd < 0) return Errno(ENXIO);
    fd = fcntl(g_tty_fd, F_DUPFD_CLOEXEC, 3);
  }
  if (fd < 0) return Errno(errno);
  return FileRef(std::make_shared<HostStdioFile>(fd, flags & ~O_CREAT, std::move(d)));
}

void ReplaceControllingTerminalInForkChild(const int (&stdio)[3]) {
  std::lock_guard l(g_tty_mu);
  if (g_tty_fd >= 0) close(g_tty_fd);  // our copy of the seed's
  g_tty_fd = -1;
  for (int fd : stdio) {
    if (fd >= 0 && isatty(fd)) {
      g_tty_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      break;
    }
  }
}

HostStdioFile::HostStdioFile(int host_fd, int flags, std::shared_ptr<Dentry> d)
    : FileDescription(flags, std::move(d)),
      fd_(host_fd),
      tty_(isatty(host_fd) != 0),
      nowait_(TakesNowait(host_fd)) {}

absl::Status HostStdioFile::AdoptInForkChild(ForkFileContext& ctx) {
  int slot = (flags() & O_ACCMODE) == O_RDONLY ? 0 : 1;
  if (auto it = ctx.stdio_slot.find(this); it != ctx.stdio_slot.end()) slot = it->second;
  if (ctx.stdio[slot] < 0) {
    // A fork made ahead: the seed's copy goes now, the child's comes later.
    close(fd_);
    fd_ = -1;
    ctx.stdio_later.push_back(shared_from_this());
    return absl::OkStatus();
  }
  int fd = fcntl(ctx.stdio[slot], F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("dup of the child's stdio: ", strerror(errno)));
  close(fd_);  // our copy of the seed's: the seed keeps its own
  fd_ = fd;
  tty_ = isatty(fd) != 0;
  nowait_ = TakesNowait(fd);
  return absl::OkStatus();
}

HostStdioFile::~HostStdioFile() { close(fd_); }

Result<FileRef> HostStdioFile::Reopen(int flags) {
  // The host object lies outside the sandbox: a reopen never gets more access
  // than seedsc was given (a read-only stdin stays read-only).
  int acc = flags & O_ACCMODE;
  if ((acc != O_WRONLY && !readable()) || (acc != O_RDONLY && !writable())) return Errno(EACCES);
  std::string path = "/proc/self/fd/" + std::to_string(fd_);
  // Never create or truncate through a reopen: the host object is the user's.
  int fd = open(path.c_str(), (flags & (O_ACCMODE | O_APPEND)) | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Errno(errno);
  return FileRef(std::make_shared<HostStdioFile>(fd, flags & (O_ACCMODE | O_APPEND)));
}

Result<size_t> HostStdioFile::Read(Task& t, char* buf, size_t len) {
  for (;;) {
    if (nowait_) {
      // No poll-then-read: another reader of the same pipe (the user's
      // shell, a second sandbox) may take the data in between, and a plain
      // read would then block this thread in the host, out of reach of
      // the guest's signals.
      iovec iov{buf, len};
      ssize_t n = preadv2(fd_, &iov, 1, -1, RWF_NOWAIT);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EOPNOTSUPP) {  // a host kernel without FMODE_NOWAIT here
        nowait_ = false;
        continue;
      }
      if (errno != EAGAIN && errno != EINTR) return Errno(errno);
      if (nonblocking()) return Errno(EAGAIN);
      SV_TRY(TaskBlockOnFd(t, fd_, POLLIN));
      continue;
    }
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r < 0 && errno != EINTR) return Errno(errno);
    if (r > 0) {
      ssize_t n = read(fd_, buf, len);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EAGAIN && errno != EINTR) return Errno(errno);
    }
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(TaskBlockOnFd(t, fd_, POLLIN));
  }
}

Result<size_t> HostStdioFile::Write(Task& t, const char* buf, size_t len) {
  // A blocking write to a full pipe or socket would wait in the host, where
  // neither a signal nor SIGKILL of the guest reaches this thread:
  // RWF_NOWAIT takes what fits (all or nothing up to PIPE_BUF, as pipe
  // writes are atomic) and the rest waits in TaskBlockOnFd. A blocking
  // file still writes everything unless a signal comes (pipe_write()).
  size_t done = 0;
  for (;;) {
    ssize_t n;
    if (nowait_) {
      iovec iov{const_cast<char*>(buf) + done, len - done};
      n = pwritev2(fd_, &iov, 1, -1, RWF_NOWAIT);
      if (n < 0 && errno == EOPNOTSUPP) {  // a host kernel without FMODE_NOWAIT here
        nowait_ = false;
        continue;
      }
    } else {
      n = write(fd_, buf + done, len - done);
    }
    if (n >= 0) {
      done += static_cast<size_t>(n);
      if (done == len || !nowait_ || nonblocking()) return done;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN || nonblocking()) {
      if (done > 0) return done;
      return Errno(errno);
    }
    if (Status s = TaskBlockOnFd(t, fd_, POLLOUT); !s.ok()) {
      if (done > 0) return done;
      return s.error();
    }
  }
}

bool HostStdioFile::Positional() const {
  struct stat st;
  if (tty_ || fd_ < 0 || fstat(fd_, &st) != 0) return false;
  return !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode);
}

Result<size_t> HostStdioFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  ssize_t n = pread(fd_, buf, len, offset);
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Result<size_t> HostStdioFile::PWrite(Task&, const char* buf, size_t len, int64_t offset) {
  ssize_t n = pwrite(fd_, buf, len, offset);
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Result<int64_t> HostStdioFile::Seek(int64_t offset, int whence) {
  off_t r = lseek(fd_, offset, whence);
  if (r < 0) return Errno(errno);
  return static_cast<int64_t>(r);
}

Result<struct stat> HostStdioFile::Stat() {
  if (tty_ && dentry()) return FileDescription::Stat();  // the /dev node it is shown as
  struct stat st;
  if (fstat(fd_, &st) != 0) return Errno(errno);
  return st;
}

std::string HostStdioFile::DisplayPath() const {
  if (dentry()) return FileDescription::DisplayPath();
  if (tty_) return "/dev/tty";
  struct stat st;
  if (fstat(fd_, &st) == 0 && S_ISFIFO(st.st_mode)) {
    return absl::StrCat("pipe:[", st.st_ino, "]");
  }
  return absl::StrCat("host:[", fd_, "]");
}

Result<long> HostStdioFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  switch (cmd) {
    case TCGETS: {
      char buf[64] = {};
      if (ioctl(fd_, TCGETS, buf) != 0) return Errno(errno);
      SV_TRY(TaskCopyOut(t, arg, buf, kKernelTermiosSize));
      return 0L;
    }
    case TCSETS:
    case TCSETSW:
    case TCSETSF: {
      char buf[64] = {};
      SV_TRY(TaskCopyIn(t, arg, buf, kKernelTermiosSize));
      if (ioctl(fd_, cmd, buf) != 0) return Errno(errno);
      return 0L;
    }
    case TIOCGWINSZ: {
      struct winsize ws {};
      if (ioctl(fd_, TIOCGWINSZ, &ws) != 0) return Errno(errno);
      SV_TRY(TaskCopyOut(t, arg, &ws, sizeof(ws)));
      return 0L;
    }
    case TIOCSWINSZ: {
      struct winsize ws {};
      SV_TRY(TaskCopyIn(t, arg, &ws, sizeof(ws)));
      if (ioctl(fd_, TIOCSWINSZ, &ws) != 0) return Errno(errno);
      return 0L;
    }
    case TIOCGPGRP: {
      if (!tty_) return Errno(ENOTTY);
      // Kept global; shown as the caller's pid namespace names it.
      int pgid = TaskIdIn(t, g_fg_pgid.load());
      SV_TRY(TaskCopyOut(t, arg, &pgid, sizeof(pgid)));
      return 0L;
    }
    case TIOCSPGRP: {
      if (!tty_) return Errno(ENOTTY);
      int pgid;
      SV_TRY(TaskCopyIn(t, arg, &pgid, sizeof(pgid)));
      if (pgid < 0) return Errno(EINVAL);
      // tiocspgrp(): an id of the caller's namespace, a group (or process)
      // of the caller's session.
      SV_ASSIGN_OR_RETURN(pgid, TaskForegroundGroup(t, pgid));
      g_fg_pgid.store(pgid);
      return 0L;
    }
    case TIOCGSID: {
      if (!tty_) return Errno(ENOTTY);
      // The init's session (global id 1) owns the terminal.
      int sid = TaskIdIn(t, 1);
      SV_TRY(TaskCopyOut(t, arg, &sid, sizeof(sid)));
      return 0L;
    }
    case TIOCSCTTY:
    case TIOCNOTTY:
      return tty_ ? 0L : Result<long>(Errno(ENOTTY));
    case FIONREAD:
    case TIOCOUTQ: {
      int n = 0;
      if (ioctl(fd_, cmd, &n) != 0) return Errno(errno);
      SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
      return 0L;
    }
    case TCFLSH:
    case TCXONC:
    case TCSBRK: {
      if (ioctl(fd_, cmd, static_cast<unsigned long>(arg.value())) != 0) return Errno(errno);
      return 0L;
    }
    default:
      return Errno(ENOTTY);
  }
}

}  // namespace seedvisor::sentry
