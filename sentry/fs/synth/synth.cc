#include "sentry/fs/synth/synth.h"

#include <atomic>
#include <cstring>
#include <optional>

namespace seedvisor::sentry {

uint64_t NextSynthIno() {
  static std::atomic<uint64_t> next{1000};
  return next.fetch_add(1);
}

namespace {
timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}
}  // namespace

SynthInode::SynthInode(mode_t mode, dev_t dev, uid_t uid, gid_t gid) {
  st_.st_mode = mode;
  st_.st_ino = NextSynthIno();
  st_.st_dev = dev;
  st_.st_uid = uid;
  st_.st_gid = gid;
  st_.st_nlink = S_ISDIR(mode) ? 2 : 1;
  st_.st_blksize = 4096;
  st_.st_atim = st_.st_mtim = st_.st_ctim = Now();
}

Result<struct stat> SynthInode::Stat() {
  OwnerFn fn;
  mode_t mode;
  {
    std::lock_guard l(st_mu_);
    fn = owner_fn_;
    mode = st_.st_mode;
  }
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (fn) owner = fn(mode);  // outside st_mu_: it may take kernel locks
  std::lock_guard l(st_mu_);
  struct stat st = st_;
  if (owner) {
    st.st_uid = owner->first;
    st.st_gid = owner->second;
  }
  return st;
}

void SynthInode::set_owner_fn(OwnerFn fn) {
  std::lock_guard l(st_mu_);
  owner_fn_ = std::move(fn);
}

bool SynthInode::has_owner_fn() {
  std::lock_guard l(st_mu_);
  return owner_fn_ != nullptr;
}

void SynthInode::set_owner(uid_t uid, gid_t gid) {
  std::lock_guard l(st_mu_);
  st_.st_uid = uid;
  st_.st_gid = gid;
}

Status SynthInode::SetAttr(const SetAttrRequest& req) {
  // Device nodes accept time and mode changes (tests touch /dev/null);
  // everything else here is fixed.
  if (req.size) return S_ISCHR(st_.st_mode) ? Status() : Errno(EPERM);
  if (!S_ISCHR(st_.st_mode)) return Errno(EPERM);
  std::lock_guard l(st_mu_);
  ApplyAttrs(req, st_);
  return {};
}

Result<struct statfs> SynthInode::StatFs() {
  struct statfs s {};
  s.f_type = magic_;
  s.f_bsize = 4096;
  s.f_namelen = 255;
  s.f_frsize = 4096;
  return s;
}

// ---------------------------------------------------------------- SynthDir

SynthDir::SynthDir(mode_t perm, dev_t dev) : SynthInode(S_IFDIR | perm, dev) {}

void SynthDir::Add(std::string name, InodeRef child) {
  ApplySubtreeSeek(child);
  ApplySubtreeOwner(child);
  std::lock_guard l(mu_);
  children_[std::move(name)] = std::move(child);
}

void SynthDir::SetSubtreeSeek(SynthSeek dirs, SynthSeek files) {
  std::vector<InodeRef> children;
  {
    std::lock_guard l(mu_);
    subtree_dirs_ = dirs;
    subtree_files_ = files;
    for (const auto& [name, child] : children_) children.push_back(child);
  }
  if (seek() == SynthSeek::kDefault) set_seek(dirs);
  for (const InodeRef& child : children) ApplySubtreeSeek(child);
}

void SynthDir::SetSubtreeOwner(OwnerFn fn) {
  std::vector<InodeRef> children;
  {
    std::lock_guard l(mu_);
    subtree_owner_ = fn;
    for (const auto& [name, child] : children_) children.push_back(child);
  }
  if (!has_owner_fn()) set_owner_fn(fn);
  for (const InodeRef& child : children) ApplySubtreeOwner(child);
}

void SynthDir::ApplySubtreeOwner(const InodeRef& child) {
  OwnerFn fn;
  {
    std::lock_guard l(mu_);
    fn = subtree_owner_;
  }
  if (!fn) return;
  if (auto* d = dynamic_cast<SynthDir*>(child.get())) {
    if (!d->has_owner_fn()) d->SetSubtreeOwner(fn);
  } else if (auto* i = dynamic_cast<SynthInode*>(child.get()); i != nullptr && !i->has_owner_fn()) {
    i->set_owner_fn(fn);
  }
}

void SynthDir::ApplySubtreeSeek(const InodeRef& child) {
  SynthSeek dirs, files;
  {
    std::lock_guard l(mu_);
    dirs = subtree_dirs_;
    files = subtree_files_;
  }
  if (dirs == SynthSeek::kDefault && files == SynthSeek::kDefault) return;
  if (auto* d = dynamic_cast<SynthDir*>(child.get())) {
    if (d->seek() == SynthSeek::kDefault) d->SetSubtreeSeek(dirs, files);
  } else if (auto* f = dynamic_cast<SynthFile*>(child.get());
             f != nullptr && f->seek() == SynthSeek::kDefault) {
    f->set_seek(files);
  }
}

namespace {

// A directory whose SEEK_END/SEEK_DATA/SEEK_HOLE follow
// generic_file_llseek() with i_size 0, as /proc's and sysfs's do.
class SizeZeroDirFile : public DirFile {
 public:
  using DirFile::DirFile;
  Result<int64_t> Seek(int64_t offset, int whence) override {
    switch (whence) {
      case SEEK_END:
        return DirFile::Seek(offset, SEEK_SET);  // i_size + offset
      case SEEK_DATA:
      case SEEK_HOLE:
        return Errno(ENXIO);  // every offset is at or past i_size
      default:
        return DirFile::Seek(offset, whence);
    }
  }
};

}  // namespace

