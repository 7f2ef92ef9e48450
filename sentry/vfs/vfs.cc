// Path resolution and opening (namei.c's job in Linux); the operations
// that make and remove names are in vfs_dirops.cc.
#include "sentry/vfs/vfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "absl/strings/str_cat.h"
#include "sentry/fs/dev/dev.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/host/host_rw.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/pipe/pipe.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/inode_flags.h"
#include "sentry/vfs/lease_time.h"
#include "sentry/vfs/write_access.h"

namespace seedvisor::sentry {

namespace {

constexpr int kMaxSymlinks = 40;  // MAXSYMLINKS
constexpr size_t kNameMax = 255;
constexpr size_t kPathMax = 4096;

thread_local Task* g_current_task = nullptr;

bool IsDir(const DentryRef& d) { return d->inode()->Type() == S_IFDIR; }

// A device node that a guest made (mknod on tmpfs, or on an overlay's
// tmpfs upper layer): only a name with a number, no device behind it.
bool IsGuestDeviceNode(Inode& inode) {
  if (dynamic_cast<TmpfsInode*>(&inode) != nullptr) return true;
  auto* o = dynamic_cast<OverlayInode*>(&inode);
  return o != nullptr && o->upper() != nullptr;
}

// Opens what a guest-made device node names: the sentry's own device of
// that type and number, as the sandbox's /dev has it (null 1:3, zero 1:5,
// full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1), or ENXIO, as
// Linux answers for a number no driver has (chrdev_open(), blkdev_open()).
// Never a host device: a guest root's mknod of the host's disk (8:0) opens
// nothing. The file is opened on the node's own dentry, so fstat shows the
// node.
Result<FileRef> OpenGuestDeviceNode(const DentryRef& d, mode_t type, dev_t rdev, int flags) {
  static const InodeRef* const devices = new InodeRef(NewDevFs());
  SV_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, (*devices)->ReadDir());
  for (const DirEntry& e : entries) {
    if (e.type != (type == S_IFCHR ? DT_CHR : DT_BLK)) continue;
    auto dev = (*devices)->Lookup(e.name);
    if (!dev.ok()) continue;
    auto st = (*dev)->Stat();
    if (st.ok() && (st->st_mode & S_IFMT) == type && st->st_rdev == rdev) {
      return (*dev)->Open(d, flags);
    }
  }
  return Errno(ENXIO);
}

// hook_file_open() (security/landlock/fs.c): reading a directory needs
// READ_DIR, reading a file READ_FILE, writing WRITE_FILE (access mode 3
// asks for neither); TRUNCATE is asked too but only kept in the file
// (`truncate_denied`), for O_TRUNC and ftruncate(2). EACCES if the domain
// does not allow the rest. A /proc/PID/fd link to a file without a path
// (a pipe) reopens an object of an internal mount, which Landlock allows.
Status LandlockOpen(const ResolveContext& c, const DentryRef& d, mode_t mode, int flags,
                    bool& truncate_denied) {
  if (c.landlock == nullptr || d->inode()->ReopensFile()) return {};
  int acc = flags & O_ACCMODE;
  uint64_t need = 0;
  if (acc == O_RDONLY || acc == O_RDWR) {
    need = S_ISDIR(mode) ? kLandlockAccessFsReadDir : kLandlockAccessFsReadFile;
  }
  if (!S_ISDIR(mode) && (acc == O_WRONLY || acc == O_RDWR)) need |= kLandlockAccessFsWriteFile;
  uint64_t ask = need | (S_ISDIR(mode) ? 0 : kLandlockAccessFsTruncate);
  uint64_t allowed = LandlockAllowed(c.landlock.get(), d, ask);
  if ((allowed & need) != need) return Errno(EACCES);
  truncate_denied = !S_ISDIR(mode) && !(allowed & kLandlockAccessFsTruncate);
  return {};
}

}  // namespace

Task* CurrentTask() { return g_current_task; }
void SetCurrentTask(Task* t) { g_current_task = t; }
CurrentTaskScope::CurrentTaskScope(Task* t) : prev_(g_current_task) { g_current_task = t; }
CurrentTaskScope::~CurrentTaskScope() { g_current_task = prev_; }

