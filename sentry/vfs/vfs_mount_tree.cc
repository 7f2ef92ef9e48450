// Copies and moves of mount trees: a new mount namespace's copy of the
// caller's mounts (copy_mnt_ns()), a recursive bind (copy_tree()), a moved
// mount (MS_MOVE) and pivot_root(2). A copy is a new Mount of the same
// filesystem and root (clone_mnt()), attached at the copy of its mount
// point: from then on the copies are the namespace's own, so a move or
// unmount in one namespace never changes another's. Mount points, root and
// working directory are copied as the objects they are (TreeCopy::Mirror),
// never looked up again by name: copy_tree() keeps each mount's
// mnt_mountpoint dentry and copy_mnt_ns() the fs's root and pwd dentries.
#include <fcntl.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

bool IsDir(const DentryRef& d) { return d->inode()->Type() == S_IFDIR; }

// A new mount of `m`'s filesystem, root and flags (clone_mnt()).
std::shared_ptr<Mount> CopyOfMount(const Mount& m, const DentryRef& root) {
  auto c = std::make_shared<Mount>(m.fstype(), m.source(), m.options(), root->inode());
  c->ShareSuperblock(m);
  c->set_root_path(m.root_path());
  if (m.read_only()) c->set_read_only();
  return c;
}

// Whether `d` is `top` or below it inside `top`'s mount.
bool Below(const Dentry* d, const Dentry* top) {
  for (; d != nullptr; d = d->parent().get()) {
    if (d == top) return true;
  }
  return false;
}

}  // namespace

