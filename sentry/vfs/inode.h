// Inode, Dentry and Mount: the filesystem object model under the VFS.
//
// An Inode is one filesystem object (host file, tmpfs node, overlay node,
// /proc entry). A Dentry names an inode in its parent directory and caches
// its children weakly, so an object keeps one identity while anything (an
// open file, a cwd, a mount point, a child) holds it. A Mount is one
// filesystem instance attached at a dentry of its parent mount; for
// filesystems whose lookups cost host syscalls (host passthrough, the
// overlay over it) it also keeps its most recently used dentries alive
// after their last user lets go (Linux's dcache LRU, gVisor's dentry cache).
//
//   SV_ASSIGN_OR_RETURN(auto child, dir->Child("etc"));   // cached lookup
//   SV_ASSIGN_OR_RETURN(struct stat st, child->inode()->Stat());
//
// Path resolution lives in vfs.cc; filesystems only answer per-directory
// questions, so no filesystem ever sees a path with a '/' in it.
#ifndef SEEDVISOR_SENTRY_VFS_INODE_H_
#define SEEDVISOR_SENTRY_VFS_INODE_H_

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <compare>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class Mount;
class Inode;

// The credentials a filesystem checks (the task's fsuid/fsgid and groups,
// and the capabilities that override file permissions).
struct FsCreds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER in the effective set
  // (the sentry's own lookups have them all).
  bool dac_override = true;
  bool dac_read_search = true;
  bool fowner = true;
  bool InGroup(gid_t g) const;
};

// Access mask bits for CheckAccess (as access(2): R_OK, W_OK, X_OK).
// CAP_DAC_OVERRIDE bypasses R and W always and X if any x bit is set or the
// object is a directory; CAP_DAC_READ_SEARCH bypasses R, and X on
// directories (generic_permission() in fs/namei.c).
Status CheckAccess(const FsCreds& c, const struct stat& st, int mask);

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = DT_UNKNOWN;
};

// chmod/chown/truncate/utimes. Times are absolute (UTIME_NOW resolved by the
// caller); a set field is a change.
struct SetAttrRequest {
  std::optional<mode_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<int64_t> size;
  std::optional<timespec> atime;
  std::optional<timespec> mtime;
};

// Applies the request's mode (keeping the file type), owner and times to
// `st`; size and ctime are the caller's.
void ApplyAttrs(const SetAttrRequest& req, struct stat& st);

class Inode : public std::enable_shared_from_this<Inode> {
 public:
  virtual ~Inode();

  virtual Result<struct stat> Stat() = 0;

  // ---- Directories (defaults: ENOTDIR) ----
  // One component, never "." or "..", never containing '/'.
  virtual Result<std::shared_ptr<Inode>> Lookup(std::string_view name);
  // Entries without "." and "..".
  virtual Result<std::vector<DirEntry>> ReadDir();
  // A new regular file (EEXIST if the name exists).
  virtual Result<std::shared_ptr<Inode>> Create(std::string_view name, mode_t mode,
                                                const FsCreds& c);
  virtual Status Mkdir(std::string_view name, mode_t mode, const FsCreds& c);
  virtual Status Mknod(std::string_view name, mode_t mode, dev_t dev, const FsCreds& c);
  virtual Status Symlink(std::string_view name, std::string_view target, const FsCreds& c);
  virtual Status Link(std::string_view name, const std::shared_ptr<Inode>& target);
  virtual Status Unlink(std::string_view name);
  virtual Status Rmdir(std::string_view name);
  // rename(2) of `oldname` here to `newname` in `newdir` (same filesystem,
  // checked by the caller). `flags` are renameat2's RENAME_NOREPLACE etc.
  virtual Status Rename(std::string_view oldname, Inode& newdir, std::string_view newname,
                        unsigned flags);

