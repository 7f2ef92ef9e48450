// host_rw: a writable passthrough of a host directory, for the writable
// bind mounts of config.json (a Docker/Kubernetes volume): what the guest
// writes is on the host at once, and what the host changes is seen inside,
// as runc's bind mounts and runsc's gofer (directfs) give.
//
// The sentry makes the host calls itself, always relative to an fd it holds
// and never by a host path: every inode keeps an O_PATH fd opened from its
// parent's with openat(parent, name, O_PATH|O_NOFOLLOW) (the VFS never asks
// for "..", "." or a name with '/'; it resolves those and symlinks inside
// the sandbox), and creates, removes and renames are mkdirat/unlinkat/
// renameat2/linkat/symlinkat on a parent's fd. A symlink in the volume that
// points at /etc (or "..") is followed by the VFS inside the sandbox, never
// by the host; a directory renamed during a walk takes the walk's fds with
// it, inside the volume. Changes to an existing inode (chmod, chown,
// utimes, truncate, a reopen for I/O) go through /proc/self/fd/N of its
// O_PATH fd, which reaches exactly that inode: a magic link is no path.
//
// New files are the guest's: chowned to the creating fsuid/fsgid where the
// sentry may (CAP_CHOWN, kept for sandboxes with writable binds), else as
// the host gave them; their mode is set exactly (no host umask).
//
// Host devices and sockets in the volume are not opened (EACCES, ENXIO),
// nor devices made (mknod of a device node is EPERM). A FIFO or a unix
// socket the guest makes there (mkfifo(3), bind(2)) is a name on the host
// (mknodat relative to the directory's fd), which another container of
// the pod and the host see; the sentry never opens either on the host: the
// FIFO's pipe and the socket are the sentry's own, found by the host file's
// device and inode (vfs.cc's OpenFifo, unix_socket.cc's PathKey), so two
// containers of one pod meet through it, while a host process that opens
// the FIFO or connects to the socket reaches no guest. Host pseudo file
// systems mounted below the source show as empty directories (host.h,
// IsHostPseudoFs).
//
// A directory, FIFO or socket is made with a marker mode (sticky alone)
// and given to the guest (owner, mode) through an O_PATH fd of what is
// under its name then, only if that is still the object made: a racing
// rename must not hand another object to the creator (OwnMade).
//
// Only sandboxes with such a mount get the host calls this needs in their
// seccomp filter (seccomp/sentry_policy.h, SentryPolicy(host_writes)).
//
//   SV_ASSIGN_OR_RETURN(auto root, NewHostRwFs("/srv/volume"));  // absl::StatusOr
#ifndef SEEDVISOR_SENTRY_FS_HOST_HOST_RW_H_
#define SEEDVISOR_SENTRY_FS_HOST_HOST_RW_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sentry/fs/host/host.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class HostRwInode : public Inode {
 public:
  // Takes ownership of `path_fd` (an O_PATH fd). `fs`: the volume's
  // identity, shared by all of its inodes (rename and link stay inside it).
  HostRwInode(int path_fd, std::shared_ptr<const void> fs, bool hidden = false);
  ~HostRwInode() override;

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
  // user.* only, the host file's own (host_rw_xattr.cc).
  Result<std::string> GetXattr(std::string_view name) override;
  Result<std::vector<std::string>> ListXattr() override;
  Status SetXattr(std::string_view name, std::string_view value, int flags) override;
  Status RemoveXattr(std::string_view name) override;
  Result<struct statfs> StatFs() override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  // open(2)'s O_TMPFILE in this directory: the host makes the nameless
  // file (openat(2) of the directory's own fd with O_TMPFILE; EOPNOTSUPP
  // where the host filesystem has none), the guest's as Create's are.
  // `linkable`: Link may give it its first name (no O_EXCL, I_LINKABLE on
  // the host inode, which both of Link's ways honour).
  Result<std::shared_ptr<Inode>> NewTmpFile(mode_t mode, const FsCreds& c, bool linkable);
  const void* FsId() const override { return fs_.get(); }
  FileLockKey LockKey() override;

 private:
  // /proc/self/fd/N of fd_: this inode and nothing else.
  std::string SelfPath() const;
  // A name of this directory as a C string, or EINVAL for one the VFS
  // never gives (".", "..", '/', empty).
  static Result<std::string> Name(std::string_view name);

  const int fd_;
  const std::shared_ptr<const void> fs_;
  const bool hidden_;
};

// The host directory `path` (symlinks in it followed, as mount(2) follows a
// bind source) as a writable filesystem root.
absl::StatusOr<std::shared_ptr<HostRwInode>> NewHostRwFs(const std::string& path);

// The host regular file `path` as a writable root of its own (a writable
// file bind).
absl::StatusOr<std::shared_ptr<HostRwInode>> NewHostRwFile(const std::string& path);

// An open host regular file of a writable volume: HostFile's reads,
// seeks and ioctls, and writes. The host fd is this description's own (dup
// and fork share it, with its offset); O_APPEND writes append on the host
// (RWF_APPEND), atomically against every other writer, the host's
// included, whether it was set at open or by F_SETFL. A sandbox fork opens
// the file again for its copy of the description (AdoptInForkChild): the
// host file description, whose position an append reads back, is not
// shared with the seed (where the open is refused, the copy's appends
// leave that position alone and take the file's end as their offset).
class HostRwFile : public HostFile {
 public:
  HostRwFile(int flags, DentryRef d, int host_fd) : HostFile(flags, std::move(d), host_fd) {}
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<size_t> PWrite(Task& t, const char* buf, size_t len, int64_t offset) override;
  Status Truncate(int64_t length) override;
  Status Sync() override;
  bool DataImmutableInSandbox() const override { return false; }
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  // A fork's copy that could not open the file again shares the seed's
  // host file description: appends neither move nor read its position.
  std::atomic<bool> shared_position_{false};
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_HOST_HOST_RW_H_
