#include "sentry/fs/tmpfs/tmpfs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

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

// ---- Sandbox-fork generations (tmpfs.h: WritableMemfd) ----
//
// A tmpfs memfd is this sentry's alone if it was made or copied in the
// current generation. The generation word lives in a MAP_SHARED page that a
// sentry shares with a fork of it only while the fork adopts its state
// (AdoptTmpfsInForkChild): the fork bumps the word there — from then on the
// seed's memfds count as shared, so the seed copies before its next write
// too — and moves to a page of its own. Forks made earlier or later have
// their own pages: a fork never makes a sibling copy, and a sandbox whose
// own MAP_SHARED mappings exist is never marked by someone else's fork.
constexpr size_t kGenPage = 4096;
std::atomic<uint64_t> g_local_gen{1};  // if the shared page could not be made
std::atomic<std::atomic<uint64_t>*> g_gen{nullptr};

std::atomic<uint64_t>* NewGenPage(uint64_t value) {
  void* p = mmap(nullptr, kGenPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  // SAFETY: a fresh, page-aligned, writable mapping of our own; a lock-free
  // atomic is address-free, so two processes may use it at once.
  return new (p) std::atomic<uint64_t>(value);
}

std::atomic<uint64_t>& Gen() {
  std::atomic<uint64_t>* g = g_gen.load(std::memory_order_acquire);
  if (g != nullptr) return *g;
  std::atomic<uint64_t>* fresh = NewGenPage(1);
  if (fresh == nullptr) fresh = &g_local_gen;  // AdoptTmpfsInForkChild refuses then
  if (g_gen.compare_exchange_strong(g, fresh)) return *fresh;
  if (fresh != &g_local_gen) munmap(fresh, kGenPage);
  return *g;
}

// Copies the data of `from` (size `size`) into `to`, data segments only: a
// sparse file stays sparse.
Status CopyData(int from, int to, off_t size) {
  off_t off = 0;
  while (off < size) {
    off_t data = lseek(from, off, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return Errno(errno);
    off_t hole = lseek(from, data, SEEK_HOLE);
    if (hole < 0) return Errno(errno);
    off_t in = data, out = data;
    while (in < hole) {
      ssize_t n = copy_file_range(from, &in, to, &out, static_cast<size_t>(hole - in), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        char buf[65536];
        ssize_t r = pread(from, buf, std::min<off_t>(sizeof(buf), hole - in), in);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return Errno(r < 0 ? errno : EIO);
        for (ssize_t done = 0; done < r;) {
          ssize_t w = pwrite(to, buf + done, static_cast<size_t>(r - done), out + done);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return Errno(errno);
          done += w;
        }
        in += r;
        out += r;
        continue;
      }
      if (n < 0) return Errno(errno);
      if (n == 0) return Errno(EIO);  // shrank under us: cannot happen, nobody writes it
    }
    off = hole;
  }
  return {};
}

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return Errno(EINVAL);
  if (name.size() > 255) return Errno(ENAMETOOLONG);
  return {};
}

}  // namespace

absl::Status AdoptTmpfsInForkChild() {
  std::atomic<uint64_t>* seed = g_gen.load();
  if (seed == nullptr) return absl::OkStatus();  // no tmpfs file ever existed
  if (seed == &g_local_gen) {
    return absl::FailedPreconditionError(
        "tmpfs files cannot be forked: the sentry could not map its fork-generation page at start");
  }
  uint64_t v = seed->fetch_add(1) + 1;  // the seed's memfds: shared from now on
  std::atomic<uint64_t>* mine = NewGenPage(v);  // ours too: every gen is < v
  if (mine == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("tmpfs fork-generation page: ", strerror(errno)));
  }
  g_gen.store(mine);
  munmap(seed, kGenPage);  // the seed's page: none of our business any more
  return absl::OkStatus();
}

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
  if (S_ISREG(mode)) {
    memfd_ = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC);
    memfd_gen_ = Gen().load();
  }
}