  // ---- Everything ----
  virtual Result<std::string> Readlink();  // EINVAL unless a symlink
  // A "magic link" (/proc/PID/fd/N, exe, cwd) names a file, not a path:
  // following it lands on this dentry even when the path is gone
  // (proc_pid_get_link()). Null for ordinary symlinks.
  virtual std::shared_ptr<Dentry> MagicTarget() { return nullptr; }
  // The CLONE_NEW* type of a namespace file (nsfs, /proc/PID/ns/*), which
  // setns(2) takes; 0 for every other inode.
  virtual int NamespaceType() const { return 0; }
  // The namespace object a namespace file names (a UtsNames), where the
  // sandbox has more than one of its type; null for the others.
  virtual std::shared_ptr<void> NamespaceObject() const { return nullptr; }
  virtual Status SetAttr(const SetAttrRequest& req);  // EPERM
  // Extended attributes. Names arrive checked (namespace, length, the
  // caller's permission: sys_xattr.cc). The defaults are a filesystem that
  // stores none: get/remove ENODATA, list empty, set EOPNOTSUPP.
  virtual Result<std::string> GetXattr(std::string_view name);
  virtual Result<std::vector<std::string>> ListXattr();
  // flags: XATTR_CREATE / XATTR_REPLACE. Changes ctime.
  virtual Status SetXattr(std::string_view name, std::string_view value, int flags);
  virtual Status RemoveXattr(std::string_view name);
  virtual Result<struct statfs> StatFs();
  // open(2) of this inode reached through `d`. The default opens directories
  // (a generic getdents over ReadDir) and refuses everything else (ENXIO).
  virtual Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags);
  // True if Open makes a new description of an existing open file (a
  // /proc/PID/fd link to a pipe): then a FIFO type is no named pipe to
  // which fifo(7)'s open rules apply.
  virtual bool ReopensFile() const { return false; }
  // An access (R_OK, W_OK, X_OK) that the mode bits refuse but the object
  // grants anyway, for the task resolving (CurrentTask()): a process may
  // always look into its own /proc/PID/fd (proc_fd_permission()).
  virtual bool ExtraAccess(int mask) {
    (void)mask;
    return false;
  }
  // True if writes are refused with EROFS (host passthrough).
  virtual bool ReadOnlyFs() const { return false; }
  // Identifies the filesystem instance (rename/link across filesystems: EXDEV).
  virtual const void* FsId() const { return this; }
  // The default: FsId() with the device and inode number of Stat(); the
  // object itself if Stat fails.
  virtual FileLockKey LockKey();
  // A Mount with this inode as its root was made, with root dentry
  // `root`: a filesystem that must reach its mounts' dentries keeps it
  // (devpts drops /dev/pts/N from each when pty N goes). Called for every
  // Mount, a namespace's copies (CLONE_NEWNS) and binds included.
  virtual void Mounted(const std::shared_ptr<Dentry>& root) { (void)root; }
  // True if a lookup of this inode is worth keeping after its last user
  // (Mount's dentry cache): it costs host syscalls (an openat and fstatats
  // per component) and the object outlives nothing it should not. Never
  // for /proc or other synthetic inodes, which hold tasks alive.
  virtual bool KeepDentryCached() const { return false; }

  // The S_IFMT bits, or 0 if Stat fails. A file's type never changes while
  // its inode lives (chmod keeps S_IFMT; a new file under the same name is a
  // new inode), so the first answer is kept: a path walk asks for it twice
  // per component, and a host-backed inode's Stat is a host fstatat.
  mode_t Type();
  // The same if known already (0 if not), without a Stat.
  mode_t CachedType() const { return type_.load(std::memory_order_relaxed); }
  // Keeps the type of a Stat() the caller made (st_mode), for CachedType.
  void NoteType(mode_t mode) {
    if (CachedType() == 0) type_.store(mode & S_IFMT, std::memory_order_relaxed);
  }

 private:
  std::atomic<mode_t> type_{0};  // 0: not known yet
};

using InodeRef = std::shared_ptr<Inode>;

class Dentry : public std::enable_shared_from_this<Dentry> {
 public:
  Dentry(std::string name, std::shared_ptr<Dentry> parent, InodeRef inode, Mount* mount);
  ~Dentry();

  const std::string& name() const { return name_; }
  // Null at the root of a mount.
  const std::shared_ptr<Dentry>& parent() const { return parent_; }
  const InodeRef& inode() const { return inode_; }
  Mount* mount() const { return mount_; }
  bool IsMountRoot() const { return parent_ == nullptr; }

