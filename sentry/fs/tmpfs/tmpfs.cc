// tmpfs (tmpfs.h): the inodes, their directory operations and attributes.
// A regular file's data is in tmpfs_memfd.cc, its open file in
// tmpfs_file.cc.
#include "sentry/fs/tmpfs/tmpfs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class TmpfsFs {
 public:
  TmpfsFs() {
    static std::atomic<dev_t> next_dev{0x100};
    dev_ = next_dev.fetch_add(1);
  }
  uint64_t NextIno() { return next_ino_.fetch_add(1); }
  dev_t dev() const { return dev_; }

 private:
  dev_t dev_;
  std::atomic<uint64_t> next_ino_{1};
};

namespace {

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return Errno(EINVAL);
  if (name.size() > 255) return Errno(ENAMETOOLONG);
  return {};
}

}  // namespace

static_assert(TmpfsInode::kImmutableFl == FS_IMMUTABLE_FL && TmpfsInode::kAppendFl == FS_APPEND_FL &&
              TmpfsInode::kNodumpFl == FS_NODUMP_FL && TmpfsInode::kNoatimeFl == FS_NOATIME_FL);

std::shared_ptr<TmpfsInode> NewTmpfs(mode_t mode, uid_t uid, gid_t gid) {
  auto fs = std::make_shared<TmpfsFs>();
  return std::make_shared<TmpfsInode>(fs, S_IFDIR | (mode & 07777), uid, gid);
}

TmpfsInode::TmpfsInode(std::shared_ptr<TmpfsFs> fs, mode_t mode, uid_t uid, gid_t gid)
    : fs_(std::move(fs)) {
  st_.st_dev = fs_->dev();
  st_.st_ino = fs_->NextIno();
  st_.st_mode = mode;
  st_.st_uid = uid;
  st_.st_gid = gid;
  st_.st_nlink = S_ISDIR(mode) ? 2 : 1;
  st_.st_blksize = 4096;
  st_.st_atim = st_.st_mtim = st_.st_ctim = Now();
}

TmpfsInode::~TmpfsInode() { CloseMemfd(); }

void TmpfsInode::Touch() {
  std::lock_guard l(mu_);
  st_.st_mtim = st_.st_ctim = Now();
}

Result<struct stat> TmpfsInode::Stat() {
  std::lock_guard l(mu_);
  struct stat st = st_;
  if (memfd_ >= 0) {
    struct stat hs;
    if (fstat(memfd_, &hs) == 0) {
      st.st_size = hs.st_size;
      st.st_blocks = hs.st_blocks;
    }
  } else if (S_ISLNK(st.st_mode)) {
    st.st_size = static_cast<off_t>(target_.size());
  } else if (S_ISDIR(st.st_mode)) {
    st.st_size = 4096;
  }
  return st;
}

unsigned TmpfsInode::FsFlags() {
  std::lock_guard l(mu_);
  return fs_flags_;
}

