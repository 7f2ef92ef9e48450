// Vfs: the sandbox's mount table and path resolution.
//
// The sentry resolves every guest path itself, one component at a time: ".."
// at the root stays there, absolute symlinks restart at the sandbox root, at
// most 40 symlinks are followed (ELOOP), mount points are crossed, and every
// directory searched needs X permission for the caller. Filesystems only
// ever see single names.
//
//   SV_ASSIGN_OR_RETURN(auto vfs, Vfs::Create(kernel, {.host_root = "/"}));
//   task.set_fs(vfs->NewFsContext());
//   SV_ASSIGN_OR_RETURN(FileRef f, vfs->OpenAt(task, AT_FDCWD, "/etc/passwd", O_RDONLY, 0));
//
// The mount table: / is an overlay (tmpfs over the read-only host root),
// /proc is proc, /dev is dev, /dev/shm is a tmpfs. /tmp is part of the root
// overlay, so writes to it land in the upper tmpfs.
#ifndef SEEDVISOR_SENTRY_VFS_VFS_H_
#define SEEDVISOR_SENTRY_VFS_VFS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sentry/vfs/file.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/inode.h"
#include "sentry/vfs/landlock.h"
#include "sentry/vfs/mount_point_map.h"

namespace seedvisor::sentry {

class Kernel;
class PidNamespace;
class Task;

struct VfsOptions {
  std::string host_root = "/";
  // OCI root.readonly: the root mount is "ro" (EROFS for every change).
  bool read_only_root = false;
};

// EROFS if `d` lies on a read-only mount (mnt_want_write() in Linux).
Status MountWritable(const DentryRef& d);

// A mount namespace (mount_namespaces(7)): which mounts its tasks see and
// where. Every task's FsContext names one; the sandbox starts with one (the
// Vfs's initial namespace, what the sandbox's own mounts go into).
// CLONE_NEWNS copies the caller's (Vfs::UnshareMountNamespace): the copy
// has the same mounts at the same places, and from then on a mount,
// unmount, move or remount in either is not seen in the other (every
// mount is private: no propagation, whatever MS_SHARED/MS_SLAVE say; see
// sys_mount.cc).
//
// The copy's mounts are its own Mount objects (clone_mnt(): the same
// filesystems and roots, new dentries), so each namespace may move them
// (MS_MOVE, pivot_root) and change their flags (MS_REMOUNT) alone; open
// files keep the mounts they were opened on, as in Linux.
// Guarded by the Vfs's mount lock.
class MountNamespace {
 public:
  MountNamespace(uint64_t ino, std::shared_ptr<MountPointNames> names)
      : ino_(ino), mounted_at_(std::move(names)) {}
  // Its mounts are kept while a dentry of theirs may be alive.
  ~MountNamespace();
  MountNamespace(const MountNamespace&) = delete;
  MountNamespace& operator=(const MountNamespace&) = delete;
  // Its nsfs inode number (/proc/PID/ns/mnt).
  uint64_t ino() const { return ino_; }
  const DentryRef& root() const { return root_mount_->root(); }

