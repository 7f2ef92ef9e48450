// Namespace operations (mkdir, unlink, rename, link, symlink, readlink) and
// directory reading.
#include <fcntl.h>
#include <linux/fs.h>

#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

struct At {
  ResolveContext c;
  std::string path;
};

Result<At> PathAt(Task& t, int dirfd, UserAddr addr) {
  At at;
  SV_ASSIGN_OR_RETURN(at.path, CopyInPath(t, addr));
  SV_ASSIGN_OR_RETURN(at.c, t.kernel().vfs().ContextAt(t, dirfd, at.path));
  return at;
}

SyscallReturn DoMkdir(Task& t, int dirfd, UserAddr p, mode_t mode) {
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, dirfd, p));
  SV_TRY(t.kernel().vfs().Mkdir(at.c, at.path, mode));
  return 0;
}

SyscallReturn DoMknod(Task& t, int dirfd, UserAddr p, mode_t mode, dev_t dev) {
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, dirfd, p));
  mode_t type = mode & S_IFMT;
  if (type != 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
      type != S_IFBLK) {
    return Errno(EINVAL);
  }
  if (type == 0) mode |= S_IFREG;
  if ((type == S_IFCHR || type == S_IFBLK) && !t.creds().HasCap(CAP_MKNOD)) return Errno(EPERM);
  SV_TRY(t.kernel().vfs().Mknod(at.c, at.path, mode, dev));
  return 0;
}

SyscallReturn DoRename(Task& t, int olddir, UserAddr oldp, int newdir, UserAddr newp,
                       unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) return Errno(EINVAL);
  if (flags & RENAME_WHITEOUT) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(At o, PathAt(t, olddir, oldp));
  SV_ASSIGN_OR_RETURN(At n, PathAt(t, newdir, newp));
  SV_TRY(t.kernel().vfs().Rename(o.c, o.path, n.c, n.path, flags));
  return 0;
}

SyscallReturn DoLink(Task& t, int olddir, UserAddr oldp, int newdir, UserAddr newp, int flags) {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string op, CopyInPath(t, oldp));
  SV_ASSIGN_OR_RETURN(At n, PathAt(t, newdir, newp));
  if (op.empty() && (flags & AT_EMPTY_PATH)) {
    // linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH
    // (LOOKUP_LINKAT_EMPTY), and links the fd's object itself, whatever
    // its name is now or whether it has one (an O_TMPFILE file).
    if (!t.creds().HasCap(CAP_DAC_READ_SEARCH)) return Errno(ENOENT);
    SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, olddir));
    if (!f->dentry()) return Errno(ENOENT);
    SV_TRY(t.kernel().vfs().LinkDentry(n.c, f->dentry(), n.c, n.path));
    return 0;
  }
  SV_ASSIGN_OR_RETURN(ResolveContext oc, t.kernel().vfs().ContextAt(t, olddir, op));
  SV_TRY(t.kernel().vfs().Link(oc, op, n.c, n.path, (flags & AT_SYMLINK_FOLLOW) != 0));
  return 0;
}

SyscallReturn DoSymlink(Task& t, UserAddr target, int dirfd, UserAddr linkp) {
  SV_ASSIGN_OR_RETURN(std::string tgt, CopyInPath(t, target));
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, dirfd, linkp));
  SV_TRY(t.kernel().vfs().Symlink(at.c, tgt, at.path));
  return 0;
}

SyscallReturn DoReadlink(Task& t, int dirfd, UserAddr p, UserAddr buf, int64_t size) {
  if (size <= 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, p));
  // readlinkat(fd, "", ...) reads the symlink an O_PATH fd refers to.
  SV_ASSIGN_OR_RETURN(DentryRef d, t.kernel().vfs().ResolveAt(
                                       t, dirfd, path, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
  auto target = d->inode()->Readlink();
  if (!target.ok()) return target.error() == Errno(EINVAL) && path.empty() ? Errno(ENOENT)
                                                                            : target.error();
  size_t n = std::min<size_t>(target->size(), static_cast<size_t>(size));
  SV_TRY(t.CopyOut(buf, target->data(), n));
  return n;
}

}  // namespace

