#include "sentry/vfs/fs_context.h"

#include <utility>

namespace seedvisor::sentry {

std::shared_ptr<FsContext> FsContext::Fork() const {
  std::lock_guard l(mu_);
  return std::make_shared<FsContext>(root_, cwd_, umask_, mnt_ns_);
}

std::shared_ptr<MountNamespace> FsContext::mnt_ns() const {
  std::lock_guard l(mu_);
  return mnt_ns_;
}

void FsContext::EnterMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root) {
  std::shared_ptr<MountNamespace> old_ns;
  DentryRef old_root, old_cwd;
  std::lock_guard l(mu_);
  old_ns = std::move(mnt_ns_);
  old_root = std::move(root_);
  old_cwd = std::move(cwd_);
  mnt_ns_ = std::move(ns);
  root_ = root;
  cwd_ = std::move(root);
}

void FsContext::SwitchMountNamespace(std::shared_ptr<MountNamespace> ns, DentryRef root,
                                     DentryRef cwd) {
  std::shared_ptr<MountNamespace> old_ns;
  DentryRef old_root, old_cwd;  // released outside the lock
  std::lock_guard l(mu_);
  old_ns = std::exchange(mnt_ns_, std::move(ns));
  old_root = std::exchange(root_, std::move(root));
  old_cwd = std::exchange(cwd_, std::move(cwd));
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
  std::lock_guard l(mu_);
  old = std::move(cwd_);
  cwd_ = std::move(d);
}

void FsContext::SetRoot(DentryRef d) {
  DentryRef old;
  std::lock_guard l(mu_);
  old = std::move(root_);
  root_ = std::move(d);
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