 private:
  friend class Vfs;
  const uint64_t ino_;
  std::shared_ptr<Mount> root_mount_;
  std::vector<std::shared_ptr<Mount>> mounts_;  // in mount order, root first
  MountPointMap mounted_at_;  // mount point -> mount (one place per mount)
  std::set<const Mount*> expiry_marks_;  // umount2(MNT_EXPIRE)
};

// Keeps unmounted mounts while a dentry of theirs may still point at
// them, and frees those nothing refers to any more (vfs_mounts.cc).
void BuryMounts(std::vector<std::shared_ptr<Mount>> gone);

// Who resolves, and from where: the caller's root, the directory relative
// paths start at, its credentials and umask.
struct ResolveContext {
  DentryRef root;
  DentryRef start;
  FsCreds creds;
  mode_t umask = 022;
  // The task resolving, if any: an open that must wait (a FIFO's) needs it.
  Task* task = nullptr;
  // The mount namespace whose mounts the walk crosses; null: the initial one.
  std::shared_ptr<MountNamespace> ns = nullptr;
  // The caller's Landlock domain (landlock(7)); null: unrestricted.
  std::shared_ptr<const LandlockDomain> landlock = nullptr;
};

// Permission `mask` (R_OK, W_OK, X_OK) on `d` for `c`'s credentials, or
// what its inode grants beyond its mode (Inode::ExtraAccess).
Status NeedAccess(const ResolveContext& c, const DentryRef& d, int mask);

class Vfs {
 public:
  // The full sandbox mount table, with /proc reading `k`'s tasks.
  static absl::StatusOr<std::unique_ptr<Vfs>> Create(Kernel& k, const VfsOptions& o);
  // The same without /proc (tests and tools that have no kernel).
  static absl::StatusOr<std::unique_ptr<Vfs>> CreateWithoutKernel(const VfsOptions& o);
  ~Vfs();

  // root = cwd = "/", umask 022, in the initial mount namespace.
  std::shared_ptr<FsContext> NewFsContext();
  const DentryRef& root() const { return init_ns_->root(); }
  const std::shared_ptr<MountNamespace>& init_mount_ns() const { return init_ns_; }
  Kernel* kernel() const { return kernel_; }

  // Mounts `m` on the directory `path` (resolved as root from "/"; created in
  // the root overlay if missing).
  absl::Status MountAt(std::string_view path, std::shared_ptr<Mount> m);
  // The mount whose root covers `d` in namespace `ns` (null: the initial
  // one), or null.
  Mount* MountedAt(const Dentry* d, const MountNamespace* ns = nullptr) const;
  // /proc/mounts of a task in `ns` (null: the initial namespace).
  std::string MountsText(const MountNamespace* ns = nullptr) const;
  // /proc/PID/mountinfo (proc(5)): id, parent id, dev, root within the
  // filesystem, mount point, options, "-", type, source, options.
  std::string MountInfoText(const MountNamespace* ns = nullptr) const;
  // ustat(2)'s user_get_super(): the root of a mount in `ns` whose
  // filesystem's device (what stat(2) shows for its root) is `dev`; null
  // if there is none.
  DentryRef MountRootWithDev(dev_t dev, const MountNamespace* ns = nullptr) const;
  // The mount's id as /proc/PID/mountinfo and fdinfo show it (0 if `m` is
  // not mounted, as for a pipe's or socket's internal mount).
  int MountId(const Mount* m, const MountNamespace* ns = nullptr) const;

