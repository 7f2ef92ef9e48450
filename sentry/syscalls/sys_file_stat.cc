// stat, statx, statfs, access, and attribute changes (chmod, chown,
// truncate, utimes).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <utime.h>

#include "sentry/syscalls/sys_file.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/inode_flags.h"
#include "sentry/vfs/write_access.h"

// FS_*_FL. Last: glibc 2.36 refuses <sys/mount.h> after it.
#include <linux/fs.h>

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

// The object a path/fd syscall acts on: a dentry, or for files without one
// (pipes, stdio) the open file.
struct Target {
  DentryRef d;
  FileRef f;
  Result<struct stat> Stat() const { return d ? StatOf(d.get()) : StatOf(f->dentry().get(), f.get()); }
};

Result<Target> TargetAt(Task& t, int dirfd, UserAddr p, int at_flags) {
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, p));
  Target tg;
  if (path.empty() && (at_flags & AT_EMPTY_PATH)) {
    if (dirfd == AT_FDCWD) {
      tg.d = t.fs().cwd();
      return tg;
    }
    SV_ASSIGN_OR_RETURN(tg.f, GetFile(t, dirfd));
    tg.d = tg.f->dentry();
    return tg;
  }
  SV_ASSIGN_OR_RETURN(tg.d, t.kernel().vfs().ResolveAt(t, dirfd, path, at_flags));
  return tg;
}

Result<Target> TargetFd(Task& t, int fd) {
  Target tg;
  SV_ASSIGN_OR_RETURN(tg.f, GetFile(t, fd));
  tg.d = tg.f->dentry();
  return tg;
}

SyscallReturn CopyOutStat(Task& t, const Target& tg, UserAddr buf) {
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  // glibc's x86-64 struct stat is the kernel's.
  SV_TRY(t.CopyOutObj(buf, st));
  return 0;
}

Status SetAttr(const Target& tg, const SetAttrRequest& r) {
  if (!tg.d) return {};  // pipes and stdio: nothing to keep
  SV_TRY(MountWritable(tg.d));
  SV_TRY(tg.d->inode()->SetAttr(r));
  // fsnotify_change(): owner and mode are IN_ATTRIB, size IN_MODIFY; both
  // times (a utimes call) IN_ATTRIB, atime alone IN_ACCESS, mtime IN_MODIFY.
  uint32_t mask = 0;
  if (r.mode || r.uid || r.gid || (r.atime && r.mtime)) mask |= IN_ATTRIB;
  if (r.size || (r.mtime && !r.atime)) mask |= IN_MODIFY;
  if (r.atime && !r.mtime) mask |= IN_ACCESS;
  if (mask) FsnotifyDentry(*tg.d, mask);
  return {};
}

SyscallReturn DoChmod(Task& t, const Target& tg, mode_t mode) {
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  const Credentials& c = t.creds();
  if (!c.HasCap(CAP_FOWNER) && c.fsuid != st.st_uid) return Errno(EPERM);
  mode &= 07777;
  // chmod(2): an unprivileged caller outside the file's group loses S_ISGID,
  // on a directory too (setattr_prepare()'s in_group_or_capable()).
  if (!c.HasCap(CAP_FSETID) && st.st_gid != c.fsgid &&
      !Vfs::CredsOf(t).InGroup(st.st_gid)) {
    mode &= ~S_ISGID;
  }
  SetAttrRequest r;
  r.mode = mode;
  SV_TRY(SetAttr(tg, r));
  return 0;
}

