// Inode and Dentry (inode.h): access checks, the task hooks files call,
// an inode's default answers and the dentry tree with its cache. Mounts
// are in mount.cc, open directories in dir_file.cc.
#include "sentry/vfs/inode.h"

#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace seedvisor::sentry {

bool FsCreds::InGroup(gid_t g) const {
  return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Status CheckAccess(const FsCreds& c, const struct stat& st, int mask) {
  mask &= 7;
  if (mask == 0) return {};
  unsigned perm;
  if (c.uid == st.st_uid) {
    perm = (st.st_mode >> 6) & 7;
  } else if (c.InGroup(st.st_gid)) {
    perm = (st.st_mode >> 3) & 7;
  } else {
    perm = st.st_mode & 7;
  }
  if ((perm & static_cast<unsigned>(mask)) == static_cast<unsigned>(mask)) return {};
  // generic_permission(): CAP_DAC_OVERRIDE grants R/W always, and X when
  // the object is a directory or has any x bit; CAP_DAC_READ_SEARCH grants R,
  // and X on directories.
  if (c.dac_override && (!(mask & X_OK) || S_ISDIR(st.st_mode) || (st.st_mode & 0111))) return {};
  if (c.dac_read_search && !(mask & W_OK) && (!(mask & X_OK) || S_ISDIR(st.st_mode))) return {};
  return Errno(EACCES);
}

uint8_t DirentType(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    default: return DT_UNKNOWN;
  }
}

// ---------------------------------------------------------------- hooks

namespace {
TaskHooks g_hooks;
}  // namespace

void InstallTaskHooks(const TaskHooks& hooks) { g_hooks = hooks; }

Status TaskCopyOut(Task& t, UserAddr addr, const void* src, size_t len) {
  if (!g_hooks.copy_out) return Errno(EFAULT);
  return g_hooks.copy_out(t, addr, src, len);
}

Status TaskCopyIn(Task& t, UserAddr addr, void* dst, size_t len) {
  if (!g_hooks.copy_in) return Errno(EFAULT);
  return g_hooks.copy_in(t, addr, dst, len);
}

Status TaskBlockOnFd(Task& t, int host_fd, short events, const timespec* deadline) {
  if (!g_hooks.block_on_fd) return Errno(EINTR);
  return g_hooks.block_on_fd(t, host_fd, events, deadline);
}

bool TaskParkInterrupted(Task& t) {
  return g_hooks.park_interrupted != nullptr && g_hooks.park_interrupted(t);
}

bool CurrentTaskKilled() {
  return g_hooks.current_task_killed != nullptr && g_hooks.current_task_killed();
}

void TaskNotify(Task& t) {
  if (g_hooks.notify) g_hooks.notify(t);
}

void TaskSendSigpipe(Task& t) {
  if (g_hooks.send_sigpipe) g_hooks.send_sigpipe(t);
}

void TaskSendSigio(Task& t, FileDescription& f, int reason) {
  if (g_hooks.send_sigio) g_hooks.send_sigio(t, f, reason);
}

int TaskIdIn(Task& t, int global) { return g_hooks.id_in ? g_hooks.id_in(t, global) : global; }

Result<int> TaskForegroundGroup(Task& t, int local) {
  return g_hooks.foreground_group ? g_hooks.foreground_group(t, local) : Result<int>(local);
}

// ---------------------------------------------------------------- Inode

Inode::~Inode() = default;

Result<std::shared_ptr<Inode>> Inode::Lookup(std::string_view) { return Errno(ENOTDIR); }
Result<std::vector<DirEntry>> Inode::ReadDir() { return Errno(ENOTDIR); }
Result<std::shared_ptr<Inode>> Inode::Create(std::string_view, mode_t, const FsCreds&) {
  return Errno(ReadOnlyFs() ? EROFS : ENOTDIR);
}
Status Inode::Mkdir(std::string_view, mode_t, const FsCreds&) {
  return Errno(ReadOnlyFs() ? EROFS : ENOTDIR);
}
Status Inode::Mknod(std::string_view, mode_t, dev_t, const FsCreds&) {
  return Errno(ReadOnlyFs() ? EROFS : EPERM);
}
Status Inode::Symlink(std::string_view, std::string_view, const FsCreds&) {
  return Errno(ReadOnlyFs() ? EROFS : EPERM);
}
Status Inode::Link(std::string_view, const std::shared_ptr<Inode>&) {
  return Errno(ReadOnlyFs() ? EROFS : EPERM);
}
Status Inode::Unlink(std::string_view) { return Errno(ReadOnlyFs() ? EROFS : EPERM); }
Status Inode::Rmdir(std::string_view) { return Errno(ReadOnlyFs() ? EROFS : EPERM); }
Status Inode::Rename(std::string_view, Inode&, std::string_view, unsigned) {
  return Errno(ReadOnlyFs() ? EROFS : EPERM);
}
Result<std::string> Inode::Readlink() { return Errno(EINVAL); }

void ApplyAttrs(const SetAttrRequest& req, struct stat& st) {
  if (req.mode) st.st_mode = (st.st_mode & S_IFMT) | (*req.mode & 07777);
  if (req.uid) st.st_uid = *req.uid;
  if (req.gid) st.st_gid = *req.gid;
  if (req.atime) st.st_atim = *req.atime;
  if (req.mtime) st.st_mtim = *req.mtime;
}

Status Inode::SetAttr(const SetAttrRequest&) { return Errno(ReadOnlyFs() ? EROFS : EPERM); }
Result<std::string> Inode::GetXattr(std::string_view) { return Errno(ENODATA); }
Result<std::vector<std::string>> Inode::ListXattr() { return std::vector<std::string>{}; }
Status Inode::SetXattr(std::string_view, std::string_view, int) { return Errno(EOPNOTSUPP); }
Status Inode::RemoveXattr(std::string_view) { return Errno(ENODATA); }