Vfs::~Vfs() = default;

absl::StatusOr<std::unique_ptr<Vfs>> Vfs::CreateWithoutKernel(const VfsOptions& o) {
  return Build(nullptr, o);
}

absl::StatusOr<std::unique_ptr<Vfs>> Vfs::Build(Kernel* k, const VfsOptions& o) {
  auto host = NewHostFs(o.host_root);
  if (!host.ok()) return host.status();
  std::unique_ptr<Vfs> vfs(new Vfs(k));
  auto overlay = NewOverlay(NewTmpfs(0755), *host);
  vfs->init_ns_ = std::make_shared<MountNamespace>(kInitMountNsIno, vfs->mount_point_names_);
  vfs->init_ns_->root_mount_ = std::make_shared<Mount>("overlay", "overlay", "rw,relatime", overlay);
  vfs->init_ns_->mounts_.push_back(vfs->init_ns_->root_mount_);
  vfs->namespaces_.push_back(vfs->init_ns_);
  absl::Status s =
      vfs->MountAt("/dev", std::make_shared<Mount>("tmpfs", "none", "rw,nosuid", NewDevFs()));
  if (!s.ok()) return s;
  s = vfs->MountAt("/dev/shm", std::make_shared<Mount>("tmpfs", "none", "rw,nosuid,nodev",
                                                       NewTmpfs(01777)));
  if (!s.ok()) return s;
  // Without a kernel there is no /proc to mount: the root is final now.
  if (k == nullptr && o.read_only_root) vfs->init_ns_->root_mount_->set_read_only();
  return vfs;
}

std::shared_ptr<FsContext> Vfs::NewFsContext() {
  return std::make_shared<FsContext>(root(), root(), 022, init_ns_);
}

Status NeedAccess(const ResolveContext& c, const DentryRef& d, int mask) {
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  Status s = CheckAccess(c.creds, st, mask);
  if (!s.ok() && d->inode()->ExtraAccess(mask)) return {};
  return s;
}

Status MountWritable(const DentryRef& d) {
  if (d && d->mount() && d->mount()->writes_refused()) return Errno(EROFS);
  return {};
}

DentryRef Vfs::CrossMounts(const MountNamespace* ns, DentryRef d) const {
  while (Mount* m = MountedAt(d.get(), ns)) d = m->root();
  return d;
}

Result<DentryRef> Vfs::Step(const ResolveContext& c, const DentryRef& cur, std::string_view name) {
  if (name == ".") return cur;
  if (name == "..") {
    DentryRef d = cur;
    // follow_dotdot(): never above the caller's root; at a mount's root, go
    // to the mount point first.
    for (;;) {
      if (d == c.root) return d;
      if (d->IsMountRoot()) {
        if (!d->mount()) return d;
        // One read: pivot_root may clear it meanwhile (f364f3b).
        DentryRef mountpoint = d->mount()->mountpoint();
        if (!mountpoint) return d;
        d = std::move(mountpoint);
        continue;
      }
      break;
    }
    return CrossMounts(c.ns.get(), d->parent());
  }
  if (name.size() > kNameMax) return Errno(ENAMETOOLONG);
  SV_ASSIGN_OR_RETURN(DentryRef child, cur->Child(name));
  return CrossMounts(c.ns.get(), std::move(child));
}

Result<DentryRef> Vfs::Walk(const ResolveContext& c, DentryRef start, std::string_view path,
                            bool follow, int& links) {
  if (path.empty()) return Errno(ENOENT);
  if (path.size() >= kPathMax) return Errno(ENAMETOOLONG);
  DentryRef cur = path[0] == '/' ? c.root : std::move(start);
  bool trailing_slash = path.back() == '/';
  size_t pos = 0;
  while (pos < path.size()) {
    while (pos < path.size() && path[pos] == '/') ++pos;
    if (pos >= path.size()) break;
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(pos, end - pos);
    pos = end;
    size_t rest = pos;
    while (rest < path.size() && path[rest] == '/') ++rest;
    bool last = rest >= path.size();

    if (!IsDir(cur)) return Errno(ENOTDIR);
    SV_TRY(NeedAccess(c, cur, X_OK));
    SV_ASSIGN_OR_RETURN(DentryRef next, Step(c, cur, comp));
    if (next->inode()->Type() == S_IFLNK && (!last || follow || trailing_slash)) {
      if (++links > kMaxSymlinks) return Errno(ELOOP);
      if (DentryRef magic = next->inode()->MagicTarget()) {
        next = std::move(magic);
      } else {
        SV_ASSIGN_OR_RETURN(std::string target, next->inode()->Readlink());
        if (target.empty()) return Errno(ENOENT);
        SV_ASSIGN_OR_RETURN(next, Walk(c, cur, target, true, links));
      }
    }
    cur = std::move(next);
  }
  if (trailing_slash && !IsDir(cur)) return Errno(ENOTDIR);
  return cur;
}

