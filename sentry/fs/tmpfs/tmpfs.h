// tmpfs: an in-memory filesystem. Each regular file's data lives in its own
// memfd, so read/write are pread/pwrite on it and the platform can mmap it.
// A file takes its memfd when it first gets data (a write, a truncate to a
// non-zero size, fallocate) or is mapped: an empty file holds no host fd,
// so a guest may have as many empty files open as its RLIMIT_NOFILE allows
// (LTP open04, creat05), far more than the sentry's own fd limit.
// That memfd is the exception to "guest data lives in sentry memory" (the
// platform maps it into stubs): after a sandbox fork the seed and its forks
// hold the same host memfd, so it is copy-on-write by hand — each sandbox
// copies a file's data into a memfd of its own before it first changes it
// or maps it MAP_SHARED (WritableMemfd, AdoptTmpfsInForkChild below).
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

#include "absl/status/status.h"
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
  // A file without names is ENOENT, but for an O_TMPFILE one's first.
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

  // FS_IOC_GETFLAGS/FS_IOC_SETFLAGS (shmem_fileattr_get()/_set()): the
  // inode flags tmpfs keeps. SetFsFlags is EOPNOTSUPP for any other
  // flag; the caller checked ownership and CAP_LINUX_IMMUTABLE. An
  // immutable object (FS_IMMUTABLE_FL) is not opened for writing, changed
  // (attributes, xattrs), linked, renamed or removed, and nothing is made
  // or removed in such a directory; an append-only one (FS_APPEND_FL)
  // opens for writing only with O_APPEND and never with O_TRUNC, keeps
  // its size, attributes and names, and in such a directory names may
  // be made but none removed (EPERM: inode_permission(), may_open(),
  // may_delete(), vfs_link(), notify_change(), xattr_permission()).
  // <linux/fs.h>'s values (checked in tmpfs.cc; that header is not
  // included here: it clashes with <sys/mount.h>).
  static constexpr unsigned kImmutableFl = 0x10, kAppendFl = 0x20, kNodumpFl = 0x40,
                            kNoatimeFl = 0x80;
  static constexpr unsigned kModifiableFlags = kImmutableFl | kAppendFl | kNodumpFl | kNoatimeFl;
  unsigned FsFlags();
  Status SetFsFlags(unsigned flags);

  // open(2)'s O_TMPFILE in this directory (shmem_tmpfile()): a new regular
  // file of this filesystem with no name (nlink 0), owned as Create's.
  // `linkable` (no O_EXCL: I_LINKABLE): one Link may name it.
  Result<std::shared_ptr<TmpfsInode>> NewTmpFile(mode_t mode, const FsCreds& c, bool linkable);

  // The memfd of a regular file, for reading: its content is this file's,
  // but after a sandbox fork it may be shared with other sandboxes. The fd
  // number never changes once set (an unshare dup3()s the copy onto it), so
  // a reader racing with an unshare reads the same bytes. -1 for a file
  // that never had data (it reads as empty) and for other types.
  int memfd() const { return memfd_.load(); }
  // The file's size: its memfd's, 0 without one.
  Result<int64_t> DataSize() const;
  // The memfd for a private mapping: made now for a file without one
  // (ENOSPC when the host fd budget is spent).
  Result<int> MappableMemfd();
  // The memfd for writing, truncating, fallocate or a MAP_SHARED mapping,
  // made now for a file without one (ENOSPC when the budget is spent):
  // if a sandbox fork happened since this sentry last owned it, the data is
  // first copied into a memfd of this sentry's own (holes stay holes, seals
  // are carried), so no other sandbox sees the change. O(file size), once
  // per file and fork, only for files that are written.
  Result<int> WritableMemfd();
  // In a seed after a sandbox fork, for a file it maps MAP_SHARED: the
  // forks copied the data at once (TmpfsFile::UnshareMappedInForkChild), so
  // the memfd is this sentry's alone again; without this the next write
  // would copy it away from under the seed's own mappings.
  void KeepMemfdAfterFork();
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
  // Held across each write (the inode lock of generic_file_write_iter()),
  // so that an O_APPEND write finds the end and writes there in one step:
  // appenders through different open files never overwrite each other.
  std::mutex& write_mu() { return write_mu_; }

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
  // A new node of this directory's filesystem for `c`, its group as a
  // child of this directory gets it. Under mu_.
  std::shared_ptr<TmpfsInode> NewNodeLocked(mode_t mode, const FsCreds& c);
  Status CheckWritableDir();
  bool IsDir() const { return S_ISDIR(st_.st_mode); }

  // WritableMemfd with mu_ held.
  Status UnshareLocked();
  // A regular file's memfd_ if it has none yet: ENOSPC when the host fd
  // budget (TmpfsMemfdLimit) is spent or the host refuses.
  Status EnsureMemfdLocked();
  // A new regular file's memfd_, this sentry's alone (tmpfs_memfd.cc);
  // memfd_ stays -1 when the host fd budget (TmpfsMemfdLimit) is spent or
  // the host refuses. CloseMemfd gives it back.
  void NewMemfd();
  void CloseMemfd();

  std::shared_ptr<TmpfsFs> fs_;
  std::mutex mu_;
  std::mutex write_mu_;
  struct stat st_ {};
  // Set under mu_ (once, or by an unshare's dup3 onto the same number);
  // read without it by memfd().
  std::atomic<int> memfd_{-1};
  // The sandbox-fork generation (tmpfs_memfd.cc) in which memfd_ became this
  // sentry's alone; older means shared with a seed or fork. Guarded by mu_.
  uint64_t memfd_gen_ = 0;
  bool sealing_ = false;  // memfd_ takes seals (MFD_ALLOW_SEALING); guarded by mu_
  std::atomic<bool> is_memfd_{false};
  std::string target_;  // symlinks
  bool linkable_ = false;  // an O_TMPFILE file Link may name (I_LINKABLE); guarded by mu_
  unsigned fs_flags_ = 0;  // FS_*_FL of kModifiableFlags; guarded by mu_
  // EPERM if this object is immutable or append-only (its name may not
  // go, its attributes not change). Under mu_.
  Status CheckNotPinnedLocked() const;
  // EPERM if this directory is immutable (nothing made or removed in it)
  // or, with `removing`, append-only. Under mu_.
  Status CheckDirChangeLocked(bool removing) const;
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
  Result<int> MappableFd() override { return inode_->MappableMemfd(); }
  Result<int> MappableFdForWrite() override { return inode_->WritableMemfd(); }
  absl::Status UnshareMappedInForkChild() override;
  void KeepMappedAfterFork() override { inode_->KeepMemfdAfterFork(); }
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  const std::shared_ptr<TmpfsInode>& inode() const { return inode_; }

  // The same without a task (tests, copy-up).
  Result<size_t> ReadAt(char* buf, size_t len, int64_t offset);
  Result<size_t> WriteAt(const char* buf, size_t len, int64_t offset);

 private:
  std::shared_ptr<TmpfsInode> inode_;
};