TmpfsInode::~TmpfsInode() {
  if (memfd_ >= 0) close(memfd_);
}

Status TmpfsInode::MakeMemfd(bool allow_sealing) {
  std::lock_guard l(mu_);
  if (!S_ISREG(st_.st_mode)) return Errno(EINVAL);
  if (allow_sealing) {
    int fd = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return Errno(errno);
    if (memfd_ >= 0) close(memfd_);
    memfd_ = fd;
    memfd_gen_ = Gen().load();
    sealing_ = true;
  }
  is_memfd_ = true;
  return {};
}

Result<int> TmpfsInode::WritableMemfd() {
  std::lock_guard l(mu_);
  SV_TRY(UnshareLocked());
  return memfd_;
}

void TmpfsInode::KeepMemfdAfterFork() {
  std::lock_guard l(mu_);
  memfd_gen_ = Gen().load();
}

Status TmpfsInode::UnshareLocked() {
  const uint64_t now = Gen().load();
  if (memfd_ < 0 || memfd_gen_ == now) return {};
  struct stat hs;
  if (fstat(memfd_, &hs) != 0) return Errno(errno);
  int seals = 0;
  if (sealing_) {
    seals = fcntl(memfd_, F_GET_SEALS);
    if (seals < 0) return Errno(errno);
  }
  int fd = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC | (sealing_ ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return Errno(errno);
  Status s;
  if (ftruncate(fd, hs.st_size) != 0) s = Errno(errno);
  if (s.ok()) s = CopyData(memfd_, fd, hs.st_size);
  if (s.ok() && seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0) s = Errno(errno);
  // The copy takes the fd number of the shared memfd: readers that loaded
  // memfd_ a moment ago read the same bytes from either.
  if (s.ok() && dup3(fd, memfd_, O_CLOEXEC) < 0) s = Errno(errno);
  close(fd);
  if (!s.ok()) return s;
  memfd_gen_ = now;
  return {};
}

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

Result<std::shared_ptr<TmpfsInode>> TmpfsInode::NewChild(std::string_view name, mode_t mode,
                                                         const FsCreds& c) {
  SV_TRY(CheckName(name));
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  if (children_.count(name)) return Errno(EEXIST);
  gid_t gid = c.gid;
  // BSD group semantics for setgid directories (inode_init_owner()).
  if (st_.st_mode & S_ISGID) {
    gid = st_.st_gid;
    if (S_ISDIR(mode)) mode |= S_ISGID;
  }
  auto child = std::make_shared<TmpfsInode>(fs_, mode, c.uid, gid);
  if (S_ISREG(mode) && child->memfd_ < 0) return Errno(ENOSPC);
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
  // Device nodes would give the guest a path to host devices: refuse them.
  if (type == S_IFCHR || type == S_IFBLK) return Errno(EPERM);
  if (type != S_IFIFO && type != S_IFSOCK) return Errno(EINVAL);
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
    if (t->st_.st_nlink == 0) return Errno(ENOENT);
  }
  std::lock_guard l(mu_);
  SV_TRY(CheckWritableDir());
  if (children_.count(name)) return Errno(EEXIST);
  children_.emplace(std::string(name), t);
  whiteouts_.erase(std::string(name));
  st_.st_mtim = st_.st_ctim = Now();
  std::lock_guard lt(t->mu_);
  t->st_.st_nlink++;
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
  if (req.size) {
    if (S_ISDIR(st_.st_mode)) return Errno(EISDIR);
    if (memfd_ < 0) return Errno(EINVAL);
    if (*req.size < 0) return Errno(EINVAL);
    SV_TRY(UnshareLocked());
    if (ftruncate(memfd_, *req.size) != 0) return Errno(errno);
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
  SV_TRY(xattrs_.Set(name, value, flags));
  st_.st_ctim = Now();
  return {};
}

Status TmpfsInode::RemoveXattr(std::string_view name) {
  std::lock_guard l(mu_);
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

// ---------------------------------------------------------------- TmpfsFile

TmpfsFile::TmpfsFile(int flags, DentryRef d, std::shared_ptr<TmpfsInode> inode)
    : FileDescription(flags, std::move(d)), inode_(std::move(inode)) {}

absl::Status TmpfsFile::UnshareMappedInForkChild() {
  Result<int> fd = inode_->WritableMemfd();
  if (!fd.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("copying the data of ", DisplayPath(), ": ",
                                                     strerror(fd.error().value())));
  }
  return absl::OkStatus();
}

Result<size_t> TmpfsFile::ReadAt(char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  ssize_t n = pread(inode_->memfd(), buf, len, offset);
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Result<size_t> TmpfsFile::WriteAt(const char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(int fd, inode_->WritableMemfd());
  ssize_t n = pwrite(fd, buf, len, offset);
  if (n < 0) return Errno(errno);
  if (n > 0) inode_->Touch();
  return static_cast<size_t>(n);
}

Result<size_t> TmpfsFile::Read(Task&, char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  SV_ASSIGN_OR_RETURN(size_t n, ReadAt(buf, len, offset_));
  offset_ += static_cast<int64_t>(n);
  return n;
}

Result<size_t> TmpfsFile::Write(Task&, const char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  std::lock_guard w(inode_->write_mu());
  if (flags() & O_APPEND) {
    struct stat st;
    if (fstat(inode_->memfd(), &st) != 0) return Errno(errno);
    offset_ = st.st_size;
  }
  SV_ASSIGN_OR_RETURN(size_t n, WriteAt(buf, len, offset_));
  offset_ += static_cast<int64_t>(n);
  return n;
}

Result<size_t> TmpfsFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  return ReadAt(buf, len, offset);
}

Result<size_t> TmpfsFile::PWrite(Task&, const char* buf, size_t len, int64_t offset) {
  std::lock_guard w(inode_->write_mu());
  // pwrite(2) BUGS: with O_APPEND, Linux appends regardless of the offset.
  if (flags() & O_APPEND) {
    struct stat st;
    if (fstat(inode_->memfd(), &st) != 0) return Errno(errno);
    offset = st.st_size;
  }
  return WriteAt(buf, len, offset);
}

Result<int64_t> SeekHostFd(int fd, int64_t& cur, int64_t off, int whence) {
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = cur; break;
    case SEEK_END: {
      struct stat st;
      if (fstat(fd, &st) != 0) return Errno(errno);
      base = st.st_size;
      break;
    }
    case SEEK_DATA:
    case SEEK_HOLE: {
      off_t r = lseek(fd, off, whence);
      if (r < 0) return Errno(errno);
      cur = r;
      return cur;
    }
    default: return Errno(EINVAL);
  }
  int64_t n;
  if (__builtin_add_overflow(base, off, &n) || n < 0) return Errno(EINVAL);
  cur = n;
  return cur;
}

Result<int64_t> TmpfsFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  return SeekHostFd(inode_->memfd(), offset_, offset, whence);
}

// Through the dentry when there is one: a file opened via the overlay must
// show the overlay's st_dev and st_ino, as stat(2) on its path does.
Result<struct stat> TmpfsFile::Stat() {
  if (dentry()) return dentry()->inode()->Stat();
  return inode_->Stat();
}

Status TmpfsFile::Truncate(int64_t length) {
  SetAttrRequest r;
  r.size = length;
  return inode_->SetAttr(r);
}

Result<long> TmpfsFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    std::lock_guard l(offset_mu_);
    struct stat st;
    if (fstat(inode_->memfd(), &st) != 0) return Errno(errno);
    int n = st.st_size > offset_ ? static_cast<int>(st.st_size - offset_) : 0;
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

}  // namespace seedvisor::sentry