  // The child named `name`, from the cache or a Lookup. A lookup that a
  // Forget here overtook is not cached (it may have found what was removed).
  Result<std::shared_ptr<Dentry>> Child(std::string_view name);
  // The cached child named `name`, or null; never a lookup.
  std::shared_ptr<Dentry> Cached(std::string_view name);
  // Drops a cached child after a change took the name's object away
  // (unlink, rmdir, rename, a stale dentry found after a create), from the
  // mount's dentry cache too, and keeps lookups of names here that began
  // before it from caching what they found.
  void Forget(std::string_view name);
  // The copy of `orig`, a child of the dentry this one copies, in another
  // Mount of the same filesystem (a namespace's copy of its mount, a bind):
  // the same name, inode and deleted state. Later lookups of the name here
  // find it only if lookups in orig's parent find orig still (one removed,
  // renamed away or replaced since is as unreachable in the copy), so a
  // copy matches its original without looking the name up again.
  std::shared_ptr<Dentry> MirrorChild(const Dentry& orig);
  void MarkDeleted() { deleted_ = true; }
  bool deleted() const { return deleted_; }

  // The absolute path inside the sandbox, crossing mounts upwards; " (deleted)"
  // appended for an unlinked object, as /proc/PID/fd shows it.
  std::string Path() const;
  // The same relative to `root` (a chroot(2)ed task's root); "(unreachable)"
  // in front when this dentry is not below it, as getcwd(2) reports.
  std::string PathFrom(const Dentry* root) const;

 private:
  const std::string name_;
  const std::shared_ptr<Dentry> parent_;
  const InodeRef inode_;
  Mount* const mount_;
  bool deleted_ = false;
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<Dentry>, std::less<>> children_;  // guarded by mu_
  uint64_t changes_ = 0;  // Forget calls so far; guarded by mu_
};

using DentryRef = std::shared_ptr<Dentry>;

// stat(2) of what `d` names, or of the open file `f` (then d is its dentry
// or null): the inode's stat with st_dev filled in from the mount where the
// filesystem has none (Mount::anon_dev).
Result<struct stat> StatOf(const Dentry* d, FileDescription* f = nullptr);

// One mounted filesystem. Mounts live as long as the Vfs.
class Mount {
 public:
  Mount(std::string fstype, std::string source, std::string options, InodeRef root_inode);
  const std::string& fstype() const { return fstype_; }
  const std::string& source() const { return source_; }
  const std::string& options() const { return options_; }
  // The mount's own MS_RDONLY flag (MNT_READONLY; set from an "ro" in the
  // options), as mountinfo's sixth field shows it.
  bool read_only() const { return read_only_.load(std::memory_order_relaxed); }
  // Whether changes below this mount fail with EROFS (__mnt_is_readonly()):
  // its own flag, or its filesystem's, which a remount without MS_BIND
  // through any mount of it sets for all of them.
  bool writes_refused() const { return read_only() || sb_read_only(); }
  // Remounts read-only (MS_REMOUNT|MS_RDONLY): done once the mount points
  // below have been made, as runtimes make them before remounting.
  void set_read_only();
  // MS_REMOUNT (do_reconfigure_mnt(), set_mount_attributes()), under the
  // Vfs's mount lock (Vfs::Remount): the
  // mount's own flags become `flags` ("ro" or "rw", then nosuid, nodev,
  // noexec, noatime, nodiratime, relatime as mount(2) asked); the
  // filesystem's options stay. `superblock`: a remount without MS_BIND
  // (do_remount()), which also makes the filesystem read-only or writable,
  // for every mount of it (its binds and namespace copies): their own
  // flags stay.
  void SetMountFlags(std::string_view flags, bool superblock);
  const DentryRef& root() const { return root_; }
  // The path of root() inside its filesystem: "/" except for a bind of a
  // subtree (mountinfo's fourth field).
  const std::string& root_path() const { return root_path_; }
  void set_root_path(std::string p) { root_path_ = std::move(p); }
  // Where this mount is attached in its parent mount; null for the root mount.
  // Atomic: MS_MOVE and pivot_root change it under the Vfs's mount lock
  // while path walks ("..", Dentry::Path) read it without.
  DentryRef mountpoint() const { return mountpoint_.load(); }
  void set_mountpoint(DentryRef d) { mountpoint_.store(std::move(d)); }
  // The device number stat(2) shows for this mount's files whose
  // filesystem has none of its own (synthetic ones: proc, /dev, mqueue
  // report st_dev 0): an anonymous device 0:N of its own, as Linux gives
  // each such superblock (get_anon_bdev()), so that st_dev tells mounts
  // apart and matches /proc/PID/mountinfo.
  dev_t anon_dev() const { return anon_dev_; }
  // A bind of `src`'s filesystem: the same superblock, so the same device
  // number, read-only state and writer count (a bind is no new filesystem;
  // Linux's clone_mnt() shares mnt_sb).
  // Made before the new mount is anyone's (it has no writers yet).
  void ShareSuperblock(const Mount& src) {
    anon_dev_ = src.anon_dev_;
    sb_read_only_ = src.sb_read_only_;
    counts_->fs_writers = src.counts_->fs_writers;
  }
  // Its holds (MountHold): open files on it and fs contexts whose root
  // or working directory is on it (umount2 is EBUSY while there are any);
  // the files among them that write, here and on every mount of the
  // filesystem instance (a read-only remount is EBUSY while there are any).
  const std::shared_ptr<MountCounts>& counts() const { return counts_; }
  bool busy() const { return counts_->users.load() > 0; }
  int writers() const { return counts_->writers.load(); }
  int fs_writers() const { return counts_->fs_writers->load(); }
  // The filesystem's read-only state (SB_RDONLY), shared by every mount
  // of it; a remount changes it under the Vfs's mount lock.
  bool sb_read_only() const { return sb_read_only_->load(std::memory_order_relaxed); }
  // /proc/PID/mountinfo's two option columns (show_mountinfo()): the
  // mount's own flags ("rw"/"ro", then nosuid, nodev, noexec, noatime,
  // nodiratime, relatime, nosymfollow as show_mnt_opts() orders them),
  // and the superblock's ("rw"/"ro" of the filesystem, then its own
  // options, e.g. size= or mode=).
  std::string MountOptionsText() const;
  std::string SuperOptionsText() const;
  // /proc/PID/mounts' options (show_vfsmnt()): options() with "ro" in
  // front if writes_refused(), though the mount's own flag says "rw".
  std::string MountsOptionsText() const;
  // statfs(2)'s f_flags (calculate_f_flags()): ST_VALID, the mount's own
  // flags (ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, the atime flags,
  // ST_NOSYMFOLLOW) and ST_RDONLY if the filesystem is read-only.
  unsigned long StatFsFlags() const;

