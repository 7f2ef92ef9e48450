// FsContext: a task's root, working directory and umask (Linux's fs_struct),
// shared between tasks cloned with CLONE_FS and copied otherwise.
//
//   auto fs = vfs.NewFsContext();          // root = cwd = "/"
//   auto child_fs = fs->Fork();             // fork() without CLONE_FS
//   mode_t old = fs->SetUmask(022);
#ifndef SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_
#define SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class MountNamespace;

class FsContext {
 public:
  FsContext(DentryRef root, DentryRef cwd, mode_t umask = 022,
            std::shared_ptr<MountNamespace> mnt_ns = nullptr);

  std::shared_ptr<FsContext> Fork() const;
  DentryRef root() const;
  DentryRef cwd() const;
  void SetCwd(DentryRef d);
  void SetRoot(DentryRef d);
  mode_t umask() const;
  // Returns the previous umask.
  mode_t SetUmask(mode_t mask);
  // The mount namespace of the tasks that share this context (null: the
  // initial one). Kept here rather than per task: every task sharing a
  // context is in one namespace (CLONE_NEWNS unshares the context, and
  // clone(CLONE_NEWNS|CLONE_FS) and setns(mnt) of a shared context are
  // EINVAL, as in Linux).
  std::shared_ptr<MountNamespace> mnt_ns() const;
  // setns(2): `ns`, with root and working directory `root`.
  void EnterMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root);
  // unshare(2)/clone(CLONE_NEWNS): `ns`, with `root` and `cwd` (the old
  // ones' copies in it).
  void SwitchMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root, DentryRef cwd);

  // The tasks whose context this is (Linux's fs->users): Task::set_fs
  // raises it for the new context and lowers it for the old one. A copy of
  // the pointer held to read another task's context (Task::shared_fs(),
  // /proc) is no user, so this, not the pointer's use_count, says whether
  // the context is shared (unshare(CLONE_FS), setns(CLONE_NEWNS)).
  int users() const { return users_.load(std::memory_order_acquire); }
  // The last user's going lets go of root's and cwd's mounts at once
  // (free_fs_struct() at fs->users == 0), though a /proc reader may still
  // hold the pointer: its read must not keep a mount busy (umount2 EBUSY)
  // after the task let go. A user coming back holds them again.
  void AddUser();
  void DropUser();

 private:
  static MountHold HoldOn(const DentryRef& d) {
    return MountHold(d ? d->mount() : nullptr, /*write=*/false);
  }
  std::atomic<int> users_{0};
  mutable std::mutex mu_;
  DentryRef root_;
  DentryRef cwd_;
  // Holds on root's and cwd's mounts: umount2 is EBUSY while any
  // context's root or working directory is on a mount. Empty while
  // `released_` (no user since the last one went).
  MountHold root_hold_, cwd_hold_;
  bool released_ = false;
  mode_t umask_;
  std::shared_ptr<MountNamespace> mnt_ns_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_