  // ---- Mount namespaces (mount(2), umount2(2), CLONE_NEWNS) ----
  // copy_mnt_ns(): `fs` (a context no other task shares) moves to a new
  // namespace, nsfs inode `ino`, with a copy of every mount of its
  // namespace at the same mount points; its root and working directory
  // move to their copies (vfs_mount_tree.cc).
  void UnshareMountNamespace(FsContext& fs, uint64_t ino);
  // mount(MS_BIND) of `from` on `at` in `ns` (do_loopback()): a new mount
  // of from's filesystem whose root is `from`; `recursive` (MS_REC): with
  // copies of the mounts below `from` at their places (copy_tree()).
  // ENOTDIR/EISDIR as AttachIn.
  Status BindIn(MountNamespace& ns, const DentryRef& from, const DentryRef& at, bool recursive);
  // mount(MS_MOVE) (do_move_mount()): the mount whose root is `from` to
  // `to`, both in `ns`, with the mounts below it. EINVAL unless `from` is
  // a mount's root and both or neither are directories; ELOOP for the
  // namespace's root or a `to` below `from`.
  Status MoveIn(MountNamespace& ns, const DentryRef& from, const DentryRef& to);
  // pivot_root(2) of a caller whose root is `root`: new_root's mount takes
  // the place of root's (the namespace's root mount if it was that), and
  // root's mount goes onto `put_old`. pivot_root()'s checks and errors:
  // EINVAL for mounts outside `ns`, ENOENT for a deleted new_root, EBUSY
  // if new_root or put_old is on root's mount, EINVAL if root or new_root
  // is no mount's root, put_old is not below new_root or new_root not
  // below root. The caller moves tasks' roots and working directories.
  Status PivotRoot(MountNamespace& ns, const DentryRef& root, const DentryRef& new_root,
                   const DentryRef& put_old);
  // MS_REMOUNT of `m` (Mount::SetMountFlags) to the flags `flags` gives
  // for it, under the mount lock. `read_only` (MS_RDONLY): EBUSY while
  // files are open for writing on `m` (`superblock`: on any mount of its
  // filesystem), unless it is read-only already.
  Status Remount(Mount& m, const std::function<std::string(const Mount&)>& flags, bool superblock,
                 bool read_only);
  // The topmost mount's root on `d` in `ns` (LOOKUP_MOUNTPOINT: umount2's
  // "." or "/" is what is mounted there), or `d`.
  DentryRef TopMountOn(const MountNamespace& ns, DentryRef d) const {
    return CrossMounts(&ns, std::move(d));
  }
  // The initial namespace's nsfs inode (PROC_MNT_INIT_INO).
  static constexpr uint64_t kInitMountNsIno = 0xEFFFFFF8;
  // Attaches `m` on `at` in `ns` (on top of whatever is mounted there);
  // ENOTDIR/EISDIR if one is a directory and the other is not, ENOSPC past
  // kMaxMounts mounts in the namespace.
  Status AttachIn(MountNamespace& ns, const DentryRef& at, std::shared_ptr<Mount> m);
  // Unmounts the mount whose root is `root` in `ns`: EINVAL if `root` is
  // not the root of a mount of `ns` (or is the namespace's root); EBUSY if
  // mounts are attached below it or anything holds it (Mount::busy(),
  // checked under the mount lock), unless `detach` (MNT_DETACH), which
  // takes them along.
  Status DetachIn(MountNamespace& ns, const DentryRef& root, bool detach);
  // Whether the mount `m`, on which the caller took a hold (an open file,
  // a working directory) after finding it by a walk, is still mounted:
  // false if a umount2 without MNT_DETACH took it away meanwhile, unseen
  // by its busy check; the caller lets go and walks again (Linux's
  // legitimize_mnt() fails on MNT_SYNC_UMOUNT, and the walk restarts).
  bool HeldMountLive(const Mount* m) const;
  // Whether `d` is a mount point in `ns` (null: the initial one), through
  // whichever mount or copy reaches it (is_local_mountpoint(): rmdir,
  // unlink and rename of it are EBUSY there): a mount point with `d`'s
  // name, in the same directory, of the same object (SameMountPoint).
  // One hash lookup when no mount point anywhere has `d`'s name. Asked
  // under a RemovalLock.
  bool IsLocalMountPoint(const MountNamespace* ns, const Dentry& d) const;
  // Where `d` is a mount point, in every namespace; asked before it goes
  // (rmdir, unlink, replaced by rename), and then DetachMountsAt takes the
  // mounts there away, with what is mounted below them, as MNT_DETACH
  // does (detach_mounts()). Under a RemovalLock, held from the
  // IsLocalMountPoint check to DetachMountsAt.
  struct MountPlace {
    std::shared_ptr<MountNamespace> ns;
    std::shared_ptr<const Dentry> at;
  };
  std::vector<MountPlace> MountPlacesOf(const Dentry& d) const;
  void DetachMountsAt(const std::vector<MountPlace>& places);
  // Held by rmdir, unlink and rename from their mount point check until
  // the object is gone and the mounts on it with it; the operations that
  // put a mount on a dentry (AttachIn, BindIn, MoveIn, PivotRoot, a
  // namespace's copy, the sandbox's own mounts) exclude it, and refuse a
  // dentry whose object is gone (ENOENT, as lock_mount() refuses a
  // dentry that cant_mount()). So no mount lands on an object between
  // the check that found it no mount point and its removal.
  std::shared_lock<std::shared_mutex> RemovalLock() const {
    return std::shared_lock(mount_points_mu_);
  }
  // Whether `ns` has the mount `m` (check_mnt(): mount(2) and umount2(2)
  // act only on the caller's namespace's mounts).
  bool HasMount(const MountNamespace& ns, const Mount* m) const;
  // umount2(MNT_EXPIRE): marks `m` in `ns`; false if it was marked already
  // (then the caller unmounts it).
  bool MarkExpired(MountNamespace& ns, const Mount* m);
  // sysctl fs.mount-max's default: mounts per namespace.
  static constexpr size_t kMaxMounts = 100000;