Status TmpfsInode::SetFsFlags(unsigned flags) {
  if (flags & ~kModifiableFlags) return Errno(EOPNOTSUPP);
  std::lock_guard l(mu_);
  fs_flags_ = flags;
  st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::CheckNotPinnedLocked() const {
  if (fs_flags_ & (kImmutableFl | kAppendFl)) return Errno(EPERM);
  return {};
}

Status TmpfsInode::CheckDirChangeLocked(bool removing) const {
  if (fs_flags_ & kImmutableFl) return Errno(EPERM);
  if (removing && (fs_flags_ & kAppendFl)) return Errno(EPERM);
  return {};
}

Result<std::shared_ptr<TmpfsInode>> TmpfsInode::LookupNode(std::string_view name) {
  std::lock_guard l(mu_);
  if (!IsDir()) return Errno(ENOTDIR);
  auto it = children_.find(name);
  if (it == children_.end()) return Errno(ENOENT);
  return it->second;
}

Result<std::shared_ptr<Inode>> TmpfsInode::Lookup(std::string_view name) {
  SV_ASSIGN_OR_RETURN(auto n, LookupNode(name));
  return std::shared_ptr<Inode>(std::move(n));
}

Result<std::vector<DirEntry>> TmpfsInode::ReadDir() {
  std::lock_guard l(mu_);
  if (!IsDir()) return Errno(ENOTDIR);
  std::vector<DirEntry> out;
  out.reserve(children_.size());
  for (auto& [name, child] : children_) {
    // A child's st_ino/st_mode never change after creation except the
    // permission bits, so reading them without its lock is only racy on bits
    // we do not use here.
    out.push_back({name, child->st_.st_ino, DirentType(child->st_.st_mode)});
  }
  return out;
}

Status TmpfsInode::CheckWritableDir() {
  if (!IsDir()) return Errno(ENOTDIR);
  if (st_.st_nlink == 0) return Errno(ENOENT);  // a removed directory
  return {};
}

std::shared_ptr<TmpfsInode> TmpfsInode::NewNodeLocked(mode_t mode, const FsCreds& c) {
  gid_t gid = c.gid;
  // BSD group semantics for setgid directories (inode_init_owner()).
  if (st_.st_mode & S_ISGID) {
    gid = st_.st_gid;
    if (S_ISDIR(mode)) mode |= S_ISGID;
  }
  return std::make_shared<TmpfsInode>(fs_, mode, c.uid, gid);
}

Result<std::shared_ptr<TmpfsInode>> TmpfsInode::NewTmpFile(mode_t mode, const FsCreds& c,
                                                           bool linkable) {
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  SV_TRY(CheckDirChangeLocked(false));
  auto f = NewNodeLocked(S_IFREG | (mode & 07777), c);
  // d_tmpfile(): nameless from the start; only this thread knows it yet.
  f->st_.st_nlink = 0;
  f->linkable_ = linkable;
  return f;
}

Result<std::shared_ptr<TmpfsInode>> TmpfsInode::NewChild(std::string_view name, mode_t mode,
                                                         const FsCreds& c) {
  SV_TRY(CheckName(name));
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  if (children_.count(name)) return Errno(EEXIST);
  SV_TRY(CheckDirChangeLocked(false));
  auto child = NewNodeLocked(mode, c);
  children_.emplace(std::string(name), child);
  whiteouts_.erase(std::string(name));
  if (S_ISDIR(mode)) st_.st_nlink++;
  st_.st_mtim = st_.st_ctim = Now();
  return child;
}

Result<std::shared_ptr<Inode>> TmpfsInode::Create(std::string_view name, mode_t mode,
                                                  const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(auto n, NewChild(name, S_IFREG | (mode & 07777), c));
  return std::shared_ptr<Inode>(std::move(n));
}

Status TmpfsInode::Mkdir(std::string_view name, mode_t mode, const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(auto n, NewChild(name, S_IFDIR | (mode & 07777), c));
  return {};
}

Status TmpfsInode::Mknod(std::string_view name, mode_t mode, dev_t dev, const FsCreds& c) {
  mode_t type = mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  if (type == S_IFREG) {
    auto r = Create(name, mode, c);
    if (!r.ok()) return r.error();
    return {};
  }
  // A device node is only a name with a number here (the syscall checked
  // CAP_MKNOD): opening it is the VFS's job, which reaches the sentry's own
  // device of that number, never a host device (Vfs::Open).
  if (type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK) {
    return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(auto n, NewChild(name, type | (mode & 07777), c));
  n->st_.st_rdev = dev;
  return {};
}

Status TmpfsInode::Symlink(std::string_view name, std::string_view target, const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(auto n, NewChild(name, S_IFLNK | 0777, c));
  std::lock_guard l(n->mu_);
  n->target_ = std::string(target);
  return {};
}

Status TmpfsInode::Link(std::string_view name, const std::shared_ptr<Inode>& target) {
  auto t = std::dynamic_pointer_cast<TmpfsInode>(target);
  if (!t || t->fs_ != fs_) return Errno(EXDEV);
  SV_TRY(CheckName(name));
  {
    std::lock_guard lt(t->mu_);
    if (S_ISDIR(t->st_.st_mode)) return Errno(EPERM);
    // vfs_link(): a file whose last name went stays without one, but for
    // an O_TMPFILE file's first (I_LINKABLE).
    if (t->st_.st_nlink == 0 && !t->linkable_) return Errno(ENOENT);
    SV_TRY(t->CheckNotPinnedLocked());
  }
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  if (children_.count(name)) return Errno(EEXIST);
  SV_TRY(CheckDirChangeLocked(false));
  children_.emplace(std::string(name), t);
  whiteouts_.erase(std::string(name));
  st_.st_mtim = st_.st_ctim = Now();
  std::lock_guard lt(t->mu_);
  t->st_.st_nlink++;
  t->linkable_ = false;
  t->st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::AddChild(std::string_view name, std::shared_ptr<TmpfsInode> child) {
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  if (children_.count(name)) return Errno(EEXIST);
  if (S_ISDIR(child->st_.st_mode)) st_.st_nlink++;
  children_.emplace(std::string(name), std::move(child));
  whiteouts_.erase(std::string(name));
  return {};
}

Status TmpfsInode::Unlink(std::string_view name) {
  std::shared_ptr<TmpfsInode> victim;
  {
    std::lock_guard l(mu_);
    if (!IsDir()) return Errno(ENOTDIR);
    auto it = children_.find(name);
    if (it == children_.end()) return Errno(ENOENT);
    if (S_ISDIR(it->second->st_.st_mode)) return Errno(EISDIR);
    victim = it->second;
    SV_TRY(CheckDirChangeLocked(true));
    {
      std::lock_guard lv(victim->mu_);
      SV_TRY(victim->CheckNotPinnedLocked());
    }
    children_.erase(it);
    st_.st_mtim = st_.st_ctim = Now();
  }
  std::lock_guard l(victim->mu_);
  victim->st_.st_nlink--;
  victim->st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::RmdirForce(std::string_view name) {
  std::shared_ptr<TmpfsInode> victim;
  std::lock_guard l(mu_);
  auto it = children_.find(name);
  if (it == children_.end()) return Errno(ENOENT);
  victim = it->second;
  if (!S_ISDIR(victim->st_.st_mode)) return Errno(ENOTDIR);
  {
    std::lock_guard lv(victim->mu_);
    if (!victim->children_.empty()) return Errno(ENOTEMPTY);
    victim->st_.st_nlink = 0;
  }
  children_.erase(it);
  st_.st_nlink--;
  st_.st_mtim = st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::Rmdir(std::string_view name) {
  {
    std::lock_guard l(mu_);
    if (!IsDir()) return Errno(ENOTDIR);
    auto it = children_.find(name);
    if (it == children_.end()) return Errno(ENOENT);
    if (!S_ISDIR(it->second->st_.st_mode)) return Errno(ENOTDIR);
    SV_TRY(CheckDirChangeLocked(true));
    std::lock_guard lv(it->second->mu_);
    SV_TRY(it->second->CheckNotPinnedLocked());
  }
  return RmdirForce(name);
}

Status TmpfsInode::Rename(std::string_view oldname, Inode& newdir_base, std::string_view newname,
                          unsigned flags) {
  auto* newdir = dynamic_cast<TmpfsInode*>(&newdir_base);
  if (!newdir || newdir->fs_ != fs_) return Errno(EXDEV);
  SV_TRY(CheckName(newname));
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Errno(EINVAL);
  // Lock both directories in address order.
  std::unique_lock<std::mutex> l1, l2;
  if (newdir == this) {
    l1 = std::unique_lock(mu_);
  } else if (this < newdir) {
    l1 = std::unique_lock(mu_);
    l2 = std::unique_lock(newdir->mu_);
  } else {
    l1 = std::unique_lock(newdir->mu_);
    l2 = std::unique_lock(mu_);
  }
  SV_TRY(CheckWritableDir());
  SV_TRY(newdir->CheckWritableDir());
  auto src_it = children_.find(oldname);
  if (src_it == children_.end()) return Errno(ENOENT);
  std::shared_ptr<TmpfsInode> src = src_it->second;
  auto dst_it = newdir->children_.find(newname);
  std::shared_ptr<TmpfsInode> dst = dst_it == newdir->children_.end() ? nullptr : dst_it->second;
  // may_delete() of the source and of a replaced or exchanged target,
  // may_create() in the new directory.
  SV_TRY(CheckDirChangeLocked(true));
  SV_TRY(newdir->CheckDirChangeLocked(dst != nullptr));
  for (const auto& n : {src, dst}) {
    if (n == nullptr || n.get() == this || n.get() == newdir) continue;  // locked above
    std::lock_guard ln(n->mu_);
    SV_TRY(n->CheckNotPinnedLocked());
  }
  bool src_dir = S_ISDIR(src->st_.st_mode);
  timespec now = Now();
  if (flags & RENAME_EXCHANGE) {
    if (!dst) return Errno(ENOENT);
    bool dst_dir = S_ISDIR(dst->st_.st_mode);
    src_it->second = dst;
    newdir->children_.find(newname)->second = src;
    if (src_dir != dst_dir && newdir != this) {
      if (src_dir) { st_.st_nlink--; newdir->st_.st_nlink++; }
      else { st_.st_nlink++; newdir->st_.st_nlink--; }
    }
    st_.st_mtim = st_.st_ctim = newdir->st_.st_mtim = newdir->st_.st_ctim = now;
    return {};
  }
  if (dst) {
    if (flags & RENAME_NOREPLACE) return Errno(EEXIST);
    if (dst == src) return {};  // same inode: rename(2) does nothing
    bool dst_dir = S_ISDIR(dst->st_.st_mode);
    if (src_dir && !dst_dir) return Errno(ENOTDIR);
    if (!src_dir && dst_dir) return Errno(EISDIR);
    if (dst_dir) {
      std::lock_guard ld(dst->mu_);
      if (!dst->children_.empty()) return Errno(ENOTEMPTY);
      dst->st_.st_nlink = 0;
      newdir->st_.st_nlink--;
    } else {
      std::lock_guard ld(dst->mu_);
      dst->st_.st_nlink--;
    }
    newdir->children_.erase(dst_it);
  }
  children_.erase(src_it);
  newdir->children_.emplace(std::string(newname), src);
  newdir->whiteouts_.erase(std::string(newname));
  if (src_dir && newdir != this) {
    st_.st_nlink--;
    newdir->st_.st_nlink++;
  }
  st_.st_mtim = st_.st_ctim = newdir->st_.st_mtim = newdir->st_.st_ctim = now;
  return {};
}

Result<std::string> TmpfsInode::Readlink() {
  std::lock_guard l(mu_);
  if (!S_ISLNK(st_.st_mode)) return Errno(EINVAL);
  return target_;
}

Status TmpfsInode::SetAttr(const SetAttrRequest& req) {
  std::lock_guard l(mu_);
  // may_setattr() and do_ftruncate(): an immutable or append-only object
  // keeps its mode and owner, an append-only one its size (an immutable
  // one's is kept by truncate(2)'s permission check: a file opened for
  // writing before the flag still truncates, as shmem's does), an
  // immutable one its times (an append-only one refuses only times given
  // explicitly, which the syscall layer knows).
  if (req.mode || req.uid || req.gid) SV_TRY(CheckNotPinnedLocked());
  if (req.size && (fs_flags_ & kAppendFl)) return Errno(EPERM);
  if ((req.atime || req.mtime) && (fs_flags_ & kImmutableFl)) return Errno(EPERM);
  if (req.size) {
    if (S_ISDIR(st_.st_mode)) return Errno(EISDIR);
    if (!S_ISREG(st_.st_mode)) return Errno(EINVAL);
    if (*req.size < 0) return Errno(EINVAL);
    // An empty file without a memfd stays without one at size 0.
    if (memfd_ >= 0 || *req.size > 0) {
      SV_TRY(EnsureMemfdLocked());
      SV_TRY(UnshareLocked());
      if (ftruncate(memfd_, *req.size) != 0) return Errno(errno);
    }
    st_.st_mtim = Now();
  }
  ApplyAttrs(req, st_);
  st_.st_ctim = Now();
  return {};
}

Result<std::string> TmpfsInode::GetXattr(std::string_view name) {
  std::lock_guard l(mu_);
  return xattrs_.Get(name);
}

Result<std::vector<std::string>> TmpfsInode::ListXattr() {
  std::lock_guard l(mu_);
  return xattrs_.List();
}

// shmem_xattr_handler_set(): a change updates ctime.
Status TmpfsInode::SetXattr(std::string_view name, std::string_view value, int flags) {
  std::lock_guard l(mu_);
  SV_TRY(CheckNotPinnedLocked());  // xattr_permission()
  SV_TRY(xattrs_.Set(name, value, flags));
  st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::RemoveXattr(std::string_view name) {
  std::lock_guard l(mu_);
  SV_TRY(CheckNotPinnedLocked());  // xattr_permission()
  SV_TRY(xattrs_.Remove(name));
  st_.st_ctim = Now();
  return {};
}

Result<struct statfs> TmpfsInode::StatFs() {
  struct statfs s {};
  s.f_type = 0x01021994;  // TMPFS_MAGIC
  s.f_bsize = 4096;
  s.f_blocks = 1 << 20;
  s.f_bfree = s.f_bavail = 1 << 19;
  s.f_files = 1 << 20;
  s.f_ffree = 1 << 19;
  s.f_namelen = 255;
  s.f_frsize = 4096;
  return s;
}

// FsFlags' rules for opens (writing an immutable file, an append-only one
// without O_APPEND) are the VFS's (Vfs::OpenDentry): EPERM comes before
// the permission bits there, as inode_permission() has it.
Result<FileRef> TmpfsInode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  mode_t type;
  {
    std::lock_guard l(mu_);
    type = st_.st_mode & S_IFMT;
  }
  if (type == S_IFREG) {
    return FileRef(std::make_shared<TmpfsFile>(
        flags, d, std::static_pointer_cast<TmpfsInode>(shared_from_this())));
  }
  return Inode::Open(d, flags);
}

bool TmpfsInode::IsWhiteout(std::string_view name) {
  std::lock_guard l(mu_);
  return whiteouts_.count(name) != 0;
}

void TmpfsInode::AddWhiteout(std::string_view name) {
  std::lock_guard l(mu_);
  whiteouts_.emplace(name);
}

bool TmpfsInode::opaque() {
  std::lock_guard l(mu_);
  return opaque_;
}

void TmpfsInode::set_opaque(bool v) {
  std::lock_guard l(mu_);
  opaque_ = v;
}

}  // namespace seedvisor::sentry