Result<FileRef> SynthDir::Open(const std::shared_ptr<Dentry>& d, int flags) {
  if (seek() != SynthSeek::kSizeZero) return SynthInode::Open(d, flags);
  return FileRef(std::make_shared<SizeZeroDirFile>(flags, d));
}

void SynthDir::SetDynamic(LookupFn lookup, ListFn list) {
  std::lock_guard l(mu_);
  lookup_ = std::move(lookup);
  list_ = std::move(list);
}

Result<InodeRef> SynthDir::Lookup(std::string_view name) {
  LookupFn fn;
  {
    std::lock_guard l(mu_);
    auto it = children_.find(name);
    if (it != children_.end()) return it->second;
    fn = lookup_;
  }
  if (fn) {
    Result<InodeRef> child = fn(name);
    if (child.ok()) {
      ApplySubtreeSeek(*child);
      ApplySubtreeOwner(*child);
    }
    return child;
  }
  return Errno(ENOENT);
}

Result<std::vector<DirEntry>> SynthDir::ReadDir() {
  std::vector<DirEntry> out;
  ListFn fn;
  {
    std::lock_guard l(mu_);
    for (auto& [name, child] : children_) {
      auto st = child->Stat();
      if (st.ok()) out.push_back({name, st->st_ino, DirentType(st->st_mode)});
    }
    fn = list_;
  }
  if (fn) {
    for (auto& e : fn()) out.push_back(std::move(e));
  }
  return out;
}

// ---------------------------------------------------------------- SynthSymlink

SynthSymlink::SynthSymlink(TargetFn target, dev_t dev)
    : SynthInode(S_IFLNK | 0777, dev), target_(std::move(target)) {}

std::shared_ptr<SynthSymlink> SynthSymlink::Fixed(std::string target) {
  return std::make_shared<SynthSymlink>([target]() -> Result<std::string> { return target; });
}

Result<std::string> SynthSymlink::Readlink() { return target_(); }

// ---------------------------------------------------------------- SynthFile

SynthFile::SynthFile(ContentFn content, mode_t perm, dev_t dev)
    : SynthInode(S_IFREG | perm, dev), content_(std::move(content)) {}

std::shared_ptr<SynthFile> SynthFile::Text(std::function<std::string()> f) {
  return std::make_shared<SynthFile>([f]() -> Result<std::string> { return f(); });
}

Result<FileRef> SynthFile::Open(const std::shared_ptr<Dentry>& d, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY && !write_) return Errno(EACCES);
  std::string data;
  if ((flags & O_ACCMODE) != O_WRONLY) {
    SV_ASSIGN_OR_RETURN(data, content_());
  }
  return FileRef(std::make_shared<StringFile>(flags, d, std::move(data), write_, seek()));
}

// ---------------------------------------------------------------- SynthDevice

SynthDevice::SynthDevice(OpenFn open, dev_t rdev, mode_t perm, dev_t dev)
    : SynthInode(S_IFCHR | perm, dev), open_(std::move(open)) {
  st_.st_rdev = rdev;
}

Result<FileRef> SynthDevice::Open(const std::shared_ptr<Dentry>& d, int flags) {
  return open_(d, flags);
}

// ---------------------------------------------------------------- StringFile

StringFile::StringFile(int flags, DentryRef d, std::string data,
                       std::function<Status(std::string_view)> write, SynthSeek seek)
    : FileDescription(flags, std::move(d)),
      data_(std::move(data)),
      write_(std::move(write)),
      seek_(seek) {}

Result<size_t> StringFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  return PReadString(data_, buf, len, offset);
}

Result<size_t> StringFile::Read(Task& t, char* buf, size_t len) {
  return ReadAtOffset(t, buf, len);
}

Result<size_t> StringFile::Write(Task&, const char* buf, size_t len) {
  if (!write_) return Errno(EINVAL);
  SV_TRY(write_(std::string_view(buf, len)));
  return len;
}

Result<int64_t> StringFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  // i_size for generic_file_llseek(), or -1 where SEEK_END, SEEK_DATA and
  // SEEK_HOLE are EINVAL.
  int64_t size = static_cast<int64_t>(data_.size());
  if (seek_ == SynthSeek::kSeqFile) size = -1;
  if (seek_ == SynthSeek::kSizeZero) size = 0;
  if (seek_ == SynthSeek::kSysfsPage) size = 4096;
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = offset_; break;
    case SEEK_END:
      if (size < 0) return Errno(EINVAL);
      base = size;
      break;
    case SEEK_DATA:
    case SEEK_HOLE:
      // generic_file_llseek_size(): all data, one hole at the end.
      if (size < 0 || seek_ == SynthSeek::kDefault) return Errno(EINVAL);
      if (static_cast<uint64_t>(offset) >= static_cast<uint64_t>(size)) return Errno(ENXIO);
      offset_ = whence == SEEK_DATA ? offset : size;
      return offset_;
    default: return Errno(EINVAL);
  }
  if (base + offset < 0) return Errno(EINVAL);
  offset_ = base + offset;
  return offset_;
}

}  // namespace seedvisor::sentry