  // OCI linux.maskedPaths and linux.readonlyPaths, inside the VFS as runsc
  // does them (no host mounts). A path that does not exist is skipped, as
  // runc skips it. MaskPath: a directory gets an empty read-only tmpfs on
  // top; anything else gets /dev/null bound over it (reads see nothing,
  // writes are discarded, as runc's bind of /dev/null does).
  // ReadOnlyPath: the subtree bound onto itself read-only: EROFS for every
  // change below it, the rest of the filesystem unchanged. Mounts below the
  // path come along as copies (MS_REC) and keep their own mode.
  absl::Status MaskPath(std::string_view path);
  absl::Status ReadOnlyPath(std::string_view path);

  // A container of a multi-container sandbox (a pod's application
  // container: sentry/control's CreateContainer): a root of its own over
  // the host directory `host_root` (an overlay, writes kept in the
  // sandbox, as the sandbox's root), mounted at kContainersDir/<id> with
  // its own /dev, /dev/shm and /proc (that of `pid_ns`, the container's
  // pid namespace; null: the sandbox's) and the sandbox's devpts. Its
  // processes are chroot'ed there (ProcessSpec::root). Returns the root's
  // mount: the caller mounts the container's own mounts below it, then
  // makes it read-only if root.readonly asks. `id` must be a plain name.
  static constexpr const char kContainersDir[] = "/.seedvisor-containers";
  absl::StatusOr<std::shared_ptr<Mount>> AddContainerRoot(
      std::string_view id, const std::string& host_root,
      std::shared_ptr<PidNamespace> pid_ns = nullptr);
  // Unmounts container `id`'s root and every mount below it (a deleted
  // container); its id may be used again. The Mount objects live on while
  // the sandbox does (a zombie's or an open file's dentries may point at
  // them).
  void RemoveContainerRoot(std::string_view id);

  // ---- Resolution and namespace operations (no task needed) ----
  // follow: follow a final symlink.
  Result<DentryRef> Resolve(const ResolveContext& c, std::string_view path, bool follow);
  Result<FileRef> Open(const ResolveContext& c, std::string_view path, int flags, mode_t mode);
  Status Mkdir(const ResolveContext& c, std::string_view path, mode_t mode);
  Status Mknod(const ResolveContext& c, std::string_view path, mode_t mode, dev_t dev);
  Status Unlink(const ResolveContext& c, std::string_view path);
  Status Rmdir(const ResolveContext& c, std::string_view path);
  Status Rename(const ResolveContext& oldc, std::string_view oldpath, const ResolveContext& newc,
                std::string_view newpath, unsigned flags);
  Status Link(const ResolveContext& oldc, std::string_view oldpath, const ResolveContext& newc,
              std::string_view newpath, bool follow);
  // The same for the object `src` names (linkat(2)'s AT_EMPTY_PATH: an
  // fd's file, an O_TMPFILE one included): every check of Link's after
  // the old path's walk.
  Status LinkDentry(const ResolveContext& oldc, const DentryRef& src, const ResolveContext& newc,
                    std::string_view newpath);
  Status Symlink(const ResolveContext& c, std::string_view target, std::string_view linkpath);
  Result<std::string> Readlink(const ResolveContext& c, std::string_view path);

