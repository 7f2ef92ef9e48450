#include "shim/process_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "sentry/base/deadline.h"
#include "shim/log.h"
#include "shim/ttrpc/socket.h"

namespace seedvisor::shim {
namespace {

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::atomic<int> console_seq{0};

// The write end of the fifo at `path`, opened while its reader is there
// (a reader blocked in open(2) counts: fifo_open in fs/pipe.c), or -1: not
// a fifo, or no reader within ~100 ms (the sandbox then opens the path
// itself at Start, as before). Blocking afterwards, for the pty copier.
int OpenFifoWriterEarly(const std::string& path) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) return -1;
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    if (errno != ENXIO) break;
    usleep(2000);  // the client's reader is not in open(2) yet
  }
  ShimLog("fifo %s: no reader yet (%s); the sandbox opens it at start", path, strerror(errno));
  return -1;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ProcessIO>> ProcessIO::Create(const std::string& stdin_path,
                                                             const std::string& stdout_path,
                                                             const std::string& stderr_path,
                                                             bool terminal) {
  std::shared_ptr<ProcessIO> io(new ProcessIO());
  io->stdin_path_ = stdin_path;
  io->stdout_path_ = stdout_path;
  io->stderr_path_ = stderr_path;
  io->terminal_ = terminal;
  {
    absl::MutexLock l(&io->mu_);
    io->stdout_early_ = OpenFifoWriterEarly(stdout_path);
    if (!terminal) io->stderr_early_ = OpenFifoWriterEarly(stderr_path);
  }
  if (terminal) {
    if (pipe2(io->wake_, O_CLOEXEC | O_NONBLOCK) < 0) {
      return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
    }
    io->console_path_ = absl::StrCat("/tmp/seedsc-shim-console-", getpid(), "-",
                                     console_seq.fetch_add(1), ".sock");
    unlink(io->console_path_.c_str());
    absl::StatusOr<int> l = ttrpc::ListenUnix(io->console_path_);
    if (!l.ok()) return l.status();
    io->console_listen_ = *l;
    return io;
  }
  if (!stdin_path.empty()) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      return absl::InternalError(absl::StrCat("stdin pipe: ", strerror(errno)));
    }
    if (pipe2(io->stdin_wake_, O_CLOEXEC | O_NONBLOCK) < 0) {
      int e = errno;
      close(p[0]);
      close(p[1]);
      return absl::InternalError(absl::StrCat("pipe: ", strerror(e)));
    }
    {
      absl::MutexLock l(&io->mu_);
      io->stdin_read_ = p[0];
      io->stdin_write_ = p[1];
      io->copier_running_ = true;
    }
    std::thread([io] { io->CopyStdin(); }).detach();
  }
  return io;
}

ProcessIO::~ProcessIO() {
  Finish(absl::ZeroDuration());
  for (int fd : {wake_[0], wake_[1], stdin_wake_[0], stdin_wake_[1]}) {
    if (fd >= 0) close(fd);
  }
}

seedvisor::control::v1::Stdio ProcessIO::SandboxStdio() const {
  seedvisor::control::v1::Stdio s;
  if (terminal_) {
    s.set_terminal(true);
    s.set_console_socket(console_path_);
    return s;
  }
  auto own = [](int fd) { return absl::StrCat("/proc/", getpid(), "/fd/", fd); };
  absl::MutexLock l(const_cast<absl::Mutex*>(&mu_));
  if (stdin_read_ >= 0) s.set_stdin(own(stdin_read_));
  s.set_stdout(stdout_early_ >= 0 ? own(stdout_early_)
                                  : stdout_path_.empty() ? "/dev/null" : stdout_path_);
  s.set_stderr(stderr_early_ >= 0 ? own(stderr_early_)
                                  : stderr_path_.empty() ? "/dev/null" : stderr_path_);
  if (stdin_path_.empty()) s.set_stdin("/dev/null");
  return s;
}

