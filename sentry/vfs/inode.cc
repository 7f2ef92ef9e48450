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
  if (out.empty()) out = "/";
  // d_path() vs getcwd(2): a directory outside the caller's root.
  if (!reached) out = "(unreachable)" + out;
  if (deleted_) out += " (deleted)";
  return out;
}

// ---------------------------------------------------------------- Mount

namespace {

// ST_NOSYMFOLLOW (Linux 5.10), which older C libraries lack.
constexpr unsigned long kStNoSymfollow = 0x2000;

// Per-mount flags, in show_mnt_opts()'s order.
constexpr const char* kMountFlags[] = {"nosuid",     "nodev",    "noexec",     "noatime",
                                       "nodiratime", "relatime", "nosymfollow"};

bool IsMountFlag(std::string_view opt) {
  for (const char* f : kMountFlags) {
    if (opt == f) return true;
  }
  return false;
}

std::vector<std::string_view> SplitOptions(std::string_view options) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < options.size();) {
    size_t end = options.find(',', pos);
    if (end == std::string_view::npos) end = options.size();
    if (end > pos) out.push_back(options.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

void Mount::set_read_only() {
  if (read_only_) return;
  read_only_ = true;
  options_ = options_.rfind("rw", 0) == 0 ? "ro" + options_.substr(2) : "ro," + options_;
  NoteOptions();
}

void Mount::NoteOptions() {
  // flags_by_mnt()'s table, by the names show_mnt_opts() gives them.
  static constexpr std::pair<std::string_view, unsigned long> kBits[] = {
      {"ro", ST_RDONLY},         {"nosuid", ST_NOSUID},         {"nodev", ST_NODEV},
      {"noexec", ST_NOEXEC},     {"noatime", ST_NOATIME},       {"nodiratime", ST_NODIRATIME},
      {"relatime", ST_RELATIME}, {"nosymfollow", kStNoSymfollow}};
  unsigned long bits = 0;
  for (std::string_view o : SplitOptions(options_)) {
    for (const auto& [name, bit] : kBits) {
      if (o == name) bits |= bit;
    }
  }
  st_flags_.store(bits, std::memory_order_relaxed);
}

unsigned long Mount::StatFsFlags() const {
  constexpr unsigned long kStValid = 0x0020;  // ST_VALID (include/linux/statfs.h)
  return kStValid | st_flags_.load(std::memory_order_relaxed) |
         (sb_read_only() ? ST_RDONLY : 0);
}

void Mount::SetMountFlags(std::string_view flags, bool superblock) {
  std::string out(flags);
  for (std::string_view o : SplitOptions(options_)) {
    if (o == "ro" || o == "rw" || IsMountFlag(o)) continue;
    out += ",";
    out += o;
  }
  options_ = std::move(out);
  read_only_ = flags.substr(0, 2) == "ro";
  if (superblock) sb_read_only_->store(read_only_);
  NoteOptions();
}

void Mount::DropDentryCache() {
  std::list<DentryRef> dropped;  // destroyed outside the lock
  std::lock_guard l(cache_mu_);
  dropped.swap(lru_);
  lru_pos_.clear();
}

void Mount::CacheDentry(const DentryRef& d) {
  DentryRef evicted;  // destroyed outside the lock (it may free a whole chain)
  std::lock_guard l(cache_mu_);
  auto it = lru_pos_.find(d.get());
  if (it != lru_pos_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(d);
  lru_pos_[d.get()] = lru_.begin();
  if (lru_.size() > kDentryCacheSize) {
    evicted = std::move(lru_.back());
    lru_pos_.erase(evicted.get());
    lru_.pop_back();
  }
}

void Mount::UncacheDentry(const Dentry* d) {
  DentryRef gone;
  std::lock_guard l(cache_mu_);
  auto it = lru_pos_.find(d);
  if (it == lru_pos_.end()) return;
  gone = std::move(*it->second);
  lru_.erase(it->second);
  lru_pos_.erase(it);
}

size_t Mount::CachedDentries() {
  std::lock_guard l(cache_mu_);
  return lru_.size();
}

Mount::Mount(std::string fstype, std::string source, std::string options, InodeRef root_inode)
    : fstype_(std::move(fstype)), source_(std::move(source)), options_(std::move(options)) {
  // Anonymous devices 0:N from 0x50 up (below: sockfs, pipefs,
  // anon_inodefs, devpts use fixed small numbers).
  static std::atomic<unsigned> next_anon{0x50};
  anon_dev_ = makedev(0, next_anon.fetch_add(1));
  root_ = std::make_shared<Dentry>("/", nullptr, std::move(root_inode), this);
  root_->inode()->Mounted(root_);
  for (size_t pos = 0; pos <= options_.size();) {
    size_t end = options_.find(',', pos);
    if (end == std::string::npos) end = options_.size();
    if (options_.compare(pos, end - pos, "ro") == 0) read_only_ = true;
    pos = end + 1;
  }
  sb_read_only_->store(read_only_);
  NoteOptions();
}


MountHold::MountHold(const Mount* m, bool write)
    : counts_(m != nullptr ? m->counts() : nullptr), write_(write && m != nullptr) {
  if (counts_ == nullptr) return;
  counts_->users.fetch_add(1);
  if (write_) {
    counts_->writers.fetch_add(1);
    counts_->fs_writers->fetch_add(1);
  }
}

MountHold::MountHold(MountHold&& o) noexcept
    : counts_(std::move(o.counts_)), write_(std::exchange(o.write_, false)) {}

MountHold& MountHold::operator=(MountHold&& o) noexcept {
  if (this != &o) {
    Release();
    counts_ = std::move(o.counts_);
    write_ = std::exchange(o.write_, false);
  }
  return *this;
}

void MountHold::Release() {
  if (counts_ == nullptr) return;
  counts_->users.fetch_sub(1);
  if (write_) {
    counts_->writers.fetch_sub(1);
    counts_->fs_writers->fetch_sub(1);
  }
  counts_.reset();
  write_ = false;
}

std::string Mount::MountOptionsText() const {
  std::string out = read_only_ ? "ro" : "rw";
  const std::vector<std::string_view> opts = SplitOptions(options_);
  for (const char* f : kMountFlags) {
    for (std::string_view o : opts) {
      if (o == f) {
        out += ",";
        out += f;
        break;
      }
    }
  }
  return out;
}

std::string Mount::MountsOptionsText() const {
  if (!writes_refused() || options_.rfind("ro", 0) == 0) return options_;
  return options_.rfind("rw", 0) == 0 ? "ro" + options_.substr(2) : "ro," + options_;
}

std::string Mount::SuperOptionsText() const {
  std::string out = sb_read_only() ? "ro" : "rw";
  for (std::string_view o : SplitOptions(options_)) {
    if (o == "ro" || o == "rw" || IsMountFlag(o)) continue;
    out += ",";
    out += o;
  }
  return out;
}

Result<struct stat> StatOf(const Dentry* d, FileDescription* f) {
  SV_ASSIGN_OR_RETURN(struct stat st, f ? f->Stat() : d->inode()->Stat());
  if (st.st_dev == 0 && d && d->mount()) st.st_dev = d->mount()->anon_dev();
  return st;
}

// ---------------------------------------------------------------- DirFile

DirFile::DirFile(int flags, DentryRef d) : FileDescription(flags, std::move(d)) {}

Result<size_t> DirFile::Read(Task&, char*, size_t) { return Errno(EISDIR); }
Result<size_t> DirFile::PRead(Task&, char*, size_t, int64_t) { return Errno(EISDIR); }

Status DirFile::Refresh() {
  SV_ASSIGN_OR_RETURN(auto list, dentry()->inode()->ReadDir());
  SV_ASSIGN_OR_RETURN(struct stat self, dentry()->inode()->Stat());
  entries_.clear();
  entries_.push_back({".", self.st_ino, DT_DIR});
  uint64_t parent_ino = self.st_ino;
  if (dentry()->parent()) {
    auto pst = dentry()->parent()->inode()->Stat();
    if (pst.ok()) parent_ino = pst->st_ino;
  }
  entries_.push_back({"..", parent_ino, DT_DIR});
  for (auto& e : list) entries_.push_back(std::move(e));
  loaded_ = true;
  return {};
}

Result<int64_t> DirFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = offset_; break;
    default: return Errno(EINVAL);
  }
  if (base + offset < 0) return Errno(EINVAL);
  offset_ = base + offset;
  // Rewinding re-reads the directory, as readdir after rewinddir(3) must see
  // entries created since.
  if (offset_ == 0) loaded_ = false;
  return offset_;
}

Result<std::string> DirFile::FillDents(int64_t& offset, size_t len, bool dents64) {
  if (!loaded_ || offset == 0) SV_TRY(Refresh());
  std::string out;
  while (offset >= 0 && static_cast<size_t>(offset) < entries_.size()) {
    const DirEntry& e = entries_[offset];
    size_t namelen = e.name.size();
    size_t reclen;
    if (dents64) {
      reclen = (19 + namelen + 1 + 7) & ~size_t{7};  // linux_dirent64
    } else {
      reclen = (18 + namelen + 2 + 7) & ~size_t{7};  // linux_dirent: name, NUL, d_type
    }
    if (out.size() + reclen > len) break;
    std::string rec(reclen, '\0');
    uint64_t ino = e.ino;
    int64_t next = offset + 1;
    uint16_t rl = static_cast<uint16_t>(reclen);
    if (dents64) {
      memcpy(&rec[0], &ino, 8);
      memcpy(&rec[8], &next, 8);
      memcpy(&rec[16], &rl, 2);
      rec[18] = static_cast<char>(e.type);
      memcpy(&rec[19], e.name.data(), namelen);
    } else {
      memcpy(&rec[0], &ino, 8);
      memcpy(&rec[8], &next, 8);
      memcpy(&rec[16], &rl, 2);
      memcpy(&rec[18], e.name.data(), namelen);
      rec[reclen - 1] = static_cast<char>(e.type);
    }
    out += rec;
    ++offset;
  }
  if (out.empty() && offset >= 0 && static_cast<size_t>(offset) < entries_.size()) {
    return Errno(EINVAL);  // buffer too small for one entry
  }
  return out;
}

Result<size_t> DirFile::GetDents64(Task& t, UserAddr buf, size_t len) {
  std::lock_guard l(offset_mu_);
  int64_t off = offset_;
  SV_ASSIGN_OR_RETURN(std::string out, FillDents(off, len, true));
  if (!out.empty()) SV_TRY(TaskCopyOut(t, buf, out.data(), out.size()));
  offset_ = off;
  return out.size();
}

Result<size_t> DirFile::GetDents(Task& t, UserAddr buf, size_t len) {
  std::lock_guard l(offset_mu_);
  int64_t off = offset_;
  SV_ASSIGN_OR_RETURN(std::string out, FillDents(off, len, false));
  if (!out.empty()) SV_TRY(TaskCopyOut(t, buf, out.data(), out.size()));
  offset_ = off;
  return out.size();
}

}  // namespace seedvisor::sentry