// Callers keep WalkParent's Result and bind a reference to its Parent
// rather than SV_ASSIGN_OR_RETURN it: moving the Parent (its std::string)
// out of the Result's std::variant makes gcc 12 at -O2 warn that the name
// "may be used uninitialized" (a false positive), and -Werror fails the
// optimized (-c opt) build on it.
Result<Vfs::Parent> Vfs::WalkParent(const ResolveContext& c, DentryRef start,
                                    std::string_view path, int& links) {
  if (path.empty()) return Errno(ENOENT);
  if (path.size() >= kPathMax) return Errno(ENAMETOOLONG);
  Parent p;
  size_t end = path.size();
  while (end > 0 && path[end - 1] == '/') --end;
  p.trailing_slash = end < path.size();
  if (end == 0) {  // "/" or "///"
    p.dir = c.root;
    return p;
  }
  size_t slash = path.rfind('/', end - 1);
  std::string_view dirpart;
  std::string_view name;
  if (slash == std::string_view::npos) {
    name = path.substr(0, end);
    p.dir = std::move(start);
  } else {
    name = path.substr(slash + 1, end - slash - 1);
    dirpart = path.substr(0, slash + 1);
    SV_ASSIGN_OR_RETURN(p.dir, Walk(c, start, dirpart, true, links));
  }
  if (!IsDir(p.dir)) return Errno(ENOTDIR);
  if (name.size() > kNameMax) return Errno(ENAMETOOLONG);
  p.name = std::string(name);
  return p;
}

Result<DentryRef> Vfs::Resolve(const ResolveContext& c, std::string_view path, bool follow) {
  int links = 0;
  return Walk(c, c.start, path, follow, links);
}

Result<FileRef> Vfs::Open(const ResolveContext& c, std::string_view path, int flags,
                          mode_t mode) {
  // A walk that ended in a mount which a umount2 took away meanwhile (its
  // busy check saw no hold of the walk's) starts again: the name is then
  // looked up where the mount was. Nothing is created or truncated on
  // such a mount (OpenOnce checks before it changes anything), and a file
  // opened there is let go. Each retry needs another unmount to land in
  // its walk; after a few the open fails as a walk whose name went away
  // (ENOENT) rather than return a file of a mount umount2 called idle.
  for (int attempt = 0; attempt < 4; ++attempt) {
    bool stale = false;
    Result<FileRef> f = OpenOnce(c, path, flags, mode, stale);
    if (stale) continue;
    if (!f.ok() || (*f)->dentry() == nullptr || HeldMountLive((*f)->dentry()->mount())) return f;
  }
  return Errno(ENOENT);
}

namespace {

// The dentry of `name`, just created in `dir` as `made`. A lookup that raced
// with the create may have cached a dentry of it already: keep that one, or
// the file would have two (and in the overlay two Inode objects, one per
// lookup). Any other cached one is stale (a lookup of a removed object that
// finished after its removal) and goes.
Result<DentryRef> CreatedChild(Dentry& dir, std::string_view name, Inode& made) {
  SV_ASSIGN_OR_RETURN(DentryRef d, dir.Child(name));
  if (d->inode()->LockKey() == made.LockKey()) return d;
  dir.Forget(name);
  return dir.Child(name);
}

}  // namespace

