// dup, fcntl, ioctl, pipe.
#include <fcntl.h>
#include <sys/ioctl.h>

#include "sentry/fs/pipe/pipe.h"
#include "sentry/kernel/file_owner.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/inode_flags.h"

// FS_IOC_*FLAGS. Last: glibc 2.36 refuses <sys/mount.h> after it.
#include <linux/fs.h>

namespace seedvisor::sentry {

namespace file_internal {
SyscallReturn FcntlLock(Task& t, FileDescription& f, int cmd, UserAddr arg);
}  // namespace file_internal

using namespace file_internal;  // NOLINT

// Per-user pipe pages (sentry/fs/pipe/pipe_account.cc, which says why
// these are declared here and not in pipe.h).
Status AccountNewPipe(const std::shared_ptr<Pipe>& pipe, uid_t uid, bool limited);
Result<size_t> SetAccountedPipeCapacity(Pipe& pipe, uint64_t size, bool privileged,
                                        bool limited);

namespace {

// pipe_is_unprivileged_user(): the per-user pipe limits bind a caller
// without CAP_SYS_RESOURCE and CAP_SYS_ADMIN.
bool PipeUserLimited(const Credentials& c) {
  return !c.HasCap(CAP_SYS_RESOURCE) && !c.HasCap(CAP_SYS_ADMIN);
}

}  // namespace

SyscallReturn SysDup(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, false, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysDup2(Task& t, const SyscallArgs& a) {
  int oldfd = a.Int(0), newfd = a.Int(1);
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, oldfd));
  if (oldfd == newfd) return static_cast<uint64_t>(newfd);
  if (newfd < 0 || newfd >= FdLimit(t)) return Errno(EBADF);
  auto old = t.fds().Get(newfd);
  if (old.ok()) FlushOnClose(t, **old);
  SV_TRY(t.fds().InstallAt(newfd, f, false, FdLimit(t)));
  return static_cast<uint64_t>(newfd);
}

SyscallReturn SysDup3(Task& t, const SyscallArgs& a) {
  int oldfd = a.Int(0), newfd = a.Int(1), flags = a.Int(2);
  if (flags & ~O_CLOEXEC) return Errno(EINVAL);
  if (oldfd == newfd) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, oldfd));
  if (newfd < 0 || newfd >= FdLimit(t)) return Errno(EBADF);
  auto old = t.fds().Get(newfd);
  if (old.ok()) FlushOnClose(t, **old);
  SV_TRY(t.fds().InstallAt(newfd, f, (flags & O_CLOEXEC) != 0, FdLimit(t)));
  return static_cast<uint64_t>(newfd);
}

SyscallReturn SysFcntl(Task& t, const SyscallArgs& a) {
  int fd = a.Int(0), cmd = a.Int(1);
  auto entry = t.fds().GetEntry(fd);
  if (!entry.ok()) return Errno(EBADF);
  FdTable::Entry e = *entry;
  FileRef f = e.file;
  // check_fcntl_cmd(): an O_PATH fd only dups, has its fd flags and
  // reports its status flags.
  if ((f->flags() & O_PATH) && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_GETFD &&
      cmd != F_SETFD && cmd != F_GETFL) {
    return Errno(EBADF);
  }
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int min = a.Int(2);
      int limit = FdLimit(t);
      if (min < 0 || min >= limit) return Errno(EINVAL);
      SV_ASSIGN_OR_RETURN(int nfd, t.fds().Install(f, cmd == F_DUPFD_CLOEXEC, min, limit));
      return static_cast<uint64_t>(nfd);
    }
    case F_GETFD:
      return e.cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
      SV_TRY(t.fds().SetCloexec(fd, (a.Int(2) & FD_CLOEXEC) != 0));
      return 0;
    case F_GETFL:
      return static_cast<uint64_t>(static_cast<unsigned>(f->flags()));
    case F_SETFL: {
      // setfl(): an append-only file's descriptions keep O_APPEND.
      if (((a.Int(2) ^ f->flags()) & O_APPEND) && f->dentry() &&
          (InodeFsFlags(*f->dentry()->inode()) & FS_APPEND_FL)) {
        return Errno(EPERM);
      }
      // setfl(): turning O_NOATIME on is for the file's owner or CAP_FOWNER.
      if ((a.Int(2) & O_NOATIME) && !(f->flags() & O_NOATIME) && f->dentry()) {
        SV_ASSIGN_OR_RETURN(struct stat st, f->dentry()->inode()->Stat());
        if (t.creds().fsuid != st.st_uid && !t.creds().HasCap(CAP_FOWNER)) return Errno(EPERM);
      }
      const bool async_was = f->flags() & O_ASYNC;
      f->SetStatusFlags(a.Int(2), fd);
      if (!async_was && (f->flags() & O_ASYNC)) f->AsyncTurnedOn(t);
      WatchAsync(t, f);  // O_ASYNC on a file whose readiness signals
      return 0;
    }
    case F_GETPIPE_SZ:
    case F_SETPIPE_SZ: {
      auto* p = dynamic_cast<PipeFile*>(f.get());
      if (!p) return Errno(EBADF);
      if (cmd == F_GETPIPE_SZ) return p->pipe().Capacity();
      // pipe_fcntl() takes the size as an unsigned int.
      const Credentials& c = t.creds();
      SV_ASSIGN_OR_RETURN(size_t sz,
                          SetAccountedPipeCapacity(p->pipe(), a.Uint(2),
                                                   c.HasCap(CAP_SYS_RESOURCE), PipeUserLimited(c)));
      return sz;
    }
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      return FcntlLock(t, *f, cmd, a.Addr(2));
    case F_GETOWN:
      return static_cast<uint64_t>(static_cast<int64_t>(FileOwnerForGetown(t, *f)));
    case F_SETOWN:
      SV_TRY(SetFileOwnerAsSetown(t, *f, a.Int(2)));
      return 0;
    case F_GETOWN_EX: {
      f_owner_ex ex = FileOwnerFor(t, *f);
      SV_TRY(t.CopyOutObj(a.Addr(2), ex));
      return 0;
    }
    case F_SETOWN_EX: {
      f_owner_ex ex;
      SV_TRY(t.CopyInObj(a.Addr(2), &ex));
      SV_TRY(SetFileOwner(t, *f, ex.type, ex.pid));
      return 0;
    }
    case F_GETSIG:
      return static_cast<uint64_t>(f->async_owner().sig);
    case F_SETSIG: {
      // valid_signal(): 0 (plain SIGIO) up to _NSIG.
      uint64_t sig = a.Ulong(2);
      if (sig > 64) return Errno(EINVAL);
      f->UpdateAsyncOwner([sig](FileDescription::AsyncOwner& o) { o.sig = static_cast<int>(sig); });
      return 0;
    }
    case F_SETLEASE:
      return FcntlSetLease(t, *f, fd, a.Long(2));
    case F_GETLEASE:
      return FcntlGetLease(*f);
    case F_GET_SEALS:
    case F_ADD_SEALS:
      return MemfdSeals(*f, cmd, a.Uint(2));
    case F_NOTIFY:
      return FcntlNotify(t, *f, fd, a.Uint(2));
    default:
      return Errno(EINVAL);
  }
}

