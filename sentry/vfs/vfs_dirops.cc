// The Vfs's operations that make and remove names (namei.c's vfs_mkdir,
// vfs_mknod, vfs_unlink, vfs_rmdir, vfs_rename, vfs_link and vfs_symlink
// in Linux): permission and sticky-bit checks, the mounts in the way, the
// dentry cache kept right, and their inotify events.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr size_t kPathMax = 4096;

bool IsDir(const DentryRef& d) { return d->inode()->Type() == S_IFDIR; }

// True once the object behind `d` has no name left.
bool LastLinkGone(const Dentry& d) {
  auto st = d.inode()->Stat();
  return !st.ok() || st->st_nlink == 0;
}

// The events of unlink(2)/rmdir(2) (`isdir`: IN_ISDIR) of `name` in `dir`:
// vfs_unlink() reports the link count change (IN_ATTRIB); the object's
// watches end with IN_DELETE_SELF and IN_IGNORED when its last name goes
// (d_delete()); then the directory hears of the name's removal
// (IN_DELETE), in that order (d_delete_notify()).
void NotifyRemoved(const Dentry& dir, std::string_view name, const Dentry& child, uint32_t isdir) {
  if (!isdir) FsnotifyInode(*child.inode(), IN_ATTRIB);
  if (isdir || LastLinkGone(child)) FsnotifyDeleted(*child.inode());
  FsnotifyDir(dir, IN_DELETE | isdir, name);
}

// Sticky directories: only the owner of the file or the directory (or root)
// (CAP_FOWNER) may remove or rename an entry (check_sticky() in fs/namei.c).
Status CheckSticky(const ResolveContext& c, const DentryRef& dir, const DentryRef& victim) {
  if (c.creds.fowner) return {};
  SV_ASSIGN_OR_RETURN(struct stat dst, dir->inode()->Stat());
  if (!(dst.st_mode & S_ISVTX)) return {};
  SV_ASSIGN_OR_RETURN(struct stat vst, victim->inode()->Stat());
  if (vst.st_uid == c.creds.uid || dst.st_uid == c.creds.uid) return {};
  return Errno(EPERM);
}

// After `name` was made in `dir` by mkdir, mknod, symlink or link: a dentry
// that a lookup racing with it cached is of the new object and stays, as
// CreatedChild (vfs.cc) keeps one. Dropped, its holder (a cwd, an open
// directory) would be on a second dentry of the object, whose cached
// children go stale when names below change through the other. Any other
// is stale.
void KeepCreatedChild(Dentry& dir, std::string_view name) {
  DentryRef cached = dir.Cached(name);
  if (cached == nullptr) return;
  auto now = dir.inode()->Lookup(name);
  if (now.ok() && (*now)->LockKey() == cached->inode()->LockKey()) return;
  dir.Forget(name);
}

// may_linkat() (fs/namei.c) with fs.protected_hardlinks = 1, the default
// of Debian and most distributions: the owner of `src` (or a holder of
// CAP_FOWNER) may link it; anyone else only a "safe" source
// (safe_hardlink_source()): a regular file, not setuid, not setgid and
// group-executable, that the caller may read and write. Otherwise EPERM.
Status MayLink(const ResolveContext& c, const DentryRef& src) {
  if (c.creds.fowner) return {};
  SV_ASSIGN_OR_RETURN(struct stat st, src->inode()->Stat());
  if (st.st_uid == c.creds.uid) return {};
  if (!S_ISREG(st.st_mode) || (st.st_mode & S_ISUID) ||
      (st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) {
    return Errno(EPERM);
  }
  if (!NeedAccess(c, src, R_OK | W_OK).ok()) return Errno(EPERM);
  return {};
}

// Landlock's check of a rename or link (LandlockCheckRefer) of `src`, a
// child of `src_dir`, into `dst_dir`, where `dst` is what the new name
// holds (null: nothing).
Status LandlockRename(const ResolveContext& c, const DentryRef& src_dir, const DentryRef& src,
                      const DentryRef& dst_dir, const DentryRef& dst, bool removable,
                      bool exchange) {
  return LandlockCheckRefer(c.landlock.get(), src_dir, src, dst_dir, dst, removable, exchange);
}

}  // namespace