Result<FileRef> Vfs::OpenOnce(const ResolveContext& c, std::string_view path, int flags,
                              mode_t mode, bool& stale) {
  if (flags & O_PATH) flags &= O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW;
  // The kernel's __O_TMPFILE bit alone: glibc's __O_TMPFILE includes
  // O_DIRECTORY, which every directory open sets.
  constexpr int kTmpfileBit = O_TMPFILE & ~O_DIRECTORY;
  if (flags & kTmpfileBit) {
    // build_open_flags(): O_TMPFILE is __O_TMPFILE with O_DIRECTORY and
    // without O_CREAT, and it writes.
    if ((flags & (O_TMPFILE | O_CREAT)) != O_TMPFILE) return Errno(EINVAL);
    if ((flags & O_ACCMODE) == O_RDONLY) return Errno(EINVAL);
    return OpenTmpFile(c, path, flags, mode, stale);
  }
  int links = 0;
  DentryRef d;
  bool created = false;
  int create_races = 0;
  MountHold parent_hold;
  if (flags & O_CREAT) {
    DentryRef start = c.start;
    std::string p(path);
    for (;;) {
      auto pn_result = WalkParent(c, start, p, links);
      if (!pn_result.ok()) return pn_result.error();
      Parent& pn = *pn_result;
      if (pn.name.empty() || pn.name == "." || pn.name == "..") return Errno(EISDIR);
      SV_TRY(NeedAccess(c, pn.dir, X_OK));
      auto child = Step(c, pn.dir, pn.name);
      if (child.ok()) {
        if (flags & O_EXCL) return Errno(EEXIST);
        if ((*child)->inode()->Type() == S_IFLNK) {
          if (flags & O_NOFOLLOW) return Errno(ELOOP);
          if (++links > kMaxSymlinks) return Errno(ELOOP);
          if (DentryRef magic = (*child)->inode()->MagicTarget()) {
            d = std::move(magic);  // /proc/PID/fd/N names a file, not a path
            break;
          }
          SV_ASSIGN_OR_RETURN(p, (*child)->inode()->Readlink());
          start = pn.dir;
          continue;  // open(2) with O_CREAT creates a dangling symlink's target
        }
        d = *child;
        if (pn.trailing_slash && !IsDir(d)) return Errno(ENOTDIR);
        break;
      }
      if (child.error() != Errno(ENOENT)) return child.error();
      if (pn.trailing_slash) return Errno(EISDIR);
      SV_TRY(NeedAccess(c, pn.dir, W_OK | X_OK));
      if (pn.dir->inode()->ReadOnlyFs()) return Errno(EROFS);
      SV_TRY(MountWritable(pn.dir));
      // lookup_open()'s security_path_mknod(): Landlock's MAKE_REG.
      SV_TRY(LandlockCheckPath(c.landlock.get(), pn.dir, kLandlockAccessFsMakeReg));
      // The directory's mount is held from here until the new file holds
      // it: a umount2 now is EBUSY, and one that came first is seen.
      parent_hold = MountHold(pn.dir->mount(), false);
      if (!HeldMountLive(pn.dir->mount())) {
        stale = true;
        return Errno(ENOENT);
      }
      auto made = pn.dir->inode()->Create(pn.name, mode & ~c.umask & 07777, c.creds);
      if (!made.ok()) {
        // Another opener created the name since our lookup: open theirs, as
        // lookup_open() does; only O_EXCL makes that EEXIST (SQLite's
        // processes open "db-wal" and "db-shm" with O_CREAT at once).
        if (made.error() == Errno(EEXIST) && !(flags & O_EXCL) && ++create_races < 100) {
          continue;
        }
        return made.error();
      }
      FsnotifyDir(*pn.dir, IN_CREATE, pn.name);
      SV_ASSIGN_OR_RETURN(d, CreatedChild(*pn.dir, pn.name, **made));
      created = true;
      break;
    }
  } else {
    SV_ASSIGN_OR_RETURN(d, Walk(c, c.start, path, !(flags & O_NOFOLLOW), links));
  }
  return OpenDentry(c, d, flags, created, stale);
}

unsigned InodeFsFlags(Inode& inode) {
  if (auto* t = dynamic_cast<TmpfsInode*>(&inode)) return t->FsFlags();
  if (auto* o = dynamic_cast<OverlayInode*>(&inode)) return o->FsFlags();
  return 0;
}