SyscallReturn SysIoctl(Task& t, const SyscallArgs& a) {
  int fd = a.Int(0);
  unsigned long cmd = a.Ulong(1) & 0xffffffff;
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, fd));
  if (f->flags() & O_PATH) return Errno(EBADF);
  switch (cmd) {
    case FIOCLEX:
      SV_TRY(t.fds().SetCloexec(fd, true));
      return 0;
    case FIONCLEX:
      SV_TRY(t.fds().SetCloexec(fd, false));
      return 0;
    case FIONBIO: {
      int on;
      SV_TRY(t.CopyInObj(a.Addr(2), &on));
      int fl = f->flags();
      f->SetStatusFlags(on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
      return 0;
    }
    case FIOASYNC: {
      int on;
      SV_TRY(t.CopyInObj(a.Addr(2), &on));
      int fl = f->flags();
      // ioctl_fioasync(): ENOTTY for a change on a file without ->fasync.
      if (((on ? O_ASYNC : 0) ^ (fl & O_ASYNC)) && !f->SupportsAsync()) return Errno(ENOTTY);
      f->SetStatusFlags(on ? (fl | O_ASYNC) : (fl & ~O_ASYNC), fd);
      if (!(fl & O_ASYNC) && (f->flags() & O_ASYNC)) f->AsyncTurnedOn(t);
      WatchAsync(t, f);
      return 0;
    }
    case FS_IOC_GETFLAGS:
    case FS_IOC_SETFLAGS: {
      SV_ASSIGN_OR_RETURN(long r, InodeFlagsIoctl(t, *f, cmd, a.Addr(2)));
      return static_cast<uint64_t>(r);
    }
    default: {
      SV_ASSIGN_OR_RETURN(long r, f->Ioctl(t, cmd, a.Addr(2)));
      return static_cast<uint64_t>(r);
    }
  }
}

namespace {

SyscallReturn DoPipe(Task& t, UserAddr fds_addr, int flags) {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return Errno(EINVAL);
  const Credentials& c = t.creds();
  SV_ASSIGN_OR_RETURN(auto ends, NewPipe(flags & ~O_CLOEXEC, c.HasCap(CAP_SYS_RESOURCE)));
  // alloc_pipe_info(): the pages count for the caller's real user.
  SV_TRY(AccountNewPipe(static_cast<PipeFile&>(*ends.first).pipe().shared_from_this(), c.ruid,
                        PipeUserLimited(c)));
  bool cloexec = flags & O_CLOEXEC;
  int limit = FdLimit(t);
  SV_ASSIGN_OR_RETURN(int rfd, t.fds().Install(ends.first, cloexec, 0, limit));
  auto wfd = t.fds().Install(ends.second, cloexec, 0, limit);
  if (!wfd.ok()) {
    (void)t.fds().Remove(rfd);
    return wfd.error();
  }
  int out[2] = {rfd, *wfd};
  Status s = t.CopyOut(fds_addr, out, sizeof(out));
  if (!s.ok()) {
    (void)t.fds().Remove(rfd);
    (void)t.fds().Remove(*wfd);
    return Errno(EFAULT);
  }
  return 0;
}

}  // namespace

SyscallReturn SysPipe(Task& t, const SyscallArgs& a) { return DoPipe(t, a.Addr(0), 0); }
SyscallReturn SysPipe2(Task& t, const SyscallArgs& a) { return DoPipe(t, a.Addr(0), a.Int(1)); }

}  // namespace seedvisor::sentry
