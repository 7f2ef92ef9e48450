// FsContext: a task's root, working directory and umask (Linux's fs_struct),
// shared between tasks cloned with CLONE_FS and copied otherwise.
//
//   auto fs = vfs.NewFsContext();          // root = cwd = "/"
//   auto child_fs = fs->Fork();             // fork() without CLONE_FS
//   mode_t old = fs->SetUmask(022);
#ifndef SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_
#define SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_

#include <sys/types.h>

#include <memory>
#include <mutex>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class FsContext {
 public:
  FsContext(DentryRef root, DentryRef cwd, mode_t umask = 022)
      : root_(std::move(root)), cwd_(std::move(cwd)), umask_(umask) {}

  std::shared_ptr<FsContext> Fork() const;
  DentryRef root() const;
  DentryRef cwd() const;
  void SetCwd(DentryRef d);
  void SetRoot(DentryRef d);
  mode_t umask() const;
  // Returns the previous umask.
  mode_t SetUmask(mode_t mask);

 private:
  mutable std::mutex mu_;
  DentryRef root_;
  DentryRef cwd_;
  mode_t umask_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_FS_CONTEXT_H_