SyscallReturn DoChown(Task& t, const Target& tg, uid_t uid, gid_t gid) {
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  const Credentials& c = t.creds();
  SetAttrRequest r;
  if (uid != static_cast<uid_t>(-1)) {
    if (!c.HasCap(CAP_CHOWN) && uid != st.st_uid) return Errno(EPERM);
    r.uid = uid;
  }
  if (gid != static_cast<gid_t>(-1)) {
    if (!c.HasCap(CAP_CHOWN) &&
        (c.fsuid != st.st_uid || !Vfs::CredsOf(t).InGroup(gid))) {
      if (gid != st.st_gid || c.fsuid != st.st_uid) return Errno(EPERM);
    }
    r.gid = gid;
  }
  // chown(2): changing the owner of an executable clears set-user/group-ID.
  if ((r.uid || r.gid) && !S_ISDIR(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID))) {
    mode_t m = st.st_mode & 07777 & ~S_ISUID;
    if (st.st_mode & S_IXGRP) m &= ~S_ISGID;
    r.mode = m;
  }
  SV_TRY(SetAttr(tg, r));
  return 0;
}

timespec RealNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// times: null for "now"; entries may be UTIME_NOW/UTIME_OMIT.
SyscallReturn DoUtimes(Task& t, const Target& tg, const timespec* times) {
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  const Credentials& c = t.creds();
  bool owner = c.HasCap(CAP_FOWNER) || c.fsuid == st.st_uid;
  timespec now = RealNow();
  SetAttrRequest r;
  bool explicit_time = false;
  if (!times) {
    r.atime = r.mtime = now;
  } else {
    for (int i = 0; i < 2; ++i) {
      const timespec& ts = times[i];
      if (ts.tv_nsec == UTIME_OMIT) continue;
      if (ts.tv_nsec != UTIME_NOW && (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)) {
        return Errno(EINVAL);
      }
      timespec v = ts.tv_nsec == UTIME_NOW ? now : ts;
      if (ts.tv_nsec != UTIME_NOW) explicit_time = true;
      (i == 0 ? r.atime : r.mtime) = v;
    }
    if (!r.atime && !r.mtime) return 0;
  }
  // may_setattr(): explicit times change no immutable or append-only
  // object, "now" no immutable one.
  if (tg.d || (tg.f && tg.f->dentry())) {
    const unsigned iflags = InodeFsFlags(*(tg.d ? tg.d : tg.f->dentry())->inode());
    if ((iflags & FS_IMMUTABLE_FL) ||
        (explicit_time && (iflags & FS_APPEND_FL))) {
      return Errno(EPERM);
    }
  }
  // utimensat(2): explicit times need ownership; "now" needs ownership or
  // write permission.
  if (!owner) {
    if (explicit_time) return Errno(EPERM);
    Status s = CheckAccess(Vfs::CredsOf(t), st, W_OK);
    if (!s.ok()) return Errno(EACCES);
  }
  SV_TRY(SetAttr(tg, r));
  return 0;
}

Result<Target> TimevalTarget(Task& t, int dirfd, UserAddr p) {
  return TargetAt(t, dirfd, p, 0);
}

SyscallReturn DoUtimesTimeval(Task& t, int dirfd, UserAddr p, UserAddr tv_addr) {
  SV_ASSIGN_OR_RETURN(Target tg, TimevalTarget(t, dirfd, p));
  if (tv_addr.IsNull()) return DoUtimes(t, tg, nullptr);
  timeval tv[2];
  SV_TRY(t.CopyIn(tv_addr, tv, sizeof(tv)));
  timespec ts[2];
  for (int i = 0; i < 2; ++i) {
    if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1000000) return Errno(EINVAL);
    ts[i].tv_sec = tv[i].tv_sec;
    ts[i].tv_nsec = tv[i].tv_usec * 1000;
  }
  return DoUtimes(t, tg, ts);
}

