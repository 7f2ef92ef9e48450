// open/close, the working directory and umask.
#include <fcntl.h>
#include <linux/close_range.h>

#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

SyscallReturn DoOpen(Task& t, int dirfd, UserAddr path_addr, int flags, mode_t mode) {
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, path_addr));
  // force_o_largefile(): 64-bit kernels open everything large-file, but
  // build_open_flags() keeps nothing of the kind for O_PATH.
  if (!(flags & O_PATH)) flags |= kKernelOLargefile;
  // The VFS's open breaks leases (do_dentry_open()'s break_lease(), before
  // it truncates and before the fd exists).
  SV_ASSIGN_OR_RETURN(FileRef f, t.kernel().vfs().OpenAt(t, dirfd, path, flags, mode));
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(std::move(f), (flags & O_CLOEXEC) != 0, 0,
                                               FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

}  // namespace

SyscallReturn SysOpen(Task& t, const SyscallArgs& a) {
  return DoOpen(t, AT_FDCWD, a.Addr(0), a.Int(1), static_cast<mode_t>(a.Uint(2)));
}

SyscallReturn SysOpenat(Task& t, const SyscallArgs& a) {
  return DoOpen(t, a.Int(0), a.Addr(1), a.Int(2), static_cast<mode_t>(a.Uint(3)));
}

SyscallReturn SysCreat(Task& t, const SyscallArgs& a) {
  return DoOpen(t, AT_FDCWD, a.Addr(0), O_CREAT | O_WRONLY | O_TRUNC,
                static_cast<mode_t>(a.Uint(1)));
}

SyscallReturn SysClose(Task& t, const SyscallArgs& a) {
  auto f = t.fds().Remove(a.Int(0));
  if (!f.ok()) return Errno(EBADF);
  FlushOnClose(t, **f);
  return 0;
}

SyscallReturn SysCloseRange(Task& t, const SyscallArgs& a) {
  unsigned first = a.Uint(0), last = a.Uint(1), flags = a.Uint(2);
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) return Errno(EINVAL);
  if (first > last) return Errno(EINVAL);
  // CLOSE_RANGE_UNSHARE: the caller's own copy of a shared table first
  // (unshare_fd()), so the other sharers keep their fds.
  if ((flags & CLOSE_RANGE_UNSHARE) && t.fds_shared()) t.set_fds(t.fds_->Fork());
  for (const auto& [fd, e] : t.fds().Snapshot()) {
    if (static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) {
      (void)t.fds().SetCloexec(fd, true);
    } else {
      auto f = t.fds().Remove(fd);
      if (f.ok()) FlushOnClose(t, **f);
    }
  }
  return 0;
}

namespace {

// chdir(2) and chroot(2) (`root`): `path`, a directory the caller may
// search, becomes its working directory or root (chroot: CAP_SYS_CHROOT
// too, checked after search permission, as ksys_chroot() does). Walked
// again if a umount2 took its mount away before the walk's result was
// held (Vfs::HeldMountLive): the context never takes a directory of a
// mount umount2 called idle; after a few such walks, ENOENT (the name
// went away with the mount).
SyscallReturn MoveTo(Task& t, const SyscallArgs& a, bool root) {
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, a.Addr(0)));
  Vfs& vfs = t.kernel().vfs();
  for (int attempt = 0; attempt < 4; ++attempt) {
    SV_ASSIGN_OR_RETURN(DentryRef d, vfs.ResolveAt(t, AT_FDCWD, path, 0));
    SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
    if (!S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
    SV_TRY(CheckAccess(Vfs::CredsOf(t), st, X_OK));
    if (root && !t.creds().HasCap(CAP_SYS_CHROOT)) return Errno(EPERM);
    // Held until the context holds it.
    const MountHold hold(d->mount(), false);
    if (!vfs.HeldMountLive(d->mount())) continue;
    if (root) {
      t.fs().SetRoot(std::move(d));
    } else {
      t.fs().SetCwd(std::move(d));
    }
    return 0;
  }
  return Errno(ENOENT);
}

}  // namespace

SyscallReturn SysChdir(Task& t, const SyscallArgs& a) { return MoveTo(t, a, false); }

// chroot(2): ".." never climbs above the new root.
SyscallReturn SysChroot(Task& t, const SyscallArgs& a) { return MoveTo(t, a, true); }

SyscallReturn SysFchdir(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, a.Int(0)));
  if (!f->dentry()) return Errno(ENOTDIR);
  SV_ASSIGN_OR_RETURN(struct stat st, f->dentry()->inode()->Stat());
  if (!S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
  SV_TRY(CheckAccess(Vfs::CredsOf(t), st, X_OK));
  t.fs().SetCwd(f->dentry());
  return 0;
}

SyscallReturn SysGetcwd(Task& t, const SyscallArgs& a) {
  DentryRef cwd = t.fs().cwd();
  // getcwd(3): ENOENT once the working directory was removed.
  if (cwd->deleted()) return Errno(ENOENT);
  std::string p = cwd->PathFrom(t.fs().root().get());
  size_t size = a.Size(1);
  if (size < p.size() + 1) return Errno(ERANGE);
  SV_TRY(t.CopyOut(a.Addr(0), p.c_str(), p.size() + 1));
  return p.size() + 1;
}

SyscallReturn SysUmask(Task& t, const SyscallArgs& a) {
  return static_cast<uint64_t>(t.fs().SetUmask(static_cast<mode_t>(a.Uint(0)) & 0777));
}

}  // namespace seedvisor::sentry