Status Vfs::Mkdir(const ResolveContext& c, std::string_view path, mode_t mode) {
  int links = 0;
  auto pn_result = WalkParent(c, c.start, path, links);
  if (!pn_result.ok()) return pn_result.error();
  Parent& pn = *pn_result;
  SV_TRY(MountWritable(pn.dir));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno(EEXIST);
  SV_TRY(NeedAccess(c, pn.dir, X_OK));
  if (pn.dir->Child(pn.name).ok()) return Errno(EEXIST);
  // security_path_mkdir() comes before vfs_mkdir()'s permission check.
  SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, kLandlockAccessFsMakeDir));
  SV_TRY(NeedAccess(c, pn.dir, W_OK));
  SV_TRY(pn.dir->inode()->Mkdir(pn.name, mode & ~c.umask & 07777, c.creds));
  KeepCreatedChild(*pn.dir, pn.name);
  FsnotifyDir(*pn.dir, IN_CREATE | IN_ISDIR, pn.name);
  return {};
}

Status Vfs::Mknod(const ResolveContext& c, std::string_view path, mode_t mode, dev_t dev) {
  int links = 0;
  auto pn_result = WalkParent(c, c.start, path, links);
  if (!pn_result.ok()) return pn_result.error();
  Parent& pn = *pn_result;
  SV_TRY(MountWritable(pn.dir));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno(EEXIST);
  if (pn.trailing_slash) return Errno(ENOENT);
  SV_TRY(NeedAccess(c, pn.dir, X_OK));
  if (pn.dir->Child(pn.name).ok()) return Errno(EEXIST);
  SV_TRY(NeedAccess(c, pn.dir, W_OK));
  mode_t type = mode & S_IFMT;
  if (type == S_IFDIR) return Errno(EPERM);
  SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, LandlockMakeAccess(type)));
  SV_TRY(pn.dir->inode()->Mknod(pn.name, type | (mode & ~c.umask & 07777), dev, c.creds));
  KeepCreatedChild(*pn.dir, pn.name);
  FsnotifyDir(*pn.dir, IN_CREATE, pn.name);
  return {};
}

Status Vfs::Unlink(const ResolveContext& c, std::string_view path) {
  int links = 0;
  auto pn_result = WalkParent(c, c.start, path, links);
  if (!pn_result.ok()) return pn_result.error();
  Parent& pn = *pn_result;
  SV_TRY(MountWritable(pn.dir));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno(EISDIR);
  SV_TRY(NeedAccess(c, pn.dir, X_OK));
  SV_ASSIGN_OR_RETURN(DentryRef child, pn.dir->Child(pn.name));
  const auto removal = RemovalLock();  // to DetachMountsAt
  if (IsLocalMountPoint(c.ns.get(), *child)) return Errno(EBUSY);
  if (IsDir(child)) return Errno(EISDIR);
  if (pn.trailing_slash) return Errno(ENOTDIR);
  SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, kLandlockAccessFsRemoveFile));
  SV_TRY(NeedAccess(c, pn.dir, W_OK));
  SV_TRY(CheckSticky(c, pn.dir, child));
  const std::vector<MountPlace> places = MountPlacesOf(*child);
  SV_TRY(pn.dir->inode()->Unlink(pn.name));
  child->MarkDeleted();
  pn.dir->Forget(pn.name);
  NotifyRemoved(*pn.dir, pn.name, *child, 0);
  DetachMountsAt(places);
  return {};
}