SyscallReturn DoAccess(Task& t, int dirfd, UserAddr p, int mode, int flags) {
  if (mode & ~(R_OK | W_OK | X_OK)) return Errno(EINVAL);
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, p));
  SV_ASSIGN_OR_RETURN(ResolveContext c, t.kernel().vfs().ContextAt(t, dirfd, path));
  // access(2) checks with the real ids unless AT_EACCESS.
  if (!(flags & AT_EACCESS)) {
    c.creds.uid = t.creds().ruid;
    c.creds.gid = t.creds().rgid;
    // access_override_creds(): a non-root real uid checks without
    // capabilities; real root with its permitted set.
    uint64_t caps = t.creds().ruid == 0 ? t.creds().cap_permitted : 0;
    c.creds.dac_override = caps & CapBit(CAP_DAC_OVERRIDE);
    c.creds.dac_read_search = caps & CapBit(CAP_DAC_READ_SEARCH);
    c.creds.fowner = caps & CapBit(CAP_FOWNER);
  }
  DentryRef d;
  if (path.empty() && (flags & AT_EMPTY_PATH)) {
    SV_ASSIGN_OR_RETURN(d, t.kernel().vfs().ResolveAt(t, dirfd, path, AT_EMPTY_PATH));
  } else {
    SV_ASSIGN_OR_RETURN(d, t.kernel().vfs().Resolve(c, path, !(flags & AT_SYMLINK_NOFOLLOW)));
  }
  if (mode == F_OK) return 0;
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  SV_TRY(CheckAccess(c.creds, st, mode));
  if ((mode & W_OK) && d->inode()->ReadOnlyFs()) return Errno(EROFS);
  if ((mode & W_OK) && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode))) {
    SV_TRY(MountWritable(d));  // access(2): EROFS on a read-only mount
  }
  return 0;
}

// f_flags are the mount's (calculate_f_flags()), not what a host
// filesystem below says; a pipe's or socket's internal mount has none but
// ST_VALID.
Result<struct statfs> StatFsOf(const Target& tg) {
  constexpr unsigned long kStValid = 0x0020;  // ST_VALID
  if (tg.d) {
    SV_ASSIGN_OR_RETURN(struct statfs s, tg.d->inode()->StatFs());
    const Mount* m = tg.d->mount();
    if (m != nullptr) {
      s.f_flags = static_cast<decltype(s.f_flags)>(m->StatFsFlags());
      if (tg.d->inode()->ReadOnlyFs()) s.f_flags |= ST_RDONLY;
    }
    return s;
  }
  struct statfs s {};
  s.f_type = 0x50495045;  // PIPEFS_MAGIC
  s.f_bsize = 4096;
  s.f_namelen = 255;
  s.f_flags = kStValid;
  return s;
}

}  // namespace

SyscallReturn SysStat(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  return CopyOutStat(t, tg, a.Addr(1));
}

SyscallReturn SysLstat(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), AT_SYMLINK_NOFOLLOW));
  return CopyOutStat(t, tg, a.Addr(1));
}

SyscallReturn SysFstat(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, a.Int(0)));
  Target tg;
  tg.f = f;  // through the file: pipes and stdio have no dentry
  SV_ASSIGN_OR_RETURN(struct stat st, StatOf(f->dentry().get(), f.get()));
  SV_TRY(t.CopyOutObj(a.Addr(1), st));
  return 0;
}

SyscallReturn SysNewfstatat(Task& t, const SyscallArgs& a) {
  int flags = a.Int(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, a.Int(0), a.Addr(1), flags));
  if (tg.f) {
    SV_ASSIGN_OR_RETURN(struct stat st, StatOf(tg.f->dentry().get(), tg.f.get()));
    SV_TRY(t.CopyOutObj(a.Addr(2), st));
    return 0;
  }
  return CopyOutStat(t, tg, a.Addr(2));
}