// The copier thread: containerd's stdin fifo → our pipe, until EOF (every
// writer closed the fifo; O_RDWR would never see it), CloseStdin, or
// Finish. The thread holds a reference to this ProcessIO.
void ProcessIO::CopyStdin() {
  // Non-blocking, so that the open does not wait for the client's writer:
  // poll then reports POLLHUP only once a writer has come and gone
  // (pipe_poll in fs/pipe.c), not before the first one.
  int in = open(stdin_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) ShimLog("open stdin %s: %s", stdin_path_, strerror(errno));
  char buf[32 * 1024];
  while (in >= 0) {
    bool closing;
    {
      absl::MutexLock l(&mu_);
      closing = close_requested_;
    }
    // After CloseStdin only what is already buffered in the fifo still
    // goes through (poll with no timeout), then the pipe closes.
    pollfd p[2] = {{in, POLLIN, 0}, {stdin_wake_[0], POLLIN, 0}};
    int r = poll(p, closing ? 1 : 2, closing ? 0 : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (!closing && p[1].revents != 0) continue;  // the flag is set: re-check
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF: every writer closed the fifo
    int out;
    {
      absl::MutexLock l(&mu_);
      out = stdin_write_;
    }
    if (out < 0 || !WriteFull(out, buf, static_cast<size_t>(n))) break;
  }
  if (in >= 0) close(in);
  absl::MutexLock l(&mu_);
  copier_running_ = false;
  CloseStdinNow();
}

void ProcessIO::CloseStdin() {
  absl::MutexLock l(&mu_);
  if (!copier_running_) {
    CloseStdinNow();
    return;
  }
  // The copier passes on what is buffered, then closes the pipe.
  close_requested_ = true;
  char c = 1;
  if (write(stdin_wake_[1], &c, 1) < 0) {
    // Full: a wake-up is pending already.
  }
}

void ProcessIO::CloseStdinNow() {
  stdin_closed_ = true;
  if (stdin_write_ >= 0) {
    close(stdin_write_);
    stdin_write_ = -1;
  }
  // With a terminal, EOF is ^D on the master (as the runc shim does).
  if (terminal_ && master_ >= 0) {
    char eot = 4;
    WriteFull(master_, &eot, 1);
  }
}

void ProcessIO::DropEarlyWriters() {
  absl::MutexLock l(&mu_);
  for (int* fd : {&stdout_early_, &stderr_early_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

absl::Status ProcessIO::Started() {
  if (!terminal_) {
    DropEarlyWriters();  // the sandbox has its own now
    absl::MutexLock l(&mu_);
    if (stdin_read_ >= 0) {
      close(stdin_read_);
      stdin_read_ = -1;
    }
    return absl::OkStatus();
  }
  // The sandbox connects and sends the master during Start/Exec.
  pollfd pfd{console_listen_, POLLIN, 0};
  int r = poll(&pfd, 1, 5000);
  int conn = r > 0 ? accept4(console_listen_, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  absl::StatusOr<int> received =
      conn >= 0 ? ttrpc::ReceiveFd(conn)
                : absl::StatusOr<int>(absl::DeadlineExceededError("the sandbox did not connect in 5 s"));
  if (conn >= 0) close(conn);
  close(console_listen_);
  console_listen_ = -1;
  unlink(console_path_.c_str());
  if (!received.ok()) {
    return absl::InternalError(
        absl::StrCat("no pty master on the console socket: ", received.status().message()));
  }
  int master = *received;
  int out;
  {
    absl::MutexLock l(&mu_);
    master_ = master;
    // The copier's now, before Start's end drops what is still early: the
    // client's reader would see EOF in between.
    out = stdout_early_;
    stdout_early_ = -1;
  }
  std::thread([self = shared_from_this(), out] { self->CopyConsoleOut(out); }).detach();
  if (!stdin_path_.empty()) {
    std::string path = stdin_path_;
    std::thread([this, self = shared_from_this(), path, master] {
      int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (in < 0) return;
      char buf[32 * 1024];
      for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        absl::MutexLock l(&mu_);
        if (master_ < 0 || !WriteFull(master_, buf, static_cast<size_t>(n))) break;
      }
      close(in);
    }).detach();
  }
  return absl::OkStatus();
}

// Copies the pty master to the stdout fifo. A sandbox may keep the slave
// open after the process exits (so no EIO/POLLHUP comes): once Finish says
// the process is gone, what is still buffered is drained and the copy stops
// at the first quiet 50 ms.
void ProcessIO::CopyConsoleOut(int out) {
  int master;
  {
    absl::MutexLock l(&mu_);
    master = dup(master_);
  }
  if (out < 0 && !stdout_path_.empty()) out = open(stdout_path_.c_str(), O_WRONLY | O_CLOEXEC);
  bool draining = false;
  char buf[32 * 1024];
  for (;;) {
    pollfd p[2] = {{master, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r = poll(p, 2, draining ? 50 : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (p[1].revents != 0) {
      char c;
      if (read(wake_[0], &c, 1) < 0) {
      }
      draining = true;
      continue;
    }
    if ((p[0].revents & POLLIN) == 0) break;  // POLLHUP/POLLERR: no slave left
    ssize_t n = read(master, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EIO once every slave fd is closed
    if (out >= 0) WriteFull(out, buf, static_cast<size_t>(n));
  }
  close(master);
  if (out >= 0) close(out);
  absl::MutexLock l(&mu_);
  out_done_ = true;
  out_done_cv_.SignalAll();
}

absl::Status ProcessIO::Resize(uint32_t width, uint32_t height) {
  absl::MutexLock l(&mu_);
  if (master_ < 0) return absl::FailedPreconditionError("process has no terminal");
  winsize ws{};
  ws.ws_col = static_cast<unsigned short>(width);
  ws.ws_row = static_cast<unsigned short>(height);
  if (ioctl(master_, TIOCSWINSZ, &ws) < 0) {
    return absl::InternalError(absl::StrCat("TIOCSWINSZ: ", strerror(errno)));
  }
  return absl::OkStatus();
}

void ProcessIO::Finish(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  if (master_ >= 0) {
    char c = 1;
    if (write(wake_[1], &c, 1) < 0) {
    }
    if (timeout > absl::ZeroDuration()) {  // on the monotonic clock (issue 10)
      out_done_cv_.Await(&mu_, absl::Condition(&out_done_), sentry::Deadline::In(timeout));
    }
  }
  for (int* fd : {&stdin_read_, &stdin_write_, &master_, &stdout_early_, &stderr_early_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (copier_running_ && !close_requested_) {  // the stdin copier ends too
    close_requested_ = true;
    char c = 1;
    if (write(stdin_wake_[1], &c, 1) < 0) {
    }
  }
  if (console_listen_ >= 0) {
    close(console_listen_);
    console_listen_ = -1;
    unlink(console_path_.c_str());
  }
}

}  // namespace seedvisor::shim
