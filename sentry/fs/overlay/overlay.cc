#include "sentry/fs/overlay/overlay.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <optional>

#include "sentry/fs/overlay/overlay_fs.h"

namespace seedvisor::sentry {

namespace {

bool IsDirInode(Inode& i) { return i.Type() == S_IFDIR; }

}  // namespace

std::shared_ptr<OverlayInode> NewOverlay(std::shared_ptr<TmpfsInode> upper_root,
                                         InodeRef lower_root) {
  static std::atomic<dev_t> next_dev{0x200};
  std::optional<struct stat> root_st;
  if (lower_root) {
    if (auto st = lower_root->Stat(); st.ok()) root_st = *st;
  }
  auto fs = std::make_shared<OverlayFs>(root_st ? std::optional<dev_t>(root_st->st_dev)
                                                : std::nullopt);
  fs->dev = next_dev.fetch_add(1);
  if (root_st) {
    SetAttrRequest r;
    r.mode = root_st->st_mode & 07777;
    r.uid = root_st->st_uid;
    r.gid = root_st->st_gid;
    (void)upper_root->SetAttr(r);
  }
  return std::make_shared<OverlayInode>(fs, nullptr, "", std::move(upper_root),
                                        std::move(lower_root));
}

OverlayInode::OverlayInode(std::shared_ptr<OverlayFs> fs, std::shared_ptr<OverlayInode> parent,
                           std::string name, std::shared_ptr<TmpfsInode> upper, InodeRef lower)
    : fs_(std::move(fs)),
      parent_(std::move(parent)),
      name_(std::move(name)),
      upper_(std::move(upper)),
      lower_(std::move(lower)) {}

std::shared_ptr<TmpfsInode> OverlayInode::upper() {
  std::lock_guard l(mu_);
  return upper_;
}

Result<struct stat> OverlayInode::Stat() {
  auto up = upper();
  struct stat st;
  if (up) {
    SV_ASSIGN_OR_RETURN(st, up->Stat());
    if (lower_) {
      ino_t li = lower_ino_.load(std::memory_order_relaxed);
      if (li == 0) {
        auto ls = lower_->Stat();
        if (ls.ok()) {
          li = fs_->numbers.Fold(ls->st_dev, ls->st_ino);
          lower_ino_.store(li, std::memory_order_relaxed);
        }
      }
      st.st_ino = li != 0 ? li : InodeNumbers::Upper(st.st_ino);
    } else {
      st.st_ino = UpperOnlyIno(st.st_ino);
    }
  } else {
    SV_ASSIGN_OR_RETURN(st, lower_->Stat());
    st.st_ino = fs_->numbers.Fold(st.st_dev, st.st_ino);
  }
  st.st_dev = fs_->dev;
  return st;
}

FileLockKey OverlayInode::LockKey() {
  const FileLockKey failed{this, 0, 0};  // Stat failed: this object alone
  if (lower_) {
    FileLockKey k = lower_->LockKey();
    if (k.fs == lower_.get()) return failed;
    return FileLockKey{fs_.get(), k.dev, k.ino};  // the overlay's keys, not the host's
  }
  auto up = upper();
  if (!up) return failed;
  auto st = up->Stat();
  if (!st.ok()) return failed;
  if (auto origin = fs_->Origin(st->st_ino)) {
    return FileLockKey{fs_.get(), origin->first, origin->second};
  }
  // Upper-only as Stat shows it: no host device (0), numbers far from the
  // lower layer's.
  return FileLockKey{fs_.get(), 0, InodeNumbers::Upper(st->st_ino)};
}

ino_t OverlayInode::UpperOnlyIno(ino_t upper_ino) {
  // A copy-up looked up again (a rename, a link) shows its lower number.
  if (auto origin = fs_->Origin(upper_ino)) {
    return fs_->numbers.Fold(origin->first, origin->second);
  }
  return InodeNumbers::Upper(upper_ino);
}

Result<std::shared_ptr<OverlayInode>> OverlayInode::LookupChild(std::string_view name) {
  auto self = std::static_pointer_cast<OverlayInode>(shared_from_this());
  auto up = upper();
  if (up) {
    if (up->IsWhiteout(name)) return Errno(ENOENT);
    auto u = up->LookupNode(name);
    if (u.ok()) {
      InodeRef low;
      if (lower_ && IsDirInode(**u) && !(*u)->opaque()) {
        auto l = lower_->Lookup(name);
        if (l.ok() && IsDirInode(**l)) low = *l;
      }
      return std::make_shared<OverlayInode>(fs_, self, std::string(name), *u, low);
    }
    if (u.error() != Errno(ENOENT)) return u.error();
    if (up->opaque()) return Errno(ENOENT);
  }
  if (!lower_) return Errno(ENOENT);
  SV_ASSIGN_OR_RETURN(InodeRef l, lower_->Lookup(name));
  return std::make_shared<OverlayInode>(fs_, self, std::string(name), nullptr, l);
}

Result<std::shared_ptr<Inode>> OverlayInode::Lookup(std::string_view name) {
  SV_ASSIGN_OR_RETURN(auto c, LookupChild(name));
  return std::shared_ptr<Inode>(std::move(c));
}

Result<std::vector<DirEntry>> OverlayInode::ReadDir() {
  auto up = upper();
  std::map<std::string, DirEntry> merged;
  bool use_lower = lower_ && !(up && up->opaque());
  if (use_lower) {
    // A host directory's entries are on its device (a mount point's entry
    // shows the number of the directory it covers, as natively).
    SV_ASSIGN_OR_RETURN(struct stat dir, lower_->Stat());
    SV_ASSIGN_OR_RETURN(auto entries, lower_->ReadDir());
    for (auto& e : entries) {
      if (up && up->IsWhiteout(e.name)) continue;
      e.ino = fs_->numbers.Fold(dir.st_dev, e.ino);
      merged[e.name] = e;
    }
  }
  if (up) {
    SV_ASSIGN_OR_RETURN(auto entries, up->ReadDir());
    for (auto& e : entries) {
      auto it = merged.find(e.name);
      if (it != merged.end()) {
        it->second.type = e.type;  // keep the lower inode number, as Stat does
      } else {
        e.ino = UpperOnlyIno(e.ino);  // a copy-up renamed or linked here: its origin's
        merged[e.name] = e;
      }
    }
  } else if (!lower_) {
    return Errno(ENOTDIR);
  }
  std::vector<DirEntry> out;
  out.reserve(merged.size());
  for (auto& [n, e] : merged) out.push_back(std::move(e));
  return out;
}

bool OverlayInode::LowerHas(std::string_view name) {
  if (!lower_) return false;
  auto up = upper();
  if (up && up->opaque()) return false;
  return lower_->Lookup(name).ok();
}

Result<std::shared_ptr<TmpfsInode>> OverlayInode::UpperDir() {
  SV_TRY(CopyUp());
  auto up = upper();
  if (!up) return Errno(EIO);
  return up;
}

Result<std::shared_ptr<Inode>> OverlayInode::Create(std::string_view name, mode_t mode,
                                                    const FsCreds& c) {
  if (LookupChild(name).ok()) return Errno(EEXIST);
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  SV_ASSIGN_OR_RETURN(InodeRef n, up->Create(name, mode, c));
  return std::shared_ptr<Inode>(std::make_shared<OverlayInode>(
      fs_, std::static_pointer_cast<OverlayInode>(shared_from_this()), std::string(name),
      std::static_pointer_cast<TmpfsInode>(n), nullptr));
}

unsigned OverlayInode::FsFlags() {
  auto up = upper();
  return up ? up->FsFlags() : 0;
}

Status OverlayInode::SetFsFlags(unsigned flags) {
  if (flags & ~TmpfsInode::kModifiableFlags) return Errno(EOPNOTSUPP);
  SV_TRY(CopyUp());
  auto up = upper();
  if (!up) return Errno(EIO);
  return up->SetFsFlags(flags);
}

Result<std::shared_ptr<Inode>> OverlayInode::NewTmpFile(mode_t mode, const FsCreds& c,
                                                        bool linkable) {
  if (!IsDirInode(*this)) return Errno(ENOTDIR);
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  SV_ASSIGN_OR_RETURN(auto n, up->NewTmpFile(mode, c, linkable));
  return std::shared_ptr<Inode>(std::make_shared<OverlayInode>(
      fs_, std::static_pointer_cast<OverlayInode>(shared_from_this()), "", std::move(n), nullptr));
}

Status OverlayInode::Mkdir(std::string_view name, mode_t mode, const FsCreds& c) {
  if (LookupChild(name).ok()) return Errno(EEXIST);
  bool hide_lower = LowerHas(name) || (lower_ && lower_->Lookup(name).ok());
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  SV_TRY(up->Mkdir(name, mode, c));
  if (hide_lower) {
    SV_ASSIGN_OR_RETURN(auto n, up->LookupNode(name));
    n->set_opaque(true);  // a new directory where a removed lower one was
  }
  return {};
}

Status OverlayInode::Mknod(std::string_view name, mode_t mode, dev_t dev, const FsCreds& c) {
  if (LookupChild(name).ok()) return Errno(EEXIST);
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  return up->Mknod(name, mode, dev, c);
}

Status OverlayInode::Symlink(std::string_view name, std::string_view target,
                             const FsCreds& c) {
  if (LookupChild(name).ok()) return Errno(EEXIST);
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  return up->Symlink(name, target, c);
}

Status OverlayInode::Link(std::string_view name, const std::shared_ptr<Inode>& target) {
  auto t = std::dynamic_pointer_cast<OverlayInode>(target);
  if (!t || t->fs_ != fs_) return Errno(EXDEV);
  if (LookupChild(name).ok()) return Errno(EEXIST);
  if (IsDirInode(*t)) return Errno(EPERM);
  SV_TRY(t->CopyUp());
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  return up->Link(name, t->upper());
}

Status OverlayInode::Unlink(std::string_view name) {
  SV_ASSIGN_OR_RETURN(auto child, LookupChild(name));
  if (IsDirInode(*child)) return Errno(EISDIR);
  bool whiteout = lower_ && lower_->Lookup(name).ok();
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  if (up->opaque()) whiteout = false;
  if (child->upper()) SV_TRY(up->Unlink(name));
  if (whiteout) up->AddWhiteout(name);
  return {};
}

Status OverlayInode::Rmdir(std::string_view name) {
  SV_ASSIGN_OR_RETURN(auto child, LookupChild(name));
  if (!IsDirInode(*child)) return Errno(ENOTDIR);
  SV_ASSIGN_OR_RETURN(auto entries, child->ReadDir());
  if (!entries.empty()) return Errno(ENOTEMPTY);
  bool whiteout = lower_ && lower_->Lookup(name).ok();
  SV_ASSIGN_OR_RETURN(auto up, UpperDir());
  if (up->opaque()) whiteout = false;
  if (child->upper()) SV_TRY(up->RmdirForce(name));
  if (whiteout) up->AddWhiteout(name);
  return {};
}

Status OverlayInode::Rename(std::string_view oldname, Inode& newdir_base,
                            std::string_view newname, unsigned flags) {
  auto* nd = dynamic_cast<OverlayInode*>(&newdir_base);
  if (!nd || nd->fs_ != fs_) return Errno(EXDEV);
  SV_ASSIGN_OR_RETURN(auto src, LookupChild(oldname));
  bool src_dir = IsDirInode(*src);
  if (src_dir && src->lower_) return Errno(EXDEV);  // no redirect_dir
  auto dst = nd->LookupChild(newname);
  bool dst_lower = false;
  if (dst.ok()) {
    if (flags & RENAME_NOREPLACE) return Errno(EEXIST);
    bool dst_dir = IsDirInode(**dst);
    if (flags & RENAME_EXCHANGE) {
      if ((*dst)->lower_ || src->lower_) return Errno(EXDEV);
    } else {
      if (src_dir && !dst_dir) return Errno(ENOTDIR);
      if (!src_dir && dst_dir) return Errno(EISDIR);
      if (dst_dir) {
        SV_ASSIGN_OR_RETURN(auto entries, (*dst)->ReadDir());
        if (!entries.empty()) return Errno(ENOTEMPTY);
      }
    }
    dst_lower = (*dst)->lower_ != nullptr;
  } else if (flags & RENAME_EXCHANGE) {
    return dst.error();
  }
  SV_TRY(src->CopyUp());
  SV_ASSIGN_OR_RETURN(auto oup, UpperDir());
  SV_ASSIGN_OR_RETURN(auto nup, nd->UpperDir());
  bool whiteout = !oup->opaque() && lower_ && lower_->Lookup(oldname).ok();
  if (dst.ok() && IsDirInode(**dst) && (*dst)->upper() && !(flags & RENAME_EXCHANGE)) {
    // The target directory's upper copy may hold whiteouts: drop it first.
    SV_TRY(nup->RmdirForce(newname));
  }
  SV_TRY(oup->Rename(oldname, *nup, newname, flags));
  if (whiteout && !(flags & RENAME_EXCHANGE)) oup->AddWhiteout(oldname);
  if (src_dir && dst_lower) {
    SV_ASSIGN_OR_RETURN(auto moved, nup->LookupNode(newname));
    moved->set_opaque(true);
  }
  return {};
}

Result<std::string> OverlayInode::Readlink() {
  auto up = upper();
  return up ? up->Readlink() : lower_->Readlink();
}

Status OverlayInode::SetAttr(const SetAttrRequest& req) {
  SV_TRY(CopyUp());
  return upper()->SetAttr(req);
}

Result<std::string> OverlayInode::GetXattr(std::string_view name) {
  auto up = upper();
  if (!up) return Errno(ENODATA);
  return up->GetXattr(name);
}

Result<std::vector<std::string>> OverlayInode::ListXattr() {
  auto up = upper();
  if (up) return up->ListXattr();
  return std::vector<std::string>{};
}

Status OverlayInode::SetXattr(std::string_view name, std::string_view value, int flags) {
  SV_TRY(CopyUp());
  return upper()->SetXattr(name, value, flags);
}

Status OverlayInode::RemoveXattr(std::string_view name) {
  auto up = upper();
  if (!up) return Errno(ENODATA);
  return up->RemoveXattr(name);
}

Result<struct statfs> OverlayInode::StatFs() {
  auto up = upper();
  SV_ASSIGN_OR_RETURN(struct statfs s, up ? up->StatFs() : lower_->StatFs());
  s.f_type = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
  return s;
}

Result<FileRef> OverlayInode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  mode_t type = Type();
  if (type == S_IFDIR) return Inode::Open(d, flags);
  if (type == S_IFREG && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))) {
    SV_TRY(CopyUp());
  }
  auto up = upper();
  if (up) return up->Open(d, flags);
  return lower_->Open(d, flags);
}

}  // namespace seedvisor::sentry
