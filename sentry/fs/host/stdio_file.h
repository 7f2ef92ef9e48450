// The sandbox's stdio: a FileDescription passing reads, writes and terminal
// ioctls through to a host fd (the seedsc process's own stdin/stdout/stderr).
//
// The host fd is never switched to O_NONBLOCK (that flag lives in the host's
// open file description, shared with the user's shell). A pipe, FIFO or
// socket is read and written with RWF_NOWAIT instead, waiting in
// Task::BlockOnFd in between, so a signal or SIGKILL ends a guest blocked
// on a full or empty pipe; a terminal is polled before each read.
//
//   FileRef in = NewHostStdioFile(0);   // dups the fd; the caller keeps 0
#ifndef SEEDVISOR_SENTRY_FS_HOST_STDIO_FILE_H_
#define SEEDVISOR_SENTRY_FS_HOST_STDIO_FILE_H_

#include <atomic>

#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class HostStdioFile : public FileDescription {
 public:
  // Owns `host_fd`.
  HostStdioFile(int host_fd, int flags, std::shared_ptr<Dentry> d = nullptr);
  ~HostStdioFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<size_t> PWrite(Task& t, const char* buf, size_t len, int64_t offset) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  Status Sync() override { return {}; }
  int PollFd() const override { return fd_; }
  // The host's own answer: a terminal, pipe or socket has no position; a
  // regular file or /dev/null that seedsc's stdio was redirected to has.
  bool Positional() const override;
  std::string DisplayPath() const override;
  // /dev/stdin and /proc/self/fd/0 of a piped or redirected stdin: a new
  // open of the very host object seedsc was given (never another path).
  Result<FileRef> Reopen(int flags) override;
  int host_fd() const { return fd_; }
  // Sandbox fork: the child's stdio replaces the seed's (the init's slot if
  // this was one of its 0, 1, 2; else stdin for readers, stdout otherwise).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  int fd_;
  bool tty_;
  // A pipe, FIFO or socket: reads and writes take RWF_NOWAIT (cleared if
  // the host kernel refuses it).
  std::atomic<bool> nowait_;
};

// A stdio passthrough for host fd `host_fd` (dup'ed; the caller keeps its fd).
// The first terminal seen becomes the sandbox's controlling terminal
// (/dev/tty). If `host_fd` is not open, a file that supports no I/O. A
// terminal is shown as `console` (the /dev/console dentry), so that fstat()
// and ttyname(3) agree with what the guest finds in /dev.
FileRef NewHostStdioFile(int host_fd, std::shared_ptr<Dentry> console = nullptr);

// /dev/tty: a new passthrough of the controlling terminal, or ENXIO if the
// sandbox has none.
Result<FileRef> OpenControllingTerminal(std::shared_ptr<Dentry> d, int flags);

// In a forked sentry (sentry/sfork), before a guest task runs: the
// controlling terminal becomes the first terminal among the fork's stdio
// (host fds; -1: not given yet, as in a fork made ahead), or none. The
// seed's terminal is the seed's: a fork's /dev/tty never reaches another
// sandbox's console.
void ReplaceControllingTerminalInForkChild(const int (&stdio)[3]);

// The terminal's foreground process group (TIOCGPGRP/TIOCSPGRP); starts at 1.
int TerminalForegroundPgid();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_HOST_STDIO_FILE_H_
