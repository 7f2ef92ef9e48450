#include "sentry/fs/devpts/pty_file.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include "absl/strings/str_cat.h"
#include "sentry/fs/devpts/devpts.h"
#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

PtyMasterFile::PtyMasterFile(int flags, DentryRef d, std::shared_ptr<Pty> pty)
    : FileDescription(flags, std::move(d)), pty_(std::move(pty)) {}

PtyMasterFile::~PtyMasterFile() {
  pty_->MasterClosed();
  ReleasePty(pty_->index());
}

Result<size_t> PtyMasterFile::Read(Task& t, char* buf, size_t len) {
  return pty_->Read(t, true, buf, len, nonblocking());
}

Result<size_t> PtyMasterFile::Write(Task& t, const char* buf, size_t len) {
  return pty_->Write(t, true, buf, len, nonblocking());
}

void PtyMasterFile::AsyncTurnedOn(Task& t) { SetTtyOwnerIfUnset(t, *this, 0); }

std::string PtyMasterFile::DisplayPath() const {
  return dentry() ? FileDescription::DisplayPath() : "/dev/ptmx";
}

Result<long> PtyMasterFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  switch (cmd) {
    case TIOCGPTN: {
      int n = pty_->index();
      SV_TRY(t.CopyOut(arg, &n, sizeof(n)));
      return 0L;
    }
    case TIOCSPTLCK:
    case TIOCGPTLCK: {
      int v;
      if (cmd == TIOCGPTLCK) {
        v = pty_->locked() ? 1 : 0;
        SV_TRY(t.CopyOut(arg, &v, sizeof(v)));
        return 0L;
      }
      SV_TRY(t.CopyIn(arg, &v, sizeof(v)));
      pty_->set_locked(v != 0);
      return 0L;
    }
    case TIOCGPTPEER: {
      // ptm_open_peer(): the replica without a path lookup; `arg` holds the
      // open flags.
      int flags = static_cast<int>(arg.value());
      if (flags & ~(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) return Errno(EINVAL);
      SV_ASSIGN_OR_RETURN(FileRef f, OpenReplica(pty_, nullptr, flags & ~O_CLOEXEC, &t));
      rlim_t limit;
      {
        absl::MutexLock l(&t.kernel().mu());
        limit = t.tg().rlimits[RLIMIT_NOFILE].rlim_cur;
      }
      if (limit == 0 || limit > (1u << 20)) limit = 1024;
      SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(std::move(f), (flags & O_CLOEXEC) != 0, 0,
                                                  static_cast<int>(limit)));
      return long{fd};
    }
    default:
      return pty_->Ioctl(t, true, cmd, arg);
  }
}

PtyReplicaFile::PtyReplicaFile(int flags, DentryRef d, std::shared_ptr<Pty> pty)
    : FileDescription(flags, std::move(d)), pty_(std::move(pty)) {}

PtyReplicaFile::~PtyReplicaFile() { pty_->ReplicaClosed(); }

Result<size_t> PtyReplicaFile::Read(Task& t, char* buf, size_t len) {
  return pty_->Read(t, false, buf, len, nonblocking());
}

Result<size_t> PtyReplicaFile::Write(Task& t, const char* buf, size_t len) {
  return pty_->Write(t, false, buf, len, nonblocking());
}

Result<long> PtyReplicaFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  return pty_->Ioctl(t, false, cmd, arg);
}

Result<struct stat> PtyReplicaFile::Stat() {
  if (dentry()) return FileDescription::Stat();
  // ttyname(3) compares this with a stat of /dev/pts/N.
  return pty_->node()->Stat();
}

void PtyReplicaFile::AsyncTurnedOn(Task& t) {
  SetTtyOwnerIfUnset(t, *this, pty_->foreground_pgrp());
}

std::string PtyReplicaFile::DisplayPath() const {
  return dentry() ? FileDescription::DisplayPath() : absl::StrCat("/dev/pts/", pty_->index());
}

Result<FileRef> PtyReplicaFile::Reopen(int flags) {
  return OpenReplica(pty_, nullptr, flags & ~(O_CREAT | O_CLOEXEC), CurrentTask());
}

Result<FileRef> OpenReplica(const std::shared_ptr<Pty>& pty, DentryRef d, int flags, Task* t) {
  if (t != nullptr && !(flags & O_NOCTTY)) {
    std::shared_ptr<const PidNumbers> sid;
    {
      absl::MutexLock l(&t->kernel().mu());
      sid = t->kernel().NumbersOfLocked(t->tg().sid);
    }
    // A session has one controlling terminal.
    if (SessionHasPty(sid.get())) flags |= O_NOCTTY;
  }
  SV_TRY(pty->ReplicaOpening(t, flags));
  return FileRef(std::make_shared<PtyReplicaFile>(flags & ~(O_CREAT | O_NOCTTY), std::move(d), pty));
}

}  // namespace seedvisor::sentry
