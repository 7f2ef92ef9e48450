// pipe(2): a pair of host pipe fds held by the sentry.
//
// The host fds are O_NONBLOCK; a blocking guest read or write waits in
// Task::BlockOnFd so a signal interrupts it. Capacity, PIPE_BUF atomicity and
// F_GETPIPE_SZ/F_SETPIPE_SZ come from the host pipe. A write with no reader
// fails with EPIPE; the syscall dispatcher raises SIGPIPE for it.
//
//   SV_ASSIGN_OR_RETURN(auto ends, NewPipe(O_CLOEXEC));  // {read, write}
#ifndef SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_
#define SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_

#include <utility>

#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class PipeFile : public FileDescription {
 public:
  // Owns `host_fd`.
  PipeFile(int flags, int host_fd, uint64_t ino, std::shared_ptr<Dentry> d = nullptr);
  ~PipeFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override { return fd_; }
  std::string DisplayPath() const override;
  // The other end's direction too: reopening a pipe by /proc/PID/fd/N with
  // O_WRONLY gives a writer even through the read end (fifo_open()).
  Result<FileRef> Reopen(int flags) override;
  int host_fd() const { return fd_; }

 private:
  const int fd_;
  const uint64_t ino_;
};

// `flags` may hold O_NONBLOCK and O_DIRECT (packet mode); O_CLOEXEC is the
// caller's business. Returns {read end, write end}.
Result<std::pair<FileRef, FileRef>> NewPipe(int flags);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_
