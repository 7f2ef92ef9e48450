// Mount points as the filesystem objects they are. One directory is
// reached through other Dentry objects in a bind of its filesystem or in
// another namespace's copy, so whether it is a mount point, and which
// mounts go when it is removed, is asked of the object, not of the Dentry
// (is_local_mountpoint() and detach_mounts() in fs/namespace.c look at the
// dentry, which Linux shares between the mounts of one superblock).
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

// Whether `a` and `b` name one object: the same inode, or (filesystems
// that make an inode per lookup: host, overlay) the same device and inode
// number.
bool SameObject(const Dentry& a, const Dentry& b) {
  if (a.inode() == b.inode()) return true;
  Result<struct stat> sa = StatOf(&a), sb = StatOf(&b);
  return sa.ok() && sb.ok() && sa->st_dev == sb->st_dev && sa->st_ino == sb->st_ino;
}

// Whether the mount point `at` and `d` are what Linux would have as one
// dentry: the same name in the same directory, naming the same object.
// Not the object alone: a hard link of a file mounted on, under another
// name or in another directory, is no mount point.
bool SameMountPoint(const Dentry& at, const Dentry& d) {
  if (&at == &d) return true;
  if (at.name() != d.name()) return false;
  const DentryRef& pa = at.parent();
  const DentryRef& pd = d.parent();
  if ((pa == nullptr) != (pd == nullptr)) return false;
  if (pa != nullptr && !SameObject(*pa, *pd)) return false;
  return SameObject(at, d);
}

// `d`'s path inside its filesystem: its mount's root_path, then the rest.
std::string FsPath(const Dentry& d) {
  const Mount& m = *d.mount();
  const std::string rel = d.PathFrom(m.root().get());
  if (m.root_path() == "/") return rel;
  return rel == "/" ? m.root_path() : m.root_path() + rel;
}

// The dentry of the filesystem path `path` in `m`, looked up from its
// root (no mount crossed); null if `m` does not reach it (a bind of
// another subtree).
DentryRef DentryIn(const Mount& m, std::string_view path) {
  const std::string& top = m.root_path();
  if (top != "/") {
    if (path.substr(0, top.size()) != top) return nullptr;
    if (path.size() > top.size() && path[top.size()] != '/') return nullptr;
    path.remove_prefix(top.size());
  }
  DentryRef d = m.root();
  for (size_t pos = 0; pos < path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) {
      Result<DentryRef> next = d->Child(path.substr(pos, end - pos));
      if (!next.ok()) return nullptr;
      d = *next;
    }
    pos = end + 1;
  }
  return d;
}

}  // namespace

void Vfs::Register(const std::shared_ptr<MountNamespace>& ns) {
  std::erase_if(namespaces_, [](const auto& w) { return w.expired(); });
  namespaces_.push_back(ns);
}

void Vfs::EachMountPoint(const std::function<void(const std::shared_ptr<MountNamespace>&,
                                                  const Dentry*, Mount*)>& fn) const {
  std::lock_guard l(mounts_mu_);
  for (const auto& weak : namespaces_) {
    std::shared_ptr<MountNamespace> ns = weak.lock();
    if (ns == nullptr) continue;
    for (const auto& [at, m] : ns->mounted_at_) fn(ns, at, m);
  }
}

bool Vfs::IsLocalMountPoint(const MountNamespace* ns, const Dentry& d) const {
  if (!mount_point_names_->HasPoint(d.name())) return false;
  std::vector<std::shared_ptr<const Dentry>> candidates;
  {
    std::lock_guard l(mounts_mu_);
    for (const auto& [at, m] : NsOrInit(ns).mounted_at_) {
      if (at == &d) return true;
      if (at->name() == d.name()) candidates.push_back(at->shared_from_this());
    }
  }
  for (const auto& at : candidates) {
    if (SameMountPoint(*at, d)) return true;
  }
  return false;
}

