#include "sentry/vfs/fs_context.h"

#include <utility>

namespace seedvisor::sentry {

FsContext::FsContext(DentryRef root, DentryRef cwd, mode_t umask,
                     std::shared_ptr<MountNamespace> mnt_ns)
    : root_(std::move(root)),
      cwd_(std::move(cwd)),
      root_hold_(HoldOn(root_)),
      cwd_hold_(HoldOn(cwd_)),
      umask_(umask),
      mnt_ns_(std::move(mnt_ns)) {}

std::shared_ptr<FsContext> FsContext::Fork() const {
  std::lock_guard l(mu_);
  return std::make_shared<FsContext>(root_, cwd_, umask_, mnt_ns_);
}

std::shared_ptr<MountNamespace> FsContext::mnt_ns() const {
  std::lock_guard l(mu_);
  return mnt_ns_;
}

void FsContext::AddUser() {
  MountHold root_hold, cwd_hold;  // the old (empty) ones, released outside the lock
  std::lock_guard l(mu_);
  if (users_.fetch_add(1, std::memory_order_acq_rel) == 0 && released_) {
    released_ = false;
    root_hold = std::exchange(root_hold_, HoldOn(root_));
    cwd_hold = std::exchange(cwd_hold_, HoldOn(cwd_));
  }
}

void FsContext::DropUser() {
  MountHold root_hold, cwd_hold;  // released outside the lock
  std::lock_guard l(mu_);
  if (users_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    released_ = true;
    root_hold = std::move(root_hold_);
    cwd_hold = std::move(cwd_hold_);
  }
}

void FsContext::EnterMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root) {
  SwitchMountNamespace(std::move(ns), root, root);
}

void FsContext::SwitchMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root,
                                     DentryRef cwd) {
  std::shared_ptr<MountNamespace> old_ns;
  DentryRef old_root, old_cwd;  // released outside the lock
  MountHold root_hold = HoldOn(root), cwd_hold = HoldOn(cwd);
  std::lock_guard l(mu_);
  if (released_) root_hold = MountHold(), cwd_hold = MountHold();
  old_ns = std::exchange(mnt_ns_, std::move(ns));
  old_root = std::exchange(root_, std::move(root));
  old_cwd = std::exchange(cwd_, std::move(cwd));
  std::swap(root_hold_, root_hold);
  std::swap(cwd_hold_, cwd_hold);
}

DentryRef FsContext::root() const {
  std::lock_guard l(mu_);
  return root_;
}

DentryRef FsContext::cwd() const {
  std::lock_guard l(mu_);
  return cwd_;
}

void FsContext::SetCwd(DentryRef d) {
  DentryRef old;
  MountHold hold = HoldOn(d);
  std::lock_guard l(mu_);
  if (released_) hold = MountHold();
  old = std::exchange(cwd_, std::move(d));
  std::swap(cwd_hold_, hold);
}

void FsContext::SetRoot(DentryRef d) {
  DentryRef old;
  MountHold hold = HoldOn(d);
  std::lock_guard l(mu_);
  if (released_) hold = MountHold();
  old = std::exchange(root_, std::move(d));
  std::swap(root_hold_, hold);
}

mode_t FsContext::umask() const {
  std::lock_guard l(mu_);
  return umask_;
}

mode_t FsContext::SetUmask(mode_t mask) {
  std::lock_guard l(mu_);
  mode_t old = umask_;
  umask_ = mask & 0777;
  return old;
}

}  // namespace seedvisor::sentry
