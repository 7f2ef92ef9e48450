// overlay: the sandbox root, a writable tmpfs over a read-only lower layer
// (the host root).
//
// An OverlayInode has an upper node (tmpfs), a lower inode, or both (a
// directory present in both layers is merged). The first change to a lower
// object copies it up: its parents first, then the object (data, mode,
// owner, times). Removing a lower name leaves a whiteout in the upper
// directory; a directory created where a lower one was removed is opaque.
// Writes never reach the lower layer.
//
// Renaming a directory that exists in the lower layer fails with EXDEV (as
// Linux overlayfs without redirect_dir): mv(1) then copies and deletes.
//
//   auto root = NewOverlay(NewTmpfs(0755), host_root);
#ifndef SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_H_
#define SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_H_

#include <atomic>
#include <memory>
#include <mutex>

#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

struct OverlayFs;

class OverlayInode : public Inode {
 public:
  OverlayInode(std::shared_ptr<OverlayFs> fs, std::shared_ptr<OverlayInode> parent,
               std::string name, std::shared_ptr<TmpfsInode> upper, InodeRef lower);

  Result<struct stat> Stat() override;
  Result<std::shared_ptr<Inode>> Lookup(std::string_view name) override;
  Result<std::vector<DirEntry>> ReadDir() override;
  Result<std::shared_ptr<Inode>> Create(std::string_view name, mode_t mode,
                                        const FsCreds& c) override;
  Status Mkdir(std::string_view name, mode_t mode, const FsCreds& c) override;
  Status Mknod(std::string_view name, mode_t mode, dev_t dev, const FsCreds& c) override;
  Status Symlink(std::string_view name, std::string_view target, const FsCreds& c) override;
  Status Link(std::string_view name, const std::shared_ptr<Inode>& target) override;
  Status Unlink(std::string_view name) override;
  Status Rmdir(std::string_view name) override;
  Status Rename(std::string_view oldname, Inode& newdir, std::string_view newname,
                unsigned flags) override;
  Result<std::string> Readlink() override;
  Status SetAttr(const SetAttrRequest& req) override;
  // Extended attributes live in the upper copy; lower (host) objects show
  // none (host xattrs are not exposed), so setting one copies up first and
  // removing one from a lower-only object is ENODATA without a copy-up.
  Result<std::string> GetXattr(std::string_view name) override;
  Result<std::vector<std::string>> ListXattr() override;
  Status SetXattr(std::string_view name, std::string_view value, int flags) override;
  Status RemoveXattr(std::string_view name) override;
  Result<struct statfs> StatFs() override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  const void* FsId() const override { return fs_.get(); }
  // Lookups make a new OverlayInode each: the key is the lower object's
  // host device and inode number where there is or was one (a copy-up
  // keeps it, for later lookups too), else the upper node's inode number.
  FileLockKey LockKey() override;
  // A lookup in the lower layer is a host openat.
  bool KeepDentryCached() const override { return true; }

  // FS_IOC_GETFLAGS/FS_IOC_SETFLAGS (ovl_fileattr_get()/_set()): the
  // upper copy's inode flags (TmpfsInode::FsFlags); a lower object shows
  // none, and setting them copies it up first.
  unsigned FsFlags();
  Status SetFsFlags(unsigned flags);
  // open(2)'s O_TMPFILE in this directory (ovl_tmpfile()): the directory
  // is copied up and the nameless file made in the upper layer
  // (TmpfsInode::NewTmpFile).
  Result<std::shared_ptr<Inode>> NewTmpFile(mode_t mode, const FsCreds& c, bool linkable);
  // Makes sure this object has an upper copy (parents first).
  Status CopyUp();
  std::shared_ptr<TmpfsInode> upper();
  const InodeRef& lower() const { return lower_; }

 private:
  // The child as OverlayInode (ENOENT for whiteouts).
  Result<std::shared_ptr<OverlayInode>> LookupChild(std::string_view name);
  // True if the lower layer shows `name` in this directory.
  bool LowerHas(std::string_view name);
  // Copies up this directory and returns its upper node.
  Result<std::shared_ptr<TmpfsInode>> UpperDir();
  // What an upper node numbered `upper_ino` shows when no lower object is
  // at hand: its origin's number if it was copied up, else its own, apart.
  ino_t UpperOnlyIno(ino_t upper_ino);

  std::shared_ptr<OverlayFs> fs_;
  std::shared_ptr<OverlayInode> parent_;
  std::string name_;
  std::mutex mu_;  // guards upper_ and serializes copy-up of this object
  std::shared_ptr<TmpfsInode> upper_;
  const InodeRef lower_;
  // lower_'s inode number once known (0: not yet), folded with its host
  // device (inode_numbers.h), shown for the upper copy too; it never
  // changes, and asking lower_ is a host fstatat. An
  // OverlayInode made by a lookup after the copy-up has no lower_ and
  // shows the same number, recorded by the copy-up (OverlayFs::origins).
  std::atomic<ino_t> lower_ino_{0};
};

// An overlay of `upper_root` (a tmpfs root) over `lower_root`.
std::shared_ptr<OverlayInode> NewOverlay(std::shared_ptr<TmpfsInode> upper_root,
                                         InodeRef lower_root);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_OVERLAY_OVERLAY_H_