std::vector<Vfs::MountPlace> Vfs::MountPlacesOf(const Dentry& d) const {
  std::vector<MountPlace> found;
  if (!mount_point_names_->HasPoint(d.name())) return found;
  EachMountPoint([&](const std::shared_ptr<MountNamespace>& ns, const Dentry* at, Mount*) {
    if (at->name() == d.name()) found.push_back({ns, at->shared_from_this()});
  });
  std::erase_if(found, [&d](const MountPlace& f) { return !SameMountPoint(*f.at, d); });
  return found;
}

bool Vfs::MountPointAlive(const Dentry& at) {
  if (at.deleted()) return false;
  const DentryRef& parent = at.parent();
  if (parent == nullptr) return true;  // a mount's root
  // Removed through another mount of its filesystem, which marked only
  // its own dentry: the name is gone. (Not compared by object: a
  // synthetic directory, /proc/PID's, is a new inode per lookup; a name
  // removed and made again meanwhile passes.)
  return parent->inode()->Lookup(at.name()).ok();
}

void Vfs::DetachMountsAt(const std::vector<MountPlace>& places) {
  if (places.empty()) return;
  std::vector<std::shared_ptr<Mount>> gone;
  {
    std::lock_guard l(mounts_mu_);
    for (const MountPlace& f : places) {
      Mount* m = f.ns->mounted_at_.Find(f.at.get());
      if (m == nullptr) continue;  // unmounted meanwhile
      DetachLocked(*f.ns, m, gone);  // umount_tree(): with what is below
    }
  }
  BuryMounts(std::move(gone));
}

void Vfs::MoveMountPoints(const Dentry& moved, const DentryRef& new_parent,
                          const std::string& new_name) {
  // Mount points at or below a dentry of `moved`'s object (its old name),
  // with the dentries from there down.
  struct Found {
    std::shared_ptr<MountNamespace> ns;
    Mount* m;
    std::vector<std::shared_ptr<const Dentry>> chain;  // mount point first, up
  };
  std::vector<Found> found;
  // Nothing mounted at or below anything of that name: one hash lookup.
  if (!mount_point_names_->HasAbove(moved.name())) return;
  EachMountPoint([&](const std::shared_ptr<MountNamespace>& ns, const Dentry* at, Mount* m) {
    Found f{ns, m, {}};
    bool named = false;
    for (const Dentry* x = at; x != nullptr && x->parent() != nullptr; x = x->parent().get()) {
      f.chain.push_back(x->shared_from_this());
      named = named || x->name() == moved.name();
    }
    if (named) found.push_back(std::move(f));
  });
  // Their new dentries: the moved directory's under its new parent in the
  // same mount, then the same names down (d_move(): the mount stays on
  // the dentry, wherever it goes).
  struct Move {
    Found f;
    DentryRef to;
  };
  std::vector<Move> moves;
  std::string new_parent_path;
  for (Found& f : found) {
    size_t top = 0;
    while (top < f.chain.size() && !SameMountPoint(*f.chain[top], moved)) ++top;
    if (top == f.chain.size()) continue;
    const Mount& in = *f.chain[top]->mount();
    DentryRef at = new_parent;
    if (new_parent->mount() != &in) {
      if (new_parent_path.empty()) new_parent_path = FsPath(*new_parent);
      at = DentryIn(in, new_parent_path);
    }
    if (at == nullptr) continue;
    Result<DentryRef> next = at->Child(new_name);
    for (size_t i = top; next.ok() && i-- > 0;) next = (*next)->Child(f.chain[i]->name());
    if (next.ok()) moves.push_back({std::move(f), *next});
  }
  std::lock_guard l(mounts_mu_);
  for (Move& mv : moves) {
    const Dentry* at = mv.f.chain.front().get();
    if (mv.f.ns->mounted_at_.Find(at) != mv.f.m) continue;  // changed meanwhile
    mv.f.ns->mounted_at_.Erase(at);
    mv.f.ns->mounted_at_.Set(mv.to.get(), mv.f.m);
    mv.f.m->set_mountpoint(mv.to);
  }
}

}  // namespace seedvisor::sentry
