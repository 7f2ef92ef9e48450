// The two ends of a Pty as open files: the master (/dev/ptmx) and the
// replica (/dev/pts/N). Each counts as one open end while it lives: the
// master's going hangs the pair up, the last replica's going makes master
// reads fail with EIO.
//
//   SV_ASSIGN_OR_RETURN(FileRef m, OpenPtmx(d, O_RDWR));   // devpts.h
//   SV_ASSIGN_OR_RETURN(FileRef r, OpenReplica(pty, d, O_RDWR | O_NOCTTY, task));
#ifndef SEEDVISOR_SENTRY_FS_DEVPTS_PTY_FILE_H_
#define SEEDVISOR_SENTRY_FS_DEVPTS_PTY_FILE_H_

#include <cstring>
#include <memory>

#include "sentry/fs/devpts/pty.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class PtyMasterFile : public FileDescription {
 public:
  PtyMasterFile(int flags, DentryRef d, std::shared_ptr<Pty> pty);
  ~PtyMasterFile() override;
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override { return pty_->PollFd(true); }
  bool Positional() const override { return false; }  // tty_open()'s nonseekable_open()
  // tty_fasync(): O_ASYNC sticks; SIGIO (POLL_IN) when the end becomes
  // readable, from its readiness fd (n_tty's kill_fasync()).
  bool SupportsAsync() const override { return true; }
  bool SigioFromReadiness() const override { return true; }
  // tty_fasync(): the master's own tty has no process group (the pair's is
  // the replica's), so the owner becomes the caller.
  void AsyncTurnedOn(Task& t) override;
  std::string DisplayPath() const override;
  absl::Status AdoptInForkChild(ForkFileContext&) override {
    Status s = pty_->AdoptInForkChild();
    if (s.ok()) return absl::OkStatus();
    return absl::InternalError(DisplayPath() + ": a new readiness socketpair: " + strerror(s.error().value()));
  }

 private:
  const std::shared_ptr<Pty> pty_;
};

class PtyReplicaFile : public FileDescription {
 public:
  // Counted as open already (Pty::ReplicaOpening succeeded).
  PtyReplicaFile(int flags, DentryRef d, std::shared_ptr<Pty> pty);
  ~PtyReplicaFile() override;
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  // The /dev/pts/N node, unless opened through another name (/dev/tty).
  Result<struct stat> Stat() override;
  int PollFd() const override { return pty_->PollFd(false); }
  bool Positional() const override { return false; }  // as the master's
  bool SupportsAsync() const override { return true; }  // as the master's
  bool SigioFromReadiness() const override { return true; }
  // tty_fasync(): the foreground process group becomes the owner.
  void AsyncTurnedOn(Task& t) override;
  std::string DisplayPath() const override;
  absl::Status AdoptInForkChild(ForkFileContext&) override {
    Status s = pty_->AdoptInForkChild();
    if (s.ok()) return absl::OkStatus();
    return absl::InternalError(DisplayPath() + ": a new readiness socketpair: " + strerror(s.error().value()));
  }
  Result<FileRef> Reopen(int flags) override;

 private:
  const std::shared_ptr<Pty> pty_;
};

// Opens the replica of `pty` (EIO while locked or hung up). `t`, if not
// null, is the opener: a session leader may gain a controlling terminal.
Result<FileRef> OpenReplica(const std::shared_ptr<Pty>& pty, DentryRef d, int flags, Task* t);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEVPTS_PTY_FILE_H_