Status Vfs::Rmdir(const ResolveContext& c, std::string_view path) {
  int links = 0;
  auto pn_result = WalkParent(c, c.start, path, links);
  if (!pn_result.ok()) return pn_result.error();
  Parent& pn = *pn_result;
  SV_TRY(MountWritable(pn.dir));
  if (pn.name.empty()) return Errno(EBUSY);
  if (pn.name == ".") return Errno(EINVAL);
  if (pn.name == "..") return Errno(ENOTEMPTY);
  SV_TRY(NeedAccess(c, pn.dir, X_OK));
  SV_ASSIGN_OR_RETURN(DentryRef child, pn.dir->Child(pn.name));
  if (!IsDir(child)) return Errno(ENOTDIR);
  const auto removal = RemovalLock();  // to DetachMountsAt
  if (child == c.root || IsLocalMountPoint(c.ns.get(), *child)) return Errno(EBUSY);
  SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, kLandlockAccessFsRemoveDir));
  SV_TRY(NeedAccess(c, pn.dir, W_OK));
  SV_TRY(CheckSticky(c, pn.dir, child));
  const std::vector<MountPlace> places = MountPlacesOf(*child);
  SV_TRY(pn.dir->inode()->Rmdir(pn.name));
  child->MarkDeleted();
  pn.dir->Forget(pn.name);
  NotifyRemoved(*pn.dir, pn.name, *child, IN_ISDIR);
  DetachMountsAt(places);
  return {};
}

Status Vfs::Rename(const ResolveContext& oldc, std::string_view oldpath,
                   const ResolveContext& newc, std::string_view newpath, unsigned flags) {
  if ((flags & RENAME_EXCHANGE) && (flags & RENAME_NOREPLACE)) return Errno(EINVAL);
  int links = 0;
  auto op_result = WalkParent(oldc, oldc.start, oldpath, links);
  if (!op_result.ok()) return op_result.error();
  Parent& op = *op_result;
  SV_TRY(MountWritable(op.dir));
  links = 0;
  auto np_result = WalkParent(newc, newc.start, newpath, links);
  if (!np_result.ok()) return np_result.error();
  Parent& np = *np_result;
  SV_TRY(MountWritable(np.dir));
  auto special = [](const std::string& n) { return n.empty() || n == "." || n == ".."; };
  if (special(op.name) || special(np.name)) return Errno(EBUSY);
  SV_TRY(NeedAccess(oldc, op.dir, X_OK));
  SV_TRY(NeedAccess(newc, np.dir, X_OK));
  SV_ASSIGN_OR_RETURN(DentryRef src, op.dir->Child(op.name));
  const auto removal = RemovalLock();  // to MoveMountPoints
  if (IsLocalMountPoint(oldc.ns.get(), *src)) return Errno(EBUSY);
  bool src_dir = IsDir(src);
  if ((op.trailing_slash || np.trailing_slash) && !src_dir) return Errno(ENOTDIR);
  if (op.dir->mount() != np.dir->mount() ||
      op.dir->inode()->FsId() != np.dir->inode()->FsId()) {
    return Errno(EXDEV);
  }
  auto dst = np.dir->Child(np.name);
  if (dst.ok()) {
    // Before anything else about the target, even whether it is the
    // source (do_renameat2()).
    if (flags & RENAME_NOREPLACE) return Errno(EEXIST);
    if (IsLocalMountPoint(newc.ns.get(), **dst)) return Errno(EBUSY);
    if (*dst == src) return {};  // the same object: nothing to do
  } else if (dst.error() != Errno(ENOENT)) {
    return dst.error();
  }
  // A directory cannot move below itself (EINVAL); the target's parent may not
  // be the source (lock_rename()/d_ancestor() in fs/namei.c).
  if (src_dir) {
    for (const Dentry* a = np.dir.get(); a; a = a->parent().get()) {
      if (a == src.get()) return Errno(EINVAL);
    }
  }
  // security_path_rename(): the source is `src` in op.dir (a lookup
  // through a bind may give a dentry whose parent is another copy).
  SV_TRY(LandlockRename(oldc, op.dir, src, np.dir, dst.ok() ? *dst : nullptr, true,
                        (flags & RENAME_EXCHANGE) != 0));
  SV_TRY(NeedAccess(oldc, op.dir, W_OK));
  SV_TRY(NeedAccess(newc, np.dir, W_OK));
  SV_TRY(CheckSticky(oldc, op.dir, src));
  if (dst.ok()) SV_TRY(CheckSticky(newc, np.dir, *dst));
  std::vector<MountPlace> places;
  if (dst.ok() && !(flags & RENAME_EXCHANGE)) places = MountPlacesOf(**dst);
  SV_TRY(op.dir->inode()->Rename(op.name, *np.dir->inode(), np.name, flags));
  op.dir->Forget(op.name);
  np.dir->Forget(np.name);
  if (dst.ok() && !(flags & RENAME_EXCHANGE)) (*dst)->MarkDeleted();
  // fsnotify_move(): the pair shares a cookie; the object moved itself.
  uint32_t cookie = FsnotifyCookie();
  uint32_t isdir = src_dir ? IN_ISDIR : 0;
  FsnotifyDir(*op.dir, IN_MOVED_FROM | isdir, op.name, cookie);
  FsnotifyDir(*np.dir, IN_MOVED_TO | isdir, np.name, cookie);
  FsnotifyInode(*src->inode(), IN_MOVE_SELF);
  if (dst.ok() && !(flags & RENAME_EXCHANGE) && LastLinkGone(**dst)) {
    FsnotifyDeleted(*(*dst)->inode());
  }
  DetachMountsAt(places);
  if (src_dir) MoveMountPoints(*src, np.dir, np.name);
  if ((flags & RENAME_EXCHANGE) && IsDir(*dst)) MoveMountPoints(**dst, op.dir, op.name);
  return {};
}