Result<FileRef> Vfs::OpenTmpFile(const ResolveContext& c, std::string_view path, int flags,
                                 mode_t mode, bool& stale) {
  int links = 0;
  // do_tmpfile(): the directory (LOOKUP_DIRECTORY), write access to its
  // mount, then vfs_tmpfile()'s permission and the filesystem's support.
  SV_ASSIGN_OR_RETURN(DentryRef dir, Walk(c, c.start, path, !(flags & O_NOFOLLOW), links));
  if (!IsDir(dir)) return Errno(ENOTDIR);
  if (dir->inode()->ReadOnlyFs()) return Errno(EROFS);
  SV_TRY(MountWritable(dir));
  SV_TRY(NeedAccess(c, dir, W_OK | X_OK));
  // The directory's mount is held until the new file holds it (as
  // OpenOnce's create).
  MountHold dir_hold(dir->mount(), false);
  if (!HeldMountLive(dir->mount())) {
    stale = true;
    return Errno(ENOENT);
  }
  const mode_t perm = mode & ~c.umask & 07777;
  const bool linkable = !(flags & O_EXCL);  // I_LINKABLE
  InodeRef made;
  if (auto* t = dynamic_cast<TmpfsInode*>(dir->inode().get())) {
    SV_ASSIGN_OR_RETURN(made, t->NewTmpFile(perm, c.creds, linkable));
  } else if (auto* o = dynamic_cast<OverlayInode*>(dir->inode().get())) {
    SV_ASSIGN_OR_RETURN(made, o->NewTmpFile(perm, c.creds, linkable));
  } else if (auto* h = dynamic_cast<HostRwInode*>(dir->inode().get())) {
    SV_ASSIGN_OR_RETURN(made, h->NewTmpFile(perm, c.creds, linkable));  // a writable volume
  } else {
    return Errno(EOPNOTSUPP);  // no ->tmpfile (the read-only host root, /proc)
  }
  SV_ASSIGN_OR_RETURN(struct stat st, made->Stat());
  // d_tmpfile(): "#<ino>" in the directory, unhashed, as /proc/PID/fd
  // shows it ("/dir/#123 (deleted)").
  auto d = std::make_shared<Dentry>(absl::StrCat("#", st.st_ino), dir, made, dir->mount());
  d->MarkDeleted();
  // Opened as a file just made (no permission check). O_DIRECTORY and
  // __O_TMPFILE said what to make; F_GETFL does not show them here.
  return OpenDentry(c, d, flags & ~(O_TMPFILE | O_EXCL), /*created=*/true, stale);
}