  // ---- Task entry points (vfs_task.cc): dirfd, AT_* flags, the task's creds ----
  Result<FileRef> OpenAt(Task& t, int dirfd, std::string_view path, int flags, mode_t mode);
  // execve(2): follows symlinks; a regular file with X permission (EACCES otherwise).
  Result<FileRef> OpenExecutable(Task& t, std::string_view path);
  // The context for resolving `path` relative to `dirfd` (EBADF/ENOTDIR as
  // openat(2); dirfd is ignored for absolute paths).
  Result<ResolveContext> ContextAt(Task& t, int dirfd, std::string_view path);
  // AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH (then the dirfd's own dentry; ENOENT
  // if that file has none — callers stat such files through the file).
  Result<DentryRef> ResolveAt(Task& t, int dirfd, std::string_view path, int at_flags);
  static FsCreds CredsOf(const Task& t);

 private:
  explicit Vfs(Kernel* k) : kernel_(k) {}
  static absl::StatusOr<std::unique_ptr<Vfs>> Build(Kernel* k, const VfsOptions& o);

  struct Parent {
    DentryRef dir;
    std::string name;  // empty for "/"
    bool trailing_slash = false;
  };
  Result<DentryRef> Walk(const ResolveContext& c, DentryRef start, std::string_view path,
                         bool follow, int& links);
  Result<Parent> WalkParent(const ResolveContext& c, DentryRef start, std::string_view path,
                            int& links);
  Result<DentryRef> Step(const ResolveContext& c, const DentryRef& cur, std::string_view name);
  DentryRef CrossMounts(const MountNamespace* ns, DentryRef d) const;
  const MountNamespace& NsOrInit(const MountNamespace* ns) const { return ns ? *ns : *init_ns_; }
  // `stale`: set (with an error) when the mount the open would change
  // (create or truncate in) was unmounted after the walk reached it; the
  // caller walks again.
  Result<FileRef> OpenDentry(const ResolveContext& c, const DentryRef& d, int flags,
                             bool created, bool& stale);
  // One walk and open; Open checks the result's mount and retries.
  Result<FileRef> OpenOnce(const ResolveContext& c, std::string_view path, int flags,
                           mode_t mode, bool& stale);
  // OpenOnce of O_TMPFILE (do_tmpfile()): a nameless file in the
  // directory `path` names.
  Result<FileRef> OpenTmpFile(const ResolveContext& c, std::string_view path, int flags,
                              mode_t mode, bool& stale);
  // Puts `m` on top of the dentry `at` (a directory on a directory, or a
  // non-directory on a non-directory, as mount(2) requires).
  absl::Status Attach(const DentryRef& at, std::shared_ptr<Mount> m, std::string_view path);
  // Where the mount operations resolve `path` from: the sandbox's root, or,
  // for a path under kContainersDir/<id> once that container's root is
  // mounted, the container's root (`path` then becomes the rest).
  ResolveContext MountContext(std::string_view& path) const;
  // Copies of mounts of `ns` (vfs_mount_tree.cc): every mount if `whole`,
  // else a bind of `from` and, if `recursive`, of the mounts below it.
  struct TreeCopy {
    std::map<const Mount*, std::shared_ptr<Mount>> copies;  // by original
    std::vector<std::shared_ptr<Mount>> mounts;  // in the originals' order
    std::map<const Dentry*, Mount*> mounted_at;  // their attachments
    // The copy of `d`, a dentry at or below `top` (the dentry whose copy
    // is `into`): the same object at the same place (Dentry::MirrorChild),
    // made once per dentry; EINVAL if `d` is not below `top`.
    Result<DentryRef> Mirror(const Dentry* d, const Dentry* top, const DentryRef& into);
    // `d`'s copy in the copy of its mount (itself if its mount has none),
    // for a copy of whole mounts.
    Result<DentryRef> Translate(const DentryRef& d);
    std::map<const Dentry*, DentryRef> mirrored;  // Mirror's copies by original
  };
  TreeCopy CopyTree(const MountNamespace& ns, const DentryRef& from, bool recursive, bool whole);
  // Takes `target` and every mount below it out of `ns` into `gone`.
  // Under the mount lock.
  void DetachLocked(MountNamespace& ns, const Mount* target,
                    std::vector<std::shared_ptr<Mount>>& gone);
  // After a rename of the directory `moved` to `new_name` in `new_parent`:
  // the mounts on it or below it, in every namespace and through every
  // mount of its filesystem, move with it (Linux's d_move() keeps them on
  // the dentry). Where a mount of the filesystem does not reach the new
  // place (a bind of another subtree) they stay unreachable there.
  void MoveMountPoints(const Dentry& moved, const DentryRef& new_parent,
                       const std::string& new_name);
  // Calls `fn` with every mount point (namespace, dentry, mount) of every
  // live namespace, under the mount lock.
  void EachMountPoint(const std::function<void(const std::shared_ptr<MountNamespace>&,
                                               const Dentry*, Mount*)>& fn) const;
  // Adds a new namespace to namespaces_. Under the mount lock.
  void Register(const std::shared_ptr<MountNamespace>& ns);
  // Whether mount `m` is `top` or attached (through any number of mounts)
  // below it, by their first mount points. Under the mount lock.
  static bool MountBelow(const Mount* m, const Mount* top);
  // Whether `at` may take a mount: not removed (through any mount of its
  // filesystem). Under mount_points_mu_, exclusive.
  static bool MountPointAlive(const Dentry& at);
  // Makes the missing mount point `path`: a directory, or an empty file.
  Status MakeMountPoint(std::string_view path, bool dir);
  // The dentry `path` names, as root from "/"; null (and OK) if it does not exist.
  absl::StatusOr<DentryRef> ExistingPath(std::string_view path, std::string_view what);

