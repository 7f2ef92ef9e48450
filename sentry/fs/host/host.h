// host: a read-only passthrough of a host directory (the sandbox's lower root).
//
// Every inode holds an O_PATH host fd opened from its parent's fd with
// openat(parent, name, O_PATH|O_NOFOLLOW): the sentry never hands the host a
// path string, so neither "..", a symlink nor a /proc magic link can leave the
// root (the VFS resolves those itself, inside the sandbox).
//
// A host mount of a pseudo file system below the root (proc, sysfs,
// tracefs, debugfs, cgroup, bpf, autofs, ...: IsHostPseudoFs) is not
// entered: it shows as an empty directory, the way a mount point looks in
// a lower layer of Linux's overlayfs, which never crosses mounts. Its files
// describe or drive the host kernel (the host's processes, its trace
// buffer), and reading some of them blocks forever (trace_pipe, kmsg). A
// root of a pseudo file system given on purpose (a bind mount's source)
// is shown as it is.
//
//   SV_ASSIGN_OR_RETURN(auto root, NewHostFs("/"));   // absl::StatusOr
#ifndef SEEDVISOR_SENTRY_FS_HOST_HOST_H_
#define SEEDVISOR_SENTRY_FS_HOST_HOST_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class HostInode : public Inode {
 public:
  // Takes ownership of `path_fd` (an O_PATH fd). `hidden`: the root of a
  // host pseudo file system mounted below the sandbox's root, shown as an
  // empty directory that nothing opens.
  explicit HostInode(int path_fd, bool hidden = false);
  ~HostInode() override;

  Result<struct stat> Stat() override;
  Result<std::shared_ptr<Inode>> Lookup(std::string_view name) override;
  Result<std::vector<DirEntry>> ReadDir() override;
  Result<std::string> Readlink() override;
  Result<struct statfs> StatFs() override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  bool ReadOnlyFs() const override { return true; }
  bool KeepDentryCached() const override { return true; }  // a lookup is an openat
  // The host's device and inode number: each lookup makes a HostInode, and
  // every one of one host file (through any mount of it) holds its locks.
  FileLockKey LockKey() override;

  // A new host fd open O_RDONLY on this (regular) file, for copy-up.
  Result<int> OpenForRead();

 private:
  const int fd_;
  const bool hidden_;
  // A symlink's target, once read: fd_ pins the host inode, and a symlink's
  // target cannot change (a new target is a new inode). glibc's check of
  // /etc/localtime reads it on every localtime() call.
  std::mutex link_mu_;  // guards link_
  std::optional<std::string> link_;
};

// Whether statfs(2)'s f_type names a pseudo file system: one whose files
// are views of the host kernel, not stored data.
bool IsHostPseudoFs(long f_type);

// Shared with the writable passthrough (host_rw.h):
// The key space of every host file's locks and unix socket names
// (FileLockKey::fs): one host file is one key through any mount of it, the
// read-only root's and every container's volume alike.
const void* HostFilesKeySpace();
// The entries of the host directory of O_PATH fd `fd`, without "." and "..".
Result<std::vector<DirEntry>> ReadHostDir(int fd);
// Whether `fd`, looked up in the directory `parent_fd`, is the root of a
// host pseudo file system mounted there (shown as an empty directory).
bool IsHiddenHostMount(int parent_fd, int fd);
// ioctl(2) of a host regular file `fd` read at `offset`: FIONREAD; ENOTTY
// for the rest.
Result<long> HostFileIoctl(Task& t, int fd, int64_t offset, unsigned long cmd, UserAddr arg);

// The host directory `path` as a read-only filesystem root.
absl::StatusOr<std::shared_ptr<HostInode>> NewHostFs(const std::string& path);

// The host regular file `path` (symlinks followed, as mount(2) follows a
// bind source) as a read-only root of its own: a file bind mount such as the
// /etc/resolv.conf containerd's CRI plugin gives every pod.
absl::StatusOr<std::shared_ptr<HostInode>> NewHostFile(const std::string& path);

// A regular file open read-only on the host. Its offset is the
// description's own (pread/pwrite at offset_), never the host fd's.
class HostFile : public FileDescription {
 public:
  HostFile(int flags, DentryRef d, int host_fd);  // owns host_fd
  ~HostFile() override;
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Status Sync() override { return {}; }
  Result<int> MappableFd() override { return fd_; }
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  bool DataImmutableInSandbox() const override { return true; }  // the host's, read-only

 protected:
  const int fd_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_HOST_HOST_H_
