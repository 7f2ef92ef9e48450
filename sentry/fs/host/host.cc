#include "sentry/fs/host/host.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {

bool IsHostPseudoFs(long f_type) {
  switch (static_cast<unsigned long>(f_type) & 0xffffffffUL) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case TRACEFS_MAGIC:
    case DEBUGFS_MAGIC:
    case SECURITYFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case BPF_FS_MAGIC:
    case PSTOREFS_MAGIC:
    case EFIVARFS_MAGIC:
    case BINFMTFS_MAGIC:
    case SELINUX_MAGIC:
    case SMACK_MAGIC:
    case DEVPTS_SUPER_MAGIC:
    case 0x19800202:          // mqueue (MQUEUE_MAGIC, ipc/mqueue.c)
    case NSFS_MAGIC:
    case AUTOFS_SUPER_MAGIC:  // a lookup below it mounts (or waits for) something
    case 0x62656570:          // configfs (CONFIGFS_MAGIC, not in linux/magic.h)
    case 0x65735543:          // fusectl (FUSE_CTL_SUPER_MAGIC, fs/fuse/control.c)
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::shared_ptr<HostInode>> NewHostFs(const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("host root ", path, ": ", strerror(errno)));
  }
  return std::make_shared<HostInode>(fd);
}

absl::StatusOr<std::shared_ptr<HostInode>> NewHostFile(const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return absl::InvalidArgumentError(absl::StrCat("host file ", path, ": ", strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("host file ", path, ": not a regular file or directory"));
  }
  return std::make_shared<HostInode>(fd);
}

HostInode::HostInode(int path_fd, bool hidden) : fd_(path_fd), hidden_(hidden) {}
HostInode::~HostInode() { close(fd_); }

Result<struct stat> HostInode::Stat() {
  struct stat st;
  if (fstatat(fd_, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Errno(errno);
  return st;
}

const void* HostFilesKeySpace() {
  static const char kHostFiles = 0;
  return &kHostFiles;
}

FileLockKey HostInode::LockKey() {
  auto st = Stat();
  if (!st.ok()) return FileLockKey{this, 0, 0};
  return FileLockKey{HostFilesKeySpace(), st->st_dev, st->st_ino};
}

Result<std::shared_ptr<Inode>> HostInode::Lookup(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return Errno(EINVAL);  // the VFS never asks this
  }
  if (hidden_) return Errno(ENOENT);
  std::string n(name);
  int fd = openat(fd_, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno(errno);
  return std::shared_ptr<Inode>(std::make_shared<HostInode>(fd, IsHiddenHostMount(fd_, fd)));
}

bool IsHiddenHostMount(int parent_fd, int fd) {
  // A mount point: its root is on another device than this directory.
  // Directories only: the host mounts pseudo file systems on directories,
  // and a lookup of a plain file stays one fstat cheaper.
  struct stat st, here;
  struct statfs sfs;
  return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && fstat(parent_fd, &here) == 0 &&
         st.st_dev != here.st_dev && fstatfs(fd, &sfs) == 0 && IsHostPseudoFs(sfs.f_type);
}

Result<std::vector<DirEntry>> HostInode::ReadDir() {
  if (hidden_) return std::vector<DirEntry>{};
  return ReadHostDir(fd_);
}

Result<std::vector<DirEntry>> ReadHostDir(int fd) {
  int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno(errno);
  std::vector<DirEntry> out;
  alignas(8) char buf[16384];
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
    if (n < 0) {
      int e = errno;
      close(dfd);
      return Errno(e);
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      uint64_t ino;
      uint16_t reclen;
      memcpy(&ino, buf + off, 8);
      memcpy(&reclen, buf + off + 16, 2);
      uint8_t type = static_cast<uint8_t>(buf[off + 18]);
      std::string name(buf + off + 19);
      if (name != "." && name != "..") out.push_back({std::move(name), ino, type});
      off += reclen;
    }
  }
  close(dfd);
  return out;
}

Result<std::string> HostInode::Readlink() {
  std::lock_guard l(link_mu_);
  if (link_) return *link_;
  char buf[4096];
  ssize_t n = readlinkat(fd_, "", buf, sizeof(buf));
  if (n < 0) return Errno(errno == ENOENT ? EINVAL : errno);
  link_.emplace(buf, static_cast<size_t>(n));
  return *link_;
}

Result<struct statfs> HostInode::StatFs() {
  struct statfs s;
  if (fstatfs(fd_, &s) != 0) return Errno(errno);
  return s;
}

Result<int> HostInode::OpenForRead() {
  if (hidden_) return Errno(EACCES);
  // Reopening our own O_PATH fd through /proc/self/fd reaches exactly this
  // inode and nothing else.
  std::string p = absl::StrCat("/proc/self/fd/", fd_);
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Errno(errno);
  return fd;
}

Result<FileRef> HostInode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  SV_ASSIGN_OR_RETURN(struct stat st, Stat());
  if (S_ISDIR(st.st_mode)) return Inode::Open(d, flags);
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return Errno(EROFS);
  // Host devices, fifos and sockets stay out of reach of the guest.
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return Errno(EACCES);
  if (!S_ISREG(st.st_mode)) return Errno(ENXIO);
  SV_ASSIGN_OR_RETURN(int fd, OpenForRead());
  return FileRef(std::make_shared<HostFile>(flags, d, fd));
}

// ---------------------------------------------------------------- HostFile

HostFile::HostFile(int flags, DentryRef d, int host_fd)
    : FileDescription(flags, std::move(d)), fd_(host_fd) {}
HostFile::~HostFile() { close(fd_); }

Result<size_t> HostFile::Read(Task&, char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  ssize_t n = pread(fd_, buf, len, offset_);
  if (n < 0) return Errno(errno);
  offset_ += n;
  return static_cast<size_t>(n);
}

Result<size_t> HostFile::Write(Task&, const char*, size_t) { return Errno(EBADF); }

Result<size_t> HostFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  ssize_t n = pread(fd_, buf, len, offset);
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Result<int64_t> HostFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  return SeekHostFd(fd_, offset_, offset, whence);
}

Result<long> HostFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  std::lock_guard l(offset_mu_);
  return HostFileIoctl(t, fd_, offset_, cmd, arg);
}

Result<long> HostFileIoctl(Task& t, int fd, int64_t offset, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    struct stat st;
    if (fstat(fd, &st) != 0) return Errno(errno);
    int n = st.st_size > offset ? static_cast<int>(st.st_size - offset) : 0;
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

}  // namespace seedvisor::sentry