// The host fds that tmpfs data may hold. Every regular tmpfs file with data
// (and every memfd, System V segment and shared anonymous mapping, which
// are tmpfs files too) holds a host memfd, so without a bound a guest that
// makes files would spend the sentry's RLIMIT_NOFILE and leave it no fd
// for its own work: a new task's wakeup fd, a stub, a pipe. The budget is
// the sentry's soft RLIMIT_NOFILE less a reserve (a quarter, at least
// kTmpfsMemfdReserve, at most half); beyond it a file's first data is
// ENOSPC, as a full tmpfs (shmem_alloc_inode()'s callers), and the callers
// that Linux fails otherwise say so (memfd_create ENFILE, mmap ENOMEM).
inline constexpr int64_t kTmpfsMemfdReserve = 1024;
int64_t TmpfsMemfdLimit();
// The memfds tmpfs files hold now.
int64_t TmpfsMemfds();

// Sandbox fork (sentry/sfork): called once in the forked sentry before its
// guest runs. From then on every tmpfs memfd that exists — reachable through
// open files, mappings or only through dentries (a tmpfs mount, the
// overlay's upper layer) — counts as shared, in the fork AND in the seed it
// came from: each copies a file before its first write (WritableMemfd). The
// fork's cost does not grow with the bytes in tmpfs. Not async-signal-safe
// (it maps one page); runs on the child's only thread.
absl::Status AdoptTmpfsInForkChild();

// lseek(2) on a host fd-backed file with SEEK_DATA/SEEK_HOLE support.
Result<int64_t> SeekHostFd(int fd, int64_t& offset, int64_t off, int whence);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_TMPFS_TMPFS_H_