Vfs::TreeCopy Vfs::CopyTree(const MountNamespace& ns, const DentryRef& from, bool recursive,
                            bool whole) {
  TreeCopy out;
  // What to copy: each mount with the dentry its copy's root stands for.
  std::map<const Mount*, const Dentry*> tops;
  std::vector<std::pair<const Dentry*, Mount*>> attachments;
  std::vector<std::shared_ptr<Mount>> order, copies;
  {
    std::lock_guard l(mounts_mu_);
    for (const auto& [at, m] : ns.mounted_at_) attachments.emplace_back(at, m);
    if (whole) {
      for (const auto& m : ns.mounts_) tops[m.get()] = m->root().get();
      order = ns.mounts_;
    } else {
      tops[from->mount()] = from.get();
      for (bool grew = recursive; grew;) {
        grew = false;
        for (const auto& [at, m] : attachments) {
          auto top = tops.find(at->mount());
          if (top == tops.end() || tops.count(m) || !Below(at, top->second)) continue;
          tops[m] = m->root().get();
          grew = true;
        }
      }
      for (const auto& m : ns.mounts_) {
        if (tops.count(m.get())) order.push_back(m);
      }
    }
    // The copies are made under the lock: a remount (Vfs::Remount) changes
    // a mount's options and superblock flag under it.
    for (const auto& m : order) {
      const Dentry* top = tops[m.get()];
      copies.push_back(CopyOfMount(*m, top == m->root().get() ? m->root() : from));
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    const std::shared_ptr<Mount>& m = order[i];
    const std::shared_ptr<Mount>& c = copies[i];
    const DentryRef& root = tops[m.get()] == m->root().get() ? m->root() : from;
    if (root != m->root()) {
      // A bind of a subtree: its root's path inside the filesystem.
      const std::string rel = root->PathFrom(m->root().get());
      if (m->root_path() == "/") {
        c->set_root_path(rel);
      } else {
        c->set_root_path(rel == "/" ? m->root_path() : m->root_path() + rel);
      }
    }
    out.copies[m.get()] = c;
    out.mounts.push_back(c);
  }
  for (const auto& [at, m] : attachments) {
    auto parent = out.copies.find(at->mount());
    auto child = out.copies.find(m);
    if (parent == out.copies.end() || child == out.copies.end()) continue;
    Result<DentryRef> place = out.Mirror(at, tops[at->mount()], parent->second->root());
    if (!place.ok()) continue;  // outside the bound subtree
    child->second->set_mountpoint(*place);
    out.mounted_at[place->get()] = child->second.get();
  }
  return out;
}

Result<DentryRef> Vfs::TreeCopy::Mirror(const Dentry* d, const Dentry* top,
                                        const DentryRef& into) {
  // d's ancestors up to `top` or to one copied already, then their copies
  // downwards.
  std::vector<const Dentry*> chain;
  DentryRef at;
  for (const Dentry* x = d;; x = x->parent().get()) {
    if (x == nullptr) return Errno(EINVAL);  // not below `top`
    if (x == top) {
      at = into;
      break;
    }
    if (auto it = mirrored.find(x); it != mirrored.end()) {
      at = it->second;
      break;
    }
    chain.push_back(x);
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    at = at->MirrorChild(**it);
    mirrored.emplace(*it, at);
  }
  return at;
}

Result<DentryRef> Vfs::TreeCopy::Translate(const DentryRef& d) {
  if (!d || d->mount() == nullptr) return d;
  auto it = copies.find(d->mount());
  if (it == copies.end()) return d;
  return Mirror(d.get(), d->mount()->root().get(), it->second->root());
}

void Vfs::UnshareMountNamespace(FsContext& fs, uint64_t ino) {
  std::shared_ptr<MountNamespace> from = fs.mnt_ns();
  if (from == nullptr) from = init_ns_;
  // Whole: no mount point may go between the copy and its registration
  // (rmdir's detach_mounts() would not see the copy's).
  std::unique_lock points(mount_points_mu_);
  TreeCopy copy = CopyTree(*from, nullptr, true, /*whole=*/true);
  auto ns = std::make_shared<MountNamespace>(ino, mount_point_names_);
  {
    std::lock_guard l(mounts_mu_);
    ns->root_mount_ = copy.copies[from->root_mount_.get()];
    ns->mounts_ = std::move(copy.mounts);
    for (const auto& [d, m] : copy.mounted_at) ns->mounted_at_.Set(d, m);
    Register(ns);
  }
  points.unlock();
  // copy_mnt_ns(): the caller's root and working directory move to their
  // copies, removed ones too.
  DentryRef root = fs.root(), cwd = fs.cwd();
  Result<DentryRef> new_root = copy.Translate(root), new_cwd = copy.Translate(cwd);
  fs.SwitchMountNamespace(std::move(ns), new_root.ok() ? *new_root : root,
                          new_cwd.ok() ? *new_cwd : cwd);
}

Status Vfs::BindIn(MountNamespace& ns, const DentryRef& from, const DentryRef& at,
                   bool recursive) {
  if (IsDir(at) != IsDir(from)) return Errno(IsDir(at) ? EISDIR : ENOTDIR);
  std::unique_lock points(mount_points_mu_);
  if (!MountPointAlive(*at)) return Errno(ENOENT);
  TreeCopy copy = CopyTree(ns, from, recursive, /*whole=*/false);
  std::shared_ptr<Mount> top = copy.copies[from->mount()];
  std::lock_guard l(mounts_mu_);
  if (ns.mounts_.size() + copy.mounts.size() > kMaxMounts) return Errno(ENOSPC);
  top->set_mountpoint(at);
  ns.mounted_at_.Set(at.get(), top.get());
  for (auto& [d, m] : copy.mounted_at) ns.mounted_at_.Set(d, m);
  for (auto& m : copy.mounts) ns.mounts_.push_back(std::move(m));
  return {};
}

Status Vfs::Remount(Mount& m, const std::function<std::string(const Mount&)>& flags,
                    bool superblock, bool read_only) {
  std::lock_guard l(mounts_mu_);
  // mnt_make_readonly() (MS_BIND) and sb_prepare_remount_readonly(): not
  // while a file is open for writing through the mount (without MS_BIND:
  // through any mount of its filesystem), unless it is read-only already.
  // (Linux also holds new writers off meanwhile; one that opens between
  // this check and the flag may still write through the read-only mount.)
  if (read_only && (superblock ? !m.sb_read_only() && m.fs_writers() > 0
                               : !m.writes_refused() && m.writers() > 0)) {
    return Errno(EBUSY);
  }
  m.SetMountFlags(flags(m), superblock);
  return {};
}

bool Vfs::MountBelow(const Mount* m, const Mount* top) {
  for (const Mount* x = m; x != nullptr;) {
    if (x == top) return true;
    const DentryRef& at = x->mountpoint();
    if (!at) return false;
    x = at->mount();
  }
  return false;
}

Status Vfs::MoveIn(MountNamespace& ns, const DentryRef& from, const DentryRef& to) {
  std::unique_lock points(mount_points_mu_);
  if (!MountPointAlive(*to)) return Errno(ENOENT);
  std::lock_guard l(mounts_mu_);
  Mount* m = from->mount();
  // do_move_mount(): a mount's root, of this namespace, onto a directory
  // for a directory; never below itself (ELOOP: the namespace's root is
  // above everything).
  if (!from->IsMountRoot()) return Errno(EINVAL);
  if (IsDir(from) != IsDir(to)) return Errno(EINVAL);
  if (m == ns.root_mount_.get() || MountBelow(to->mount(), m)) return Errno(ELOOP);
  if (m->mountpoint()) ns.mounted_at_.Erase(m->mountpoint().get());
  m->set_mountpoint(to);
  ns.mounted_at_.Set(to.get(), m);
  return {};
}

Status Vfs::PivotRoot(MountNamespace& ns, const DentryRef& root, const DentryRef& new_root,
                      const DentryRef& put_old) {
  std::unique_lock points(mount_points_mu_);
  std::lock_guard l(mounts_mu_);
  Mount* new_mnt = new_root->mount();
  Mount* root_mnt = root->mount();
  Mount* old_mnt = put_old->mount();
  // pivot_root()'s checks, in its order.
  auto in_ns = [&ns](const Mount* m) {
    for (const auto& x : ns.mounts_) {
      if (x.get() == m) return true;
    }
    return false;
  };
  if (!in_ns(root_mnt) || !in_ns(new_mnt)) return Errno(EINVAL);
  if (new_root->deleted()) return Errno(ENOENT);
  if (new_mnt == root_mnt || old_mnt == root_mnt) return Errno(EBUSY);
  // The caller's root must be a mount's root; the namespace's root mount
  // hangs off an (invisible) rootfs, as in Linux, so it has a parent.
  if (!root->IsMountRoot()) return Errno(EINVAL);
  if (!new_root->IsMountRoot()) return Errno(EINVAL);
  // put_old at or below new_root, new_root below the caller's root.
  auto reachable = [](const DentryRef& d, const DentryRef& top) {
    const Dentry* x = d.get();
    while (x != nullptr && x != top.get()) {
      if (x->parent()) {
        x = x->parent().get();
      } else if (x->mount() && x->mount()->mountpoint()) {
        x = x->mount()->mountpoint().get();
      } else {
        x = nullptr;
      }
    }
    return x != nullptr;
  };
  if (!reachable(put_old, new_root)) return Errno(EINVAL);
  if (!reachable(new_root, root)) return Errno(EINVAL);
  // The new root leaves its mount point for the old root's (the
  // namespace's root if that was it); the old root goes onto put_old.
  const DentryRef root_mp = root_mnt->mountpoint();
  if (new_mnt->mountpoint()) ns.mounted_at_.Erase(new_mnt->mountpoint().get());
  new_mnt->set_mountpoint(root_mp);
  if (root_mp) {
    ns.mounted_at_.Set(root_mp.get(), new_mnt);
  } else {
    for (const auto& x : ns.mounts_) {
      if (x.get() == new_mnt) ns.root_mount_ = x;
    }
  }
  root_mnt->set_mountpoint(put_old);
  ns.mounted_at_.Set(put_old.get(), root_mnt);
  return {};
}

}  // namespace seedvisor::sentry