SyscallReturn SysMkdir(Task& t, const SyscallArgs& a) {
  return DoMkdir(t, AT_FDCWD, a.Addr(0), static_cast<mode_t>(a.Uint(1)));
}
SyscallReturn SysMkdirat(Task& t, const SyscallArgs& a) {
  return DoMkdir(t, a.Int(0), a.Addr(1), static_cast<mode_t>(a.Uint(2)));
}
SyscallReturn SysMknod(Task& t, const SyscallArgs& a) {
  return DoMknod(t, AT_FDCWD, a.Addr(0), static_cast<mode_t>(a.Uint(1)),
                 static_cast<dev_t>(a.Uint(2)));
}
SyscallReturn SysMknodat(Task& t, const SyscallArgs& a) {
  return DoMknod(t, a.Int(0), a.Addr(1), static_cast<mode_t>(a.Uint(2)),
                 static_cast<dev_t>(a.Uint(3)));
}

SyscallReturn SysUnlink(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, AT_FDCWD, a.Addr(0)));
  SV_TRY(t.kernel().vfs().Unlink(at.c, at.path));
  return 0;
}

SyscallReturn SysUnlinkat(Task& t, const SyscallArgs& a) {
  int flags = a.Int(2);
  if (flags & ~AT_REMOVEDIR) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, a.Int(0), a.Addr(1)));
  if (flags & AT_REMOVEDIR) {
    SV_TRY(t.kernel().vfs().Rmdir(at.c, at.path));
  } else {
    SV_TRY(t.kernel().vfs().Unlink(at.c, at.path));
  }
  return 0;
}

SyscallReturn SysRmdir(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(At at, PathAt(t, AT_FDCWD, a.Addr(0)));
  SV_TRY(t.kernel().vfs().Rmdir(at.c, at.path));
  return 0;
}

SyscallReturn SysRename(Task& t, const SyscallArgs& a) {
  return DoRename(t, AT_FDCWD, a.Addr(0), AT_FDCWD, a.Addr(1), 0);
}
SyscallReturn SysRenameat(Task& t, const SyscallArgs& a) {
  return DoRename(t, a.Int(0), a.Addr(1), a.Int(2), a.Addr(3), 0);
}
SyscallReturn SysRenameat2(Task& t, const SyscallArgs& a) {
  return DoRename(t, a.Int(0), a.Addr(1), a.Int(2), a.Addr(3), a.Uint(4));
}

SyscallReturn SysLink(Task& t, const SyscallArgs& a) {
  return DoLink(t, AT_FDCWD, a.Addr(0), AT_FDCWD, a.Addr(1), 0);
}
SyscallReturn SysLinkat(Task& t, const SyscallArgs& a) {
  return DoLink(t, a.Int(0), a.Addr(1), a.Int(2), a.Addr(3), a.Int(4));
}

SyscallReturn SysSymlink(Task& t, const SyscallArgs& a) {
  return DoSymlink(t, a.Addr(0), AT_FDCWD, a.Addr(1));
}
SyscallReturn SysSymlinkat(Task& t, const SyscallArgs& a) {
  return DoSymlink(t, a.Addr(0), a.Int(1), a.Addr(2));
}

SyscallReturn SysReadlink(Task& t, const SyscallArgs& a) {
  return DoReadlink(t, AT_FDCWD, a.Addr(0), a.Addr(1), a.Long(2));
}
SyscallReturn SysReadlinkat(Task& t, const SyscallArgs& a) {
  return DoReadlink(t, a.Int(0), a.Addr(1), a.Addr(2), a.Long(3));
}

SyscallReturn SysGetdents64(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(size_t n, f->GetDents64(t, a.Addr(1), a.Uint(2)));
  return n;
}

SyscallReturn SysGetdents(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  auto* dir = dynamic_cast<DirFile*>(f.get());
  if (!dir) return Errno(ENOTDIR);
  SV_ASSIGN_OR_RETURN(size_t n, dir->GetDents(t, a.Addr(1), a.Uint(2)));
  return n;
}

}  // namespace seedvisor::sentry