Result<struct statfs> Inode::StatFs() {
  struct statfs s {};
  s.f_type = 0x01021994;  // TMPFS_MAGIC
  s.f_bsize = 4096;
  s.f_namelen = 255;
  s.f_frsize = 4096;
  return s;
}

Result<FileRef> Inode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  SV_ASSIGN_OR_RETURN(struct stat st, Stat());
  if (S_ISDIR(st.st_mode)) return FileRef(std::make_shared<DirFile>(flags, d));
  return Errno(ENXIO);
}

FileLockKey Inode::LockKey() {
  auto st = Stat();
  if (!st.ok()) return FileLockKey{this, 0, 0};
  return FileLockKey{FsId(), st->st_dev, st->st_ino};
}

mode_t Inode::Type() {
  mode_t t = type_.load(std::memory_order_relaxed);
  if (t != 0) return t;
  auto st = Stat();
  if (!st.ok()) return 0;
  t = st->st_mode & S_IFMT;
  type_.store(t, std::memory_order_relaxed);
  return t;
}

// ---------------------------------------------------------------- Dentry

Dentry::Dentry(std::string name, std::shared_ptr<Dentry> parent, InodeRef inode, Mount* mount)
    : name_(std::move(name)), parent_(std::move(parent)), inode_(std::move(inode)), mount_(mount) {}

Dentry::~Dentry() = default;

Result<std::shared_ptr<Dentry>> Dentry::Child(std::string_view name) {
  // A lookup overtaken by a change of a name here (Forget) may have found
  // the object just removed: cached, it would outlive its removal (a deleted
  // file still found by its name). It is made again; after kLookupTries it
  // serves this call only, uncached.
  constexpr int kLookupTries = 8;
  std::shared_ptr<Dentry> d;
  for (int tries = 1; d == nullptr; ++tries) {
    uint64_t seen;
    {
      std::lock_guard l(mu_);
      auto it = children_.find(name);
      if (it != children_.end()) {
        d = it->second.lock();
        if (!d) children_.erase(it);
      }
      seen = changes_;
    }
    if (d) break;
    SV_ASSIGN_OR_RETURN(InodeRef inode, inode_->Lookup(name));
    std::lock_guard l(mu_);
    if (changes_ != seen) {
      if (tries < kLookupTries) continue;
      return std::make_shared<Dentry>(std::string(name), shared_from_this(), std::move(inode),
                                      mount_);
    }
    auto& slot = children_[std::string(name)];
    d = slot.lock();  // another thread may have won the race
    if (!d) {
      d = std::make_shared<Dentry>(std::string(name), shared_from_this(), std::move(inode),
                                   mount_);
      slot = d;
    }
  }
  if (mount_ != nullptr && d->inode_->KeepDentryCached()) mount_->CacheDentry(d);
  return d;
}

std::shared_ptr<Dentry> Dentry::Cached(std::string_view name) {
  std::lock_guard l(mu_);
  auto it = children_.find(name);
  return it != children_.end() ? it->second.lock() : nullptr;
}

std::shared_ptr<Dentry> Dentry::MirrorChild(const Dentry& orig) {
  bool current = false;  // orig's name still leads to orig
  if (orig.parent_ != nullptr) {
    std::lock_guard l(orig.parent_->mu_);
    auto it = orig.parent_->children_.find(orig.name_);
    current = it != orig.parent_->children_.end() && it->second.lock().get() == &orig;
  }
  auto copy = [&] {
    auto d = std::make_shared<Dentry>(orig.name_, shared_from_this(), orig.inode_, mount_);
    d->deleted_ = orig.deleted_;
    return d;
  };
  if (!current) return copy();
  std::lock_guard l(mu_);
  std::weak_ptr<Dentry>& slot = children_[orig.name_];
  std::shared_ptr<Dentry> d = slot.lock();
  if (d == nullptr || d->inode_ != orig.inode_) {
    d = copy();
    slot = d;
  }
  return d;
}

void Dentry::Forget(std::string_view name) {
  std::shared_ptr<Dentry> gone;
  {
    std::lock_guard l(mu_);
    ++changes_;
    auto it = children_.find(name);
    if (it == children_.end()) return;
    gone = it->second.lock();
    children_.erase(it);
  }
  if (gone && gone->mount_ != nullptr) gone->mount_->UncacheDentry(gone.get());
}

std::string Dentry::Path() const { return PathFrom(nullptr); }

std::string Dentry::PathFrom(const Dentry* root) const {
  std::vector<const std::string*> parts;
  // The mount points crossed, held: a move may replace one meanwhile, and
  // `parts` points at names of theirs and their ancestors.
  std::vector<DentryRef> held;
  const Dentry* d = this;
  bool reached = root == nullptr;
  while (d) {
    if (d == root) {
      reached = true;
      break;
    }
    if (d->parent_) {
      parts.push_back(&d->name_);
      d = d->parent_.get();
    } else if (DentryRef at = d->mount_ ? d->mount_->mountpoint() : nullptr) {
      d = at.get();
      held.push_back(std::move(at));
    } else {
      break;
    }
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    out += '/';
    out += **it;
  }
  // push_back, not = "/": gcc 12 at -O2 warns of a memcpy overlap in the
  // literal assignment (a false positive, -Wrestrict) once inlined here.
  if (out.empty()) out.push_back('/');
  // d_path() vs getcwd(2): a directory outside the caller's root.
  if (!reached) out = "(unreachable)" + out;
  if (deleted_) out += " (deleted)";
  return out;
}

}  // namespace seedvisor::sentry