  Kernel* kernel_;
  // See RemovalLock: taken before mounts_mu_; exclusive where a mount
  // point is added.
  mutable std::shared_mutex mount_points_mu_;
  // Guards every namespace's mounts (MountNamespace) and what follows.
  mutable std::mutex mounts_mu_;
  // The names of every namespace's mount points (MountPointMap keeps it).
  const std::shared_ptr<MountPointNames> mount_point_names_ =
      std::make_shared<MountPointNames>();
  // The sandbox's own mounts go here (MountAt, MaskPath, ReadOnlyPath,
  // AddContainerRoot).
  std::shared_ptr<MountNamespace> init_ns_;
  // Every namespace while it lives (DetachMountsOn), the initial one first.
  std::vector<std::weak_ptr<MountNamespace>> namespaces_;
  // AddContainerRoot's roots by container id (guarded by mounts_mu_).
  std::map<std::string, DentryRef, std::less<>> container_roots_;
  std::vector<std::shared_ptr<Mount>> retired_;  // unmounted by RemoveContainerRoot
};

// The sandbox's stdio passthrough (sentry/fs/host/stdio_file.h; the default
// argument lives there).
FileRef NewHostStdioFile(int host_fd, std::shared_ptr<Dentry> console);

// The task on whose behalf the current host thread resolves paths (for
// /proc/self); set by the Task entry points for the call's duration.
Task* CurrentTask();
void SetCurrentTask(Task* t);
class CurrentTaskScope {
 public:
  explicit CurrentTaskScope(Task* t);
  ~CurrentTaskScope();

 private:
  Task* prev_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_VFS_H_