 private:
  // Atomic: MountWritable reads it without the Vfs's mount lock, under
  // which a remount changes it (and the options).
  std::atomic<bool> read_only_{false};
  // The ST_* bits of the mount's own flags (StatFsFlags), kept with
  // options_ (which statfs(2) cannot read without the mount lock).
  std::atomic<unsigned long> st_flags_{0};
  void NoteOptions();
  const std::shared_ptr<MountCounts> counts_ = std::make_shared<MountCounts>();
  // The filesystem is read-only ("ro" in the options at mount time, or a
  // remount without MS_BIND); set_read_only() (this mount's flag) leaves
  // it. Shared by the mounts of one filesystem (ShareSuperblock).
  std::shared_ptr<std::atomic<bool>> sb_read_only_ = std::make_shared<std::atomic<bool>>(false);
  dev_t anon_dev_ = 0;
  std::string fstype_, source_, options_;
  std::string root_path_ = "/";
  DentryRef root_;
  std::atomic<DentryRef> mountpoint_;

  // The dentry cache: the kDentryCacheSize dentries of this mount looked up
  // most recently (Dentry::Child), kept alive after their last user, so that
  // a path walked again (glibc stats /etc/localtime before every localtime
  // call) does not open and stat every component on the host again. Only
  // dentries whose inode asks for it (Inode::KeepDentryCached); Forget drops
  // an entry at once, so an unlinked file's data is not kept. What the
  // cache keeps is what a live dentry already shows: a change made to the
  // host's files underneath is seen as before (a new name at once, a
  // removed or replaced one once the dentry leaves the cache), as overlayfs
  // leaves changes to its lower layer undefined.
 public:
  static constexpr size_t kDentryCacheSize = 256;
  void CacheDentry(const DentryRef& d);
  void UncacheDentry(const Dentry* d);
  size_t CachedDentries();
  // Empties the cache (a mount no namespace has any more).
  void DropDentryCache();

 private:
  std::mutex cache_mu_;
  std::list<DentryRef> lru_;  // most recent first
  std::unordered_map<const Dentry*, std::list<DentryRef>::iterator> lru_pos_;
};