SyscallReturn SysStatx(Task& t, const SyscallArgs& a) {
  int flags = a.Int(2);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) {
    return Errno(EINVAL);
  }
  if ((flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE) return Errno(EINVAL);
  unsigned mask = a.Uint(3);
  if (mask & STATX__RESERVED) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, a.Int(0), a.Addr(1), flags));
  SV_ASSIGN_OR_RETURN(struct stat st, tg.f && !tg.d ? StatOf(nullptr, tg.f.get()) : tg.Stat());
  struct statx sx {};
  sx.stx_mask = STATX_BASIC_STATS;
  sx.stx_blksize = static_cast<uint32_t>(st.st_blksize);
  sx.stx_nlink = static_cast<uint32_t>(st.st_nlink);
  sx.stx_uid = st.st_uid;
  sx.stx_gid = st.st_gid;
  sx.stx_mode = static_cast<uint16_t>(st.st_mode);
  sx.stx_ino = st.st_ino;
  sx.stx_size = static_cast<uint64_t>(st.st_size);
  sx.stx_blocks = static_cast<uint64_t>(st.st_blocks);
  sx.stx_atime = {st.st_atim.tv_sec, static_cast<uint32_t>(st.st_atim.tv_nsec), 0};
  sx.stx_mtime = {st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec), 0};
  sx.stx_ctime = {st.st_ctim.tv_sec, static_cast<uint32_t>(st.st_ctim.tv_nsec), 0};
  sx.stx_rdev_major = major(st.st_rdev);
  sx.stx_rdev_minor = minor(st.st_rdev);
  sx.stx_dev_major = major(st.st_dev);
  sx.stx_dev_minor = minor(st.st_dev);
  SV_TRY(t.CopyOutObj(a.Addr(4), sx));
  return 0;
}

SyscallReturn SysStatfs(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  SV_ASSIGN_OR_RETURN(struct statfs s, StatFsOf(tg));
  SV_TRY(t.CopyOutObj(a.Addr(1), s));
  return 0;
}

SyscallReturn SysFstatfs(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetFd(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(struct statfs s, StatFsOf(tg));
  SV_TRY(t.CopyOutObj(a.Addr(1), s));
  return 0;
}

SyscallReturn SysAccess(Task& t, const SyscallArgs& a) {
  return DoAccess(t, AT_FDCWD, a.Addr(0), a.Int(1), 0);
}
SyscallReturn SysFaccessat(Task& t, const SyscallArgs& a) {
  return DoAccess(t, a.Int(0), a.Addr(1), a.Int(2), 0);
}
SyscallReturn SysFaccessat2(Task& t, const SyscallArgs& a) {
  return DoAccess(t, a.Int(0), a.Addr(1), a.Int(2), a.Int(3));
}

SyscallReturn SysChmod(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  return DoChmod(t, tg, static_cast<mode_t>(a.Uint(1)));
}

SyscallReturn SysFchmod(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetFd(t, a.Int(0)));
  if (tg.f->flags() & O_PATH) return Errno(EBADF);
  return DoChmod(t, tg, static_cast<mode_t>(a.Uint(1)));
}

SyscallReturn SysFchmodat(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, a.Int(0), a.Addr(1), 0));
  return DoChmod(t, tg, static_cast<mode_t>(a.Uint(2)));
}

SyscallReturn SysFchmodat2(Task& t, const SyscallArgs& a) {
  const int flags = a.Int(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, a.Int(0), a.Addr(1), flags));
  // notify_change(): a symlink's own mode never changes, whoever asks.
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  if (S_ISLNK(st.st_mode)) return Errno(EOPNOTSUPP);
  return DoChmod(t, tg, static_cast<mode_t>(a.Uint(2)));
}

SyscallReturn SysChown(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  return DoChown(t, tg, a.Uint(1), a.Uint(2));
}

SyscallReturn SysLchown(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), AT_SYMLINK_NOFOLLOW));
  return DoChown(t, tg, a.Uint(1), a.Uint(2));
}

SyscallReturn SysFchown(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetFd(t, a.Int(0)));
  if (tg.f->flags() & O_PATH) return Errno(EBADF);
  return DoChown(t, tg, a.Uint(1), a.Uint(2));
}

SyscallReturn SysFchownat(Task& t, const SyscallArgs& a) {
  int flags = a.Int(4);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, a.Int(0), a.Addr(1), flags));
  return DoChown(t, tg, a.Uint(2), a.Uint(3));
}