Result<FileRef> Vfs::OpenDentry(const ResolveContext& c, const DentryRef& d, int flags,
                                bool created, bool& stale) {
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  // The file's mount hold asks it: a FIFO or device node open for writing
  // is no writer of its filesystem (FMODE_WRITER).
  d->inode()->NoteType(st.st_mode);
  if (flags & O_PATH) {
    if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
    return std::make_shared<FileDescription>(flags, d);
  }
  if (S_ISLNK(st.st_mode)) return Errno(ELOOP);  // O_NOFOLLOW on a symlink
  if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
  // Access mode 3 asks for read and write permission and gives neither
  // (ACC_MODE(), OPEN_FMODE()): an fd for ioctls only.
  int acc = flags & O_ACCMODE;
  // may_open(): a directory is EISDIR for anything that may write it,
  // O_TRUNC included (build_open_flags() adds MAY_WRITE for it).
  if (S_ISDIR(st.st_mode) && (acc != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))) {
    return Errno(EISDIR);
  }
  // inode_permission(): nobody writes an immutable object (EPERM, before
  // the permission bits); may_open(): an append-only file opens for
  // writing only to append, and is never truncated.
  const unsigned iflags = InodeFsFlags(*d->inode());
  if ((iflags & TmpfsInode::kImmutableFl) && (acc != O_RDONLY || (flags & O_TRUNC))) {
    return Errno(EPERM);
  }
  if (!created) {
    int mask = 0;
    if (acc != O_WRONLY) mask |= R_OK;
    if (acc != O_RDONLY || (flags & O_TRUNC)) mask |= W_OK;
    if (Status a = CheckAccess(c.creds, st, mask); !a.ok() && !d->inode()->ExtraAccess(mask)) {
      return a.error();
    }
  }
  if ((iflags & TmpfsInode::kAppendFl) &&
      ((acc != O_RDONLY && !(flags & O_APPEND)) || (flags & O_TRUNC))) {
    return Errno(EPERM);
  }
  // may_open(): O_NOATIME is for the file's owner or CAP_FOWNER only.
  if ((flags & O_NOATIME) && c.creds.uid != st.st_uid && !c.creds.fowner) return Errno(EPERM);
  // do_dentry_open(): O_DIRECT needs FMODE_CAN_ODIRECT, which no directory has.
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECT)) return Errno(EINVAL);
  bool truncate = (flags & O_TRUNC) && S_ISREG(st.st_mode) && acc != O_RDONLY && !created;
  if ((acc != O_RDONLY || truncate) && d->inode()->ReadOnlyFs() && S_ISREG(st.st_mode)) {
    return Errno(EROFS);
  }
  // do_open(): O_TRUNC takes write access to the mount even with O_RDONLY.
  if ((acc != O_RDONLY || (flags & O_TRUNC)) && S_ISREG(st.st_mode)) SV_TRY(MountWritable(d));
  // do_dentry_open()'s get_write_access(), before its security_file_open()
  // and before handle_truncate(): no regular file that a process runs or
  // an execve(2) loads is opened for writing (ETXTBSY). The new file holds
  // it until its last close.
  WriteAccess writer;
  if (S_ISREG(st.st_mode) && (acc == O_WRONLY || acc == O_RDWR)) {
    SV_ASSIGN_OR_RETURN(writer, WriteAccess::Get(d->inode()->LockKey()));
  }
  bool truncate_denied = false;
  SV_TRY(LandlockOpen(c, d, st.st_mode, flags, truncate_denied));
  // handle_truncate()'s security_file_truncate().
  if (truncate && truncate_denied) return Errno(EACCES);
  if (S_ISFIFO(st.st_mode) && !d->inode()->ReopensFile()) {
    SV_ASSIGN_OR_RETURN(FileRef f, OpenFifo(c.task, d, st.st_ino, flags));
    if (truncate_denied) f->set_landlock_truncate_denied();
    FsnotifyFile(*f, IN_OPEN);
    return f;
  }
  // may_open_dev(): no device opens through a nodev mount. A /proc/PID/fd
  // link reopens its file, whose mount is not /proc's (path_get of the
  // link's target in Linux).
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && !d->inode()->ReopensFile() &&
      (d->mount()->StatFsFlags() & ST_NODEV)) {
    return Errno(EACCES);
  }
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && IsGuestDeviceNode(*d->inode())) {
    SV_ASSIGN_OR_RETURN(FileRef f, OpenGuestDeviceNode(d, st.st_mode & S_IFMT, st.st_rdev, flags));
    if (truncate_denied) f->set_landlock_truncate_denied();
    FsnotifyFile(*f, IN_OPEN);
    return f;
  }
  SV_ASSIGN_OR_RETURN(FileRef f, d->inode()->Open(d, flags));
  WriteAccess::HoldUntilRelease(*f, std::move(writer));
  if (truncate_denied) f->set_landlock_truncate_denied();
  // do_dentry_open()'s break_lease(), before handle_truncate(): with
  // O_NONBLOCK EWOULDBLOCK, and nothing truncated.
  if (c.task != nullptr) SV_TRY(BreakLeasesForOpen(*c.task, *f, flags, truncate));
  // The file holds its mount now; truncate only if that mount is live.
  if (truncate && !HeldMountLive(d->mount())) {
    stale = true;
    return Errno(ENOENT);
  }
  if (truncate && st.st_size != 0) {
    SetAttrRequest r;
    r.size = 0;
    SV_TRY(d->inode()->SetAttr(r));
    FsnotifyDentry(*d, IN_MODIFY);
  }
  FsnotifyFile(*f, IN_OPEN);
  return f;
}

Result<std::string> Vfs::Readlink(const ResolveContext& c, std::string_view path) {
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(c, path, false));
  return d->inode()->Readlink();
}

}  // namespace seedvisor::sentry