// Converts S_IFMT bits to a DT_* value.
uint8_t DirentType(mode_t mode);

// A FileDescription for a directory: getdents64 over Inode::ReadDir of the
// dentry's inode, with "." and ".." first. Offsets are entry indices, so a
// getdents64 resumed at d_off (or after lseek to it) continues correctly.
class DirFile : public FileDescription {
 public:
  DirFile(int flags, DentryRef d);
  Result<size_t> Read(Task& t, char* buf, size_t len) override;  // EISDIR
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Result<size_t> GetDents64(Task& t, UserAddr buf, size_t len) override;
  // getdents(2): the old struct linux_dirent.
  Result<size_t> GetDents(Task& t, UserAddr buf, size_t len);
  // The linux_dirent64 records for entries from `offset` that fit in `len`;
  // advances `offset`. EINVAL if not even one fits. Exposed for getdents(2)
  // and tests.
  Result<std::string> FillDents(int64_t& offset, size_t len, bool dents64);
  Status Sync() override { return {}; }

 private:
  Status Refresh();
  std::vector<DirEntry> entries_;  // guarded by offset_mu_
  bool loaded_ = false;
};

// Calls into the kernel for filesystem code. They go through hooks that
// Vfs::Create installs, so that this library (which sentry/mm depends on)
// and the filesystems' unit tests link without the kernel. Without hooks,
// copies fail with EFAULT and blocking fails with EINTR.
struct TaskHooks {
  Status (*copy_out)(Task&, UserAddr, const void*, size_t) = nullptr;
  Status (*copy_in)(Task&, UserAddr, void*, size_t) = nullptr;
  Status (*block_on_fd)(Task&, int, short, const timespec*) = nullptr;
  bool (*park_interrupted)(Task&) = nullptr;
  void (*notify)(Task&) = nullptr;
  void (*send_sigpipe)(Task&) = nullptr;
  void (*send_sigio)(Task&, FileDescription&, int) = nullptr;
  int (*id_in)(Task&, int) = nullptr;
  Result<int> (*foreground_group)(Task&, int) = nullptr;
  bool (*current_task_killed)() = nullptr;
};
void InstallTaskHooks(const TaskHooks& hooks);
Status TaskCopyOut(Task& t, UserAddr addr, const void* src, size_t len);
Status TaskCopyIn(Task& t, UserAddr addr, void* dst, size_t len);
Status TaskBlockOnFd(Task& t, int host_fd, short events, const timespec* deadline = nullptr);
// Task::ParkInterrupted: the block ended for a sandbox quiesce, not a signal.
bool TaskParkInterrupted(Task& t);
// fatal_signal_pending(current): the task this host thread works for
// (CurrentTask, sentry/vfs/vfs.h) was SIGKILLed or its group is exiting.
// For filesystem work that may run long without a Task& at hand (an
// overlay copy-up): it stops with EINTR, as Linux's killable waits do.
// False without a task or hooks.
bool CurrentTaskKilled();
// Task::Notify(): wakes `t` from a Block()/BlockOnFd(); any thread.
void TaskNotify(Task& t);
// Queues SIGPIPE for `t`, for a write that returns a partial count after
// the last reader went (pipe_write()); EPIPE itself gets its SIGPIPE from
// the syscall dispatcher.
void TaskSendSigpipe(Task& t);
// kill_fasync(): `f` (with O_ASYNC) became ready for `reason` (POLL_IN,
// POLL_OUT, ...): its owner gets SIGIO or the F_SETSIG signal. Takes
// Kernel::mu(): call it holding no lock of the file's. `t` is the task
// whose action made `f` ready (any task of the sandbox will do).
void TaskSendSigio(Task& t, FileDescription& f, int reason);
// Kernel::IdIn for `t`'s pid namespace: the global process (group,
// session) id `global` as `t` sees it (0: outside its namespace). Without
// hooks, unchanged.
int TaskIdIn(Task& t, int global);
// Kernel::ForegroundGroupLocked for `t` (TIOCSPGRP of process group
// `local` of its namespace, from its session): the group's global id, or
// ESRCH/EPERM. Without hooks, `local`.
Result<int> TaskForegroundGroup(Task& t, int local);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_INODE_H_