SyscallReturn SysTruncate(Task& t, const SyscallArgs& a) {
  int64_t len = a.Long(1);
  if (len < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  SV_ASSIGN_OR_RETURN(struct stat st, tg.Stat());
  if (S_ISDIR(st.st_mode)) return Errno(EISDIR);
  if (!S_ISREG(st.st_mode)) return Errno(EINVAL);
  // inode_permission()'s MAY_WRITE: no immutable file (EPERM first).
  if (InodeFsFlags(*tg.d->inode()) & FS_IMMUTABLE_FL) return Errno(EPERM);
  SV_TRY(CheckAccess(Vfs::CredsOf(t), st, W_OK));
  SV_TRY(CheckFileGrowth(t, static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(len)));
  SV_TRY(MountWritable(tg.d));
  // vfs_truncate()'s get_write_access(), held while it truncates: not a
  // file that a process runs (ETXTBSY).
  SV_ASSIGN_OR_RETURN(WriteAccess writer, WriteAccess::Get(tg.d->inode()->LockKey()));
  // vfs_truncate()'s security_path_truncate(): Landlock's TRUNCATE.
  SV_TRY(LandlockCheckPath(t.creds().landlock.get(), tg.d, kLandlockAccessFsTruncate));
  SV_TRY(BreakLeasesOnTruncate(t, *tg.d->inode()));  // vfs_truncate()
  SetAttrRequest r;
  r.size = len;
  SV_TRY(tg.d->inode()->SetAttr(r));
  FsnotifyDentry(*tg.d, IN_MODIFY);
  return 0;
}

SyscallReturn SysFtruncate(Task& t, const SyscallArgs& a) {
  int64_t len = a.Long(1);
  if (len < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  if (!f->writable()) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(struct stat st, f->Stat());
  if (!S_ISREG(st.st_mode)) return Errno(EINVAL);
  // do_ftruncate()'s security_file_truncate(): what the open allowed.
  if (f->landlock_truncate_denied()) return Errno(EACCES);
  SV_TRY(CheckFileGrowth(t, static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(len)));
  SV_TRY(f->Truncate(len));
  FsnotifyFile(*f, IN_MODIFY);
  return 0;
}

SyscallReturn SysUtimensat(Task& t, const SyscallArgs& a) {
  int flags = a.Int(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return Errno(EINVAL);
  Target tg;
  if (a.Addr(1).IsNull()) {
    // Linux: a null path means the file dirfd refers to (futimens(3)).
    if (a.Int(0) == AT_FDCWD) return Errno(EFAULT);
    SV_ASSIGN_OR_RETURN(tg, TargetFd(t, a.Int(0)));
  } else {
    SV_ASSIGN_OR_RETURN(tg, TargetAt(t, a.Int(0), a.Addr(1), flags));
  }
  if (a.Addr(2).IsNull()) return DoUtimes(t, tg, nullptr);
  timespec ts[2];
  SV_TRY(t.CopyIn(a.Addr(2), ts, sizeof(ts)));
  return DoUtimes(t, tg, ts);
}

SyscallReturn SysUtime(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(Target tg, TargetAt(t, AT_FDCWD, a.Addr(0), 0));
  if (a.Addr(1).IsNull()) return DoUtimes(t, tg, nullptr);
  struct utimbuf ub;
  SV_TRY(t.CopyInObj(a.Addr(1), &ub));
  timespec ts[2] = {{ub.actime, 0}, {ub.modtime, 0}};
  return DoUtimes(t, tg, ts);
}

SyscallReturn SysUtimes(Task& t, const SyscallArgs& a) {
  return DoUtimesTimeval(t, AT_FDCWD, a.Addr(0), a.Addr(1));
}

SyscallReturn SysFutimesat(Task& t, const SyscallArgs& a) {
  return DoUtimesTimeval(t, a.Int(0), a.Addr(1), a.Addr(2));
}

}  // namespace seedvisor::sentry
