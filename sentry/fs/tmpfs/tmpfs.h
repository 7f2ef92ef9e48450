// tmpfs: an in-memory filesystem. Each regular file's data lives in its own
// memfd, so read/write are pread/pwrite on it and the platform can mmap it.
//
//   auto root = NewTmpfs(0755);  // the root directory inode
//   SV_ASSIGN_OR_RETURN(auto f, root->Create("a", 0644, creds));
//
// Directories also keep the overlay's bookkeeping (whiteouts and the opaque
// flag) when this tmpfs is an overlay's upper layer; a plain tmpfs never sets
// them.
#ifndef SEEDVISOR_SENTRY_FS_TMPFS_TMPFS_H_
#define SEEDVISOR_SENTRY_FS_TMPFS_TMPFS_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "sentry/vfs/inode.h"
#include "sentry/vfs/xattr.h"

namespace seedvisor::sentry {

class TmpfsFs;

class TmpfsInode : public Inode {
 public:
  // `mode` includes the S_IFMT bits.
  TmpfsInode(std::shared_ptr<TmpfsFs> fs, mode_t mode, uid_t uid, gid_t gid);
  ~TmpfsInode() override;

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
  Result<std::string> GetXattr(std::string_view name) override;
  Result<std::vector<std::string>> ListXattr() override;
  Status SetXattr(std::string_view name, std::string_view value, int flags) override;
  Status RemoveXattr(std::string_view name) override;
  Result<struct statfs> StatFs() override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  const void* FsId() const override { return fs_.get(); }

  // The memfd of a regular file (-1 otherwise).
  int memfd() const { return memfd_; }
  // memfd_create(2): marks this new, empty regular file as a memfd. With
  // `allow_sealing` its data moves to a host memfd that takes seals, so
  // F_ADD_SEALS/F_GET_SEALS go straight to the host memfd and the host
  // enforces them on writes, truncation, fallocate and the platform's
  // mappings. Without it the host memfd reports F_SEAL_SEAL, as Linux's
  // memfds without MFD_ALLOW_SEALING (and tmpfs files) do.
  Status MakeMemfd(bool allow_sealing);
  bool is_memfd() const { return is_memfd_.load(); }
  // Marks the file modified (mtime/ctime = now).
  void Touch();

  // ---- Overlay support ----
  // The typed child (ENOENT, also for whiteouts).
  Result<std::shared_ptr<TmpfsInode>> LookupNode(std::string_view name);
  bool IsWhiteout(std::string_view name);
  void AddWhiteout(std::string_view name);
  bool opaque();
  void set_opaque(bool v);
  // Removes a child directory even if it still holds whiteouts.
  Status RmdirForce(std::string_view name);
  // Adds an existing node under `name` (EEXIST if taken).
  Status AddChild(std::string_view name, std::shared_ptr<TmpfsInode> child);

 private:
  Result<std::shared_ptr<TmpfsInode>> NewChild(std::string_view name, mode_t mode,
                                               const FsCreds& c);
  Status CheckWritableDir();
  bool IsDir() const { return S_ISDIR(st_.st_mode); }

  std::shared_ptr<TmpfsFs> fs_;
  std::mutex mu_;
  struct stat st_ {};
  int memfd_ = -1;
  std::atomic<bool> is_memfd_{false};
  std::string target_;  // symlinks
  std::map<std::string, std::shared_ptr<TmpfsInode>, std::less<>> children_;
  std::set<std::string, std::less<>> whiteouts_;
  bool opaque_ = false;
  XattrMap xattrs_;
};

// A new tmpfs; returns its root directory.
std::shared_ptr<TmpfsInode> NewTmpfs(mode_t mode = 01777, uid_t uid = 0, gid_t gid = 0);

// The open file of a tmpfs regular file.
class TmpfsFile : public FileDescription {
 public:
  TmpfsFile(int flags, DentryRef d, std::shared_ptr<TmpfsInode> inode);
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<size_t> PWrite(Task& t, const char* buf, size_t len, int64_t offset) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Result<struct stat> Stat() override;
  Status Truncate(int64_t length) override;
  Status Sync() override { return {}; }
  Result<int> MappableFd() override { return inode_->memfd(); }
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  const std::shared_ptr<TmpfsInode>& inode() const { return inode_; }

  // The same without a task (tests, copy-up).
  Result<size_t> ReadAt(char* buf, size_t len, int64_t offset);
  Result<size_t> WriteAt(const char* buf, size_t len, int64_t offset);

 private:
  std::shared_ptr<TmpfsInode> inode_;
};

// lseek(2) on a host fd-backed file with SEEK_DATA/SEEK_HOLE support.
Result<int64_t> SeekHostFd(int fd, int64_t& offset, int64_t off, int whence);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_TMPFS_TMPFS_H_