Status Vfs::Link(const ResolveContext& oldc, std::string_view oldpath, const ResolveContext& newc,
                 std::string_view newpath, bool follow) {
  int links = 0;
  SV_ASSIGN_OR_RETURN(DentryRef src, Walk(oldc, oldc.start, oldpath, follow, links));
  return LinkDentry(oldc, src, newc, newpath);
}

Status Vfs::LinkDentry(const ResolveContext& oldc, const DentryRef& src, const ResolveContext& newc,
                       std::string_view newpath) {
  if (IsDir(src)) return Errno(EPERM);
  int links = 0;
  auto np_result = WalkParent(newc, newc.start, newpath, links);
  if (!np_result.ok()) return np_result.error();
  Parent& np = *np_result;
  SV_TRY(MountWritable(np.dir));
  if (np.name.empty() || np.name == "." || np.name == "..") return Errno(EEXIST);
  if (np.trailing_slash) return Errno(ENOENT);
  SV_TRY(NeedAccess(newc, np.dir, X_OK));
  if (np.dir->Child(np.name).ok()) return Errno(EEXIST);
  if (src->mount() != np.dir->mount()) return Errno(EXDEV);
  SV_TRY(MayLink(oldc, src));  // do_linkat(): before vfs_link()'s checks
  SV_TRY(LandlockRename(newc, src->IsMountRoot() ? src : src->parent(), src, np.dir, nullptr,
                        false, false));
  SV_TRY(NeedAccess(newc, np.dir, W_OK));
  SV_TRY(np.dir->inode()->Link(np.name, src->inode()));
  KeepCreatedChild(*np.dir, np.name);
  FsnotifyInode(*src->inode(), IN_ATTRIB);  // fsnotify_link_count()
  FsnotifyDir(*np.dir, IN_CREATE, np.name);
  return {};
}

Status Vfs::Symlink(const ResolveContext& c, std::string_view target, std::string_view linkpath) {
  if (target.empty()) return Errno(ENOENT);
  if (target.size() >= kPathMax) return Errno(ENAMETOOLONG);
  int links = 0;
  auto pn_result = WalkParent(c, c.start, linkpath, links);
  if (!pn_result.ok()) return pn_result.error();
  Parent& pn = *pn_result;
  SV_TRY(MountWritable(pn.dir));
  if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno(EEXIST);
  SV_TRY(NeedAccess(c, pn.dir, X_OK));
  if (pn.dir->Child(pn.name).ok()) return Errno(EEXIST);
  if (pn.trailing_slash) return Errno(ENOENT);
  SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, kLandlockAccessFsMakeSym));
  SV_TRY(NeedAccess(c, pn.dir, W_OK));
  SV_TRY(pn.dir->inode()->Symlink(pn.name, target, c.creds));
  KeepCreatedChild(*pn.dir, pn.name);
  FsnotifyDir(*pn.dir, IN_CREATE, pn.name);
  return {};
}

}  // namespace seedvisor::sentry
