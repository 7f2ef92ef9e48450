#include "sentry/fs/host/host_rw.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sentry/fs/host/host.h"

namespace seedvisor::sentry {
namespace {

// A new object made in the directory `dir_fd` by `c`: its owner is the
// guest's fsuid, its group the fsgid, or the directory's for a setgid
// directory (the host gave it that already: inode_init_owner()). Changing
// the owner needs CAP_CHOWN, which a sentry without it does not have: the
// object stays as the host made it then. `fd` is the object (any fd of it,
// O_PATH too).
void OwnNew(int dir_fd, int fd, const FsCreds& c) {
  struct stat dir, st;
  if (fstat(dir_fd, &dir) != 0 || fstat(fd, &st) != 0) return;
  gid_t gid = (dir.st_mode & S_ISGID) ? st.st_gid : c.gid;
  if (st.st_uid == c.uid && st.st_gid == gid) return;
  (void)!fchownat(fd, "", c.uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

// The mode bits a guest may leave on a host object: never set-user-ID, and
// set-group-ID only where it means no privilege (a directory's, or a file
// without group execute: mandatory locking). The sentry ignores both on
// exec, but the HOST honours them: a guest root's `chmod 4755` of a
// root-owned copy of a shell would give any host user who can reach the
// volume a root shell (gVisor's gofer and runc with a user namespace give
// the same guarantee; runc without one does not).
mode_t HostSafeMode(mode_t mode, bool dir) {
  mode &= 07777 & ~S_ISUID;
  if (!dir && (mode & S_IXGRP)) mode &= ~S_ISGID;
  return mode;
}

// An O_PATH fd of exactly the object `fd` is open on.
int PathFdOf(int fd) {
  std::string p = absl::StrCat("/proc/self/fd/", fd);
  return open(p.c_str(), O_PATH | O_CLOEXEC);
}

// The mode mkdirat and mknodat make a directory, FIFO or socket with:
// sticky and no permission bit, which neither the guest (the final mode is
// set before its mkdir returns) nor the host leaves on an object. It marks
// the object made until OwnMade gives it its owner and mode.
constexpr mode_t kMakingMode = S_ISVTX;

// Gives the object just made as `name` in `dir_fd` (file type `type`) to
// the guest `c` (OwnNew) with mode `mode` (none for a symlink), if the
// object under the name now is the one made: mkdirat, mknodat and symlinkat
// return no fd, and between the call and the open a rename (the guest's own
// other thread, another container, the host) may have put another object
// there, which must not become the creator's (review 11: a root-owned
// directory of the volume renamed over a new one went to the guest's uid).
// The one made carries kMakingMode (a symlink: its target) and no other
// name (nlink); an owner and mode are set through an O_PATH fd of what was
// checked, never by the name again. Not ours: left alone (the guest's call
// made its object all the same; it is gone from the name).
void OwnMade(int dir_fd, const std::string& name, mode_t type, mode_t mode, const FsCreds& c,
             std::string_view target = {}) {
  int fd = openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;  // renamed or removed since
  struct stat st;
  // A directory has no subdirectory yet (nlink 2; btrfs counts 1).
  bool ours = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type &&
              st.st_nlink <= (type == S_IFDIR ? 2u : 1u);
  if (ours && type == S_IFLNK) {
    // A symlink's mode means nothing; one with the same target under the
    // name is taken for ours: its owner is no access to anything (the
    // rename that put it there needed the same rights as removing it).
    char buf[4096];
    ssize_t n = readlinkat(fd, "", buf, sizeof(buf));
    ours = n >= 0 && std::string_view(buf, static_cast<size_t>(n)) == target;
  } else if (ours) {
    // A setgid parent's new directory inherits S_ISGID (inode_init_owner()).
    mode_t bits = st.st_mode & 07777 & ~(type == S_IFDIR ? S_ISGID : 0);
    ours = bits == kMakingMode;
  }
  if (ours) {
    OwnNew(dir_fd, fd, c);
    if (type != S_IFLNK) {
      // Through the magic link (an O_PATH fd has no fchmod), after the
      // chown, which would clear S_ISGID.
      std::string self = absl::StrCat("/proc/self/fd/", fd);
      mode_t keep = type == S_IFDIR ? (st.st_mode & S_ISGID) : 0;
      (void)!fchmodat(AT_FDCWD, self.c_str(), mode | keep, 0);
    }
  }
  close(fd);
}

}  // namespace

HostRwInode::HostRwInode(int path_fd, std::shared_ptr<const void> fs, bool hidden)
    : fd_(path_fd), fs_(std::move(fs)), hidden_(hidden) {}
HostRwInode::~HostRwInode() { close(fd_); }

std::string HostRwInode::SelfPath() const { return absl::StrCat("/proc/self/fd/", fd_); }

Result<std::string> HostRwInode::Name(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return Errno(EINVAL);  // the VFS never asks this
  }
  return std::string(name);
}

Result<struct stat> HostRwInode::Stat() {
  struct stat st;
  if (fstatat(fd_, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Errno(errno);
  return st;
}

FileLockKey HostRwInode::LockKey() {
  // The host file's: the same through every container's mount of the
  // volume and the read-only root (a pod's containers share its locks and
  // its unix socket names).
  auto st = Stat();
  if (!st.ok()) return FileLockKey{this, 0, 0};
  return FileLockKey{HostFilesKeySpace(), st->st_dev, st->st_ino};
}

Result<std::shared_ptr<Inode>> HostRwInode::Lookup(std::string_view name) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(ENOENT);
  int fd = openat(fd_, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno(errno);
  return std::shared_ptr<Inode>(
      std::make_shared<HostRwInode>(fd, fs_, IsHiddenHostMount(fd_, fd)));
}

Result<std::vector<DirEntry>> HostRwInode::ReadDir() {
  if (hidden_) return std::vector<DirEntry>{};
  return ReadHostDir(fd_);
}

Result<std::shared_ptr<Inode>> HostRwInode::Create(std::string_view name, mode_t mode,
                                                    const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(EACCES);
  int fd = openat(fd_, n.c_str(), O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                  HostSafeMode(mode, false));
  if (fd < 0) return Errno(errno);
  OwnNew(fd_, fd, c);  // the fd of what O_CREAT|O_EXCL made: no race
  // The mode asked, not cut by the sentry's umask.
  (void)!fchmod(fd, HostSafeMode(mode, false));
  int path_fd = PathFdOf(fd);
  int e = errno;
  close(fd);
  if (path_fd < 0) return Errno(e);
  return std::shared_ptr<Inode>(std::make_shared<HostRwInode>(path_fd, fs_));
}

Result<std::shared_ptr<Inode>> HostRwInode::NewTmpFile(mode_t mode, const FsCreds& c,
                                                        bool linkable) {
  if (hidden_) return Errno(EACCES);
  // Relative to the directory's own fd ("." of it): no host path. The
  // kernel's O_TMPFILE carries O_DIRECTORY (glibc's macro has both).
  int fd = openat(fd_, ".", O_TMPFILE | O_RDWR | O_CLOEXEC | (linkable ? 0 : O_EXCL),
                  HostSafeMode(mode, false));
  if (fd < 0) return Errno(errno);
  OwnNew(fd_, fd, c);
  (void)!fchmod(fd, HostSafeMode(mode, false));  // not cut by the sentry's umask
  int path_fd = PathFdOf(fd);
  int e = errno;
  close(fd);
  if (path_fd < 0) return Errno(e);
  return std::shared_ptr<Inode>(std::make_shared<HostRwInode>(path_fd, fs_));
}

Status HostRwInode::Mkdir(std::string_view name, mode_t mode, const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(EACCES);
  if (mkdirat(fd_, n.c_str(), kMakingMode) != 0) return Errno(errno);
  OwnMade(fd_, n, S_IFDIR, HostSafeMode(mode, true), c);
  return {};
}

Status HostRwInode::Mknod(std::string_view name, mode_t mode, dev_t, const FsCreds& c) {
  mode_t type = mode & S_IFMT;
  if (type == 0 || type == S_IFREG) {
    SV_ASSIGN_OR_RETURN(auto made, Create(name, mode, c));
    (void)made;
    return {};
  }
  // Never a device: one made by the guest would be a host device that host
  // processes (or another container of the volume) open. A FIFO or socket
  // is only a name on the host (see the header); the sentry's filter
  // allows mknodat of these two types with no device number only.
  if (type != S_IFIFO && type != S_IFSOCK) return Errno(EPERM);
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(EACCES);
  if (mknodat(fd_, n.c_str(), type | kMakingMode, 0) != 0) return Errno(errno);
  OwnMade(fd_, n, type, HostSafeMode(mode, false), c);
  return {};
}

Status HostRwInode::Symlink(std::string_view name, std::string_view target, const FsCreds& c) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(EACCES);
  std::string t(target);
  if (symlinkat(t.c_str(), fd_, n.c_str()) != 0) return Errno(errno);
  OwnMade(fd_, n, S_IFLNK, 0, c, target);
  return {};
}

Status HostRwInode::Link(std::string_view name, const std::shared_ptr<Inode>& target) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(EACCES);
  auto* src = dynamic_cast<HostRwInode*>(target.get());
  if (src == nullptr || src->fs_ != fs_) return Errno(EXDEV);
  // AT_EMPTY_PATH: the object itself (linkat(2) asks CAP_DAC_READ_SEARCH
  // for it, which a rootless sentry lacks: then its /proc/self/fd link,
  // followed, which is the same object). The VFS checked may_linkat().
  if (linkat(src->fd_, "", fd_, n.c_str(), AT_EMPTY_PATH) == 0) return {};
  if (errno != ENOENT) return Errno(errno);
  if (linkat(AT_FDCWD, src->SelfPath().c_str(), fd_, n.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return Errno(errno);
  }
  return {};
}

Status HostRwInode::Unlink(std::string_view name) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(ENOENT);
  if (unlinkat(fd_, n.c_str(), 0) != 0) return Errno(errno);
  return {};
}

Status HostRwInode::Rmdir(std::string_view name) {
  SV_ASSIGN_OR_RETURN(std::string n, Name(name));
  if (hidden_) return Errno(ENOENT);
  if (unlinkat(fd_, n.c_str(), AT_REMOVEDIR) != 0) return Errno(errno);
  return {};
}

Status HostRwInode::Rename(std::string_view oldname, Inode& newdir, std::string_view newname,
                           unsigned flags) {
  SV_ASSIGN_OR_RETURN(std::string o, Name(oldname));
  SV_ASSIGN_OR_RETURN(std::string n, Name(newname));
  auto* nd = dynamic_cast<HostRwInode*>(&newdir);
  if (nd == nullptr || nd->fs_ != fs_) return Errno(EXDEV);
  if (hidden_ || nd->hidden_) return Errno(ENOENT);
  // RENAME_WHITEOUT makes a device node: not for the guest.
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Errno(EINVAL);
  if (syscall(SYS_renameat2, fd_, o.c_str(), nd->fd_, n.c_str(), flags) != 0) {
    return Errno(errno);
  }
  return {};
}

Result<std::string> HostRwInode::Readlink() {
  char buf[4096];
  ssize_t n = readlinkat(fd_, "", buf, sizeof(buf));
  if (n < 0) return Errno(errno == ENOENT ? EINVAL : errno);
  return std::string(buf, static_cast<size_t>(n));
}

Status HostRwInode::SetAttr(const SetAttrRequest& req) {
  // A host pseudo file system's root (sysfs honours root's chmod/chown) and
  // a host device node (a bind of the host's /dev) keep what the host gave
  // them: the guest cannot open them, nor hand them to a host user.
  if (hidden_) return Errno(EACCES);
  SV_ASSIGN_OR_RETURN(struct stat st, Stat());
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && (req.mode || req.uid || req.gid)) {
    return Errno(EPERM);
  }
  if (req.size) {
    if (S_ISDIR(st.st_mode)) return Errno(EISDIR);
    if (!S_ISREG(st.st_mode)) return Errno(EINVAL);
    int fd = open(SelfPath().c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return Errno(errno);
    int r = ftruncate(fd, *req.size);
    int e = errno;
    close(fd);
    if (r != 0) return Errno(e);
  }
  if (req.uid || req.gid) {
    uid_t uid = req.uid ? *req.uid : static_cast<uid_t>(-1);
    gid_t gid = req.gid ? *req.gid : static_cast<gid_t>(-1);
    if (fchownat(fd_, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Errno(errno);
  }
  if (req.mode) {
    // Through the magic link, which a symlink's O_PATH fd would leave for
    // its target: the VFS follows symlinks itself, so none gets here, but
    // refuse one as fchmodat(AT_SYMLINK_NOFOLLOW) does.
    if (S_ISLNK(st.st_mode)) return Errno(EOPNOTSUPP);
    if (fchmodat(AT_FDCWD, SelfPath().c_str(), HostSafeMode(*req.mode, S_ISDIR(st.st_mode)), 0) !=
        0) {
      return Errno(errno);
    }
  }
  if (req.atime || req.mtime) {
    timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (req.atime) ts[0] = *req.atime;
    if (req.mtime) ts[1] = *req.mtime;
    if (utimensat(fd_, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return Errno(errno);
  }
  return {};
}

Result<struct statfs> HostRwInode::StatFs() {
  struct statfs s;
  if (fstatfs(fd_, &s) != 0) return Errno(errno);
  return s;
}

Result<FileRef> HostRwInode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  SV_ASSIGN_OR_RETURN(struct stat st, Stat());
  if (S_ISDIR(st.st_mode)) return Inode::Open(d, flags);
  // Host devices, FIFOs and sockets stay out of reach of the guest.
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return Errno(EACCES);
  if (!S_ISREG(st.st_mode)) return Errno(ENXIO);
  int acc = flags & O_ACCMODE;
  if (acc == O_ACCMODE) acc = O_RDONLY;  // ioctl-only: no read or write through it
  // O_APPEND is the description's (HostRwFile::Write); O_TRUNC the VFS's.
  int fd = open(SelfPath().c_str(), acc | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Errno(errno);
  return FileRef(std::make_shared<HostRwFile>(flags, d, fd));
}

absl::StatusOr<std::shared_ptr<HostRwInode>> NewHostRwFs(const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("host directory ", path, ": ", strerror(errno)));
  }
  return std::make_shared<HostRwInode>(fd, std::make_shared<char>(0));
}

absl::StatusOr<std::shared_ptr<HostRwInode>> NewHostRwFile(const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat("host file ", path, ": ", strerror(errno)));
  }
  auto root = std::make_shared<HostRwInode>(fd, std::make_shared<char>(0));
  if (root->Type() != S_IFREG) {
    return absl::InvalidArgumentError(
        absl::StrCat("host file ", path, ": not a regular file or directory"));
  }
  return root;
}

}  // namespace seedvisor::sentry
