// The mount table: mounting, OCI masked and read-only paths (binds of a
// subtree inside the VFS), /proc/mounts and /proc/PID/mountinfo.
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

bool IsDir(const DentryRef& d) { return d->inode()->Type() == S_IFDIR; }

}  // namespace

ResolveContext Vfs::MountContext(std::string_view& path) const {
  DentryRef r = root();
  std::string_view dir = kContainersDir;
  if (path.size() > dir.size() + 1 && path.substr(0, dir.size()) == dir && path[dir.size()] == '/') {
    std::string_view rest = path.substr(dir.size() + 1);
    size_t slash = rest.find('/');
    std::string_view id = rest.substr(0, slash);
    std::lock_guard l(mounts_mu_);
    auto it = container_roots_.find(id);
    if (it != container_roots_.end()) {
      // Inside a container's root: its own symlinks and ".." stay in it.
      r = it->second;
      path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
  }
  return ResolveContext{r, r, FsCreds{}, 0};
}

absl::Status Vfs::MountAt(std::string_view full_path, std::shared_ptr<Mount> m) {
  std::string_view path = full_path;
  ResolveContext c = MountContext(path);
  auto d = Resolve(c, path, true);
  if (!d.ok() && d.error() == Errno(ENOENT)) {
    // The host root may lack the mount point (a test's temp dir, a pause
    // image without /etc/resolv.conf): make it in the overlay's upper layer.
    if (Status made = MakeMountPoint(full_path, m->root()->inode()->Type() == S_IFDIR);
        !made.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("mount ", m->fstype(), " on ", std::string(path),
                                                     ": making the mount point: ",
                                                     strerror(made.error().value())));
    }
    d = Resolve(c, path, true);
  }
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mount ", m->fstype(), " on ", std::string(path), ": ", strerror(d.error().value())));
  }
  return Attach(*d, std::move(m), path);
}

// Below the VFS's own checks: the root may be read-only already (OCI
// root.readonly), and runc too makes mount points before it remounts the
// root read-only.
Status Vfs::MakeMountPoint(std::string_view path, bool dir) {
  ResolveContext c = MountContext(path);
  int links = 0;
  auto pn = WalkParent(c, c.start, path, links);
  if (!pn.ok()) return pn.error();
  if (pn->name.empty() || pn->name == "." || pn->name == "..") return Errno(EEXIST);
  Inode& parent = *pn->dir->inode();
  if (dir) {
    SV_TRY(parent.Mkdir(pn->name, 0755, c.creds));
  } else {
    auto file = parent.Create(pn->name, 0644, c.creds);
    if (!file.ok()) return file.error();
  }
  pn->dir->Forget(pn->name);
  return {};
}

absl::Status Vfs::Attach(const DentryRef& at, std::shared_ptr<Mount> m, std::string_view path) {
  if (IsDir(at) != IsDir(m->root())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mount on ", std::string(path), IsDir(at) ? ": is a directory" : ": not a directory"));
  }
  std::unique_lock points(mount_points_mu_);
  if (!MountPointAlive(*at)) {
    return absl::InvalidArgumentError(absl::StrCat("mount on ", std::string(path), ": removed"));
  }
  std::lock_guard l(mounts_mu_);
  m->set_mountpoint(at);
  init_ns_->mounted_at_.Set(at.get(), m.get());
  init_ns_->mounts_.push_back(std::move(m));
  return absl::OkStatus();
}

absl::StatusOr<DentryRef> Vfs::ExistingPath(std::string_view path, std::string_view what) {
  ResolveContext c = MountContext(path);
  auto d = Resolve(c, path, true);
  if (d.ok()) return *d;
  if (d.error() == Errno(ENOENT) || d.error() == Errno(ENOTDIR)) return DentryRef();
  return absl::InvalidArgumentError(absl::StrCat(std::string(what), " ", std::string(path), ": ",
                                                 strerror(d.error().value())));
}

absl::Status Vfs::MaskPath(std::string_view path) {
  auto d = ExistingPath(path, "masked path");
  if (!d.ok() || !*d) return d.status();
  if (IsDir(*d)) {
    // runc: mount("tmpfs", path, "tmpfs", MS_RDONLY): empty, mode 1777.
    return Attach(*d, std::make_shared<Mount>("tmpfs", "tmpfs", "ro", NewTmpfs(01777)), path);
  }
  auto null = ExistingPath("/dev/null", "masked path");
  if (!null.ok()) return null.status();
  if (!*null) return absl::FailedPreconditionError(absl::StrCat("masking ", std::string(path), ": no /dev/null"));
  const Mount* dev = (*null)->mount();
  auto m = std::make_shared<Mount>(dev->fstype(), dev->source(), dev->options(), (*null)->inode());
  m->ShareSuperblock(*dev);
  m->set_root_path((*null)->PathFrom(dev->root().get()));
  return Attach(*d, std::move(m), path);
}

absl::Status Vfs::ReadOnlyPath(std::string_view path) {
  auto d = ExistingPath(path, "read-only path");
  if (!d.ok() || !*d) return d.status();
  // runc: a recursive bind of the path onto itself (MS_BIND|MS_REC), then
  // that bind alone remounted read-only. The mounts below come along as
  // copies of their own (copy_tree()), so unmounting one through the
  // bind, or mounting below it, leaves the one it copies alone.
  if (Status s = BindIn(*init_ns_, *d, *d, /*recursive=*/true); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("read-only path ", std::string(path), ": ",
                                                   strerror(s.error().value())));
  }
  std::lock_guard l(mounts_mu_);  // a mount's options are read under it
  Mount* bind = init_ns_->mounted_at_.Find(d->get());
  if (bind == nullptr) {
    return absl::InternalError(absl::StrCat("read-only path ", std::string(path), ": not bound"));
  }
  bind->set_read_only();
  return absl::OkStatus();
}

Mount* Vfs::MountedAt(const Dentry* d, const MountNamespace* ns) const {
  std::lock_guard l(mounts_mu_);
  return NsOrInit(ns).mounted_at_.Find(d);
}

DentryRef Vfs::MountRootWithDev(dev_t dev, const MountNamespace* ns) const {
  std::vector<std::shared_ptr<Mount>> mounts;
  {
    std::lock_guard l(mounts_mu_);
    mounts = NsOrInit(ns).mounts_;
  }
  for (const auto& m : mounts) {
    Result<struct stat> st = StatOf(m->root().get());
    if ((st.ok() ? st->st_dev : m->anon_dev()) == dev) return m->root();
  }
  return nullptr;
}

std::string Vfs::MountInfoText(const MountNamespace* ns) const {
  std::vector<std::shared_ptr<Mount>> mounts;
  std::vector<std::string> options;  // a remount changes them under the lock
  {
    std::lock_guard l(mounts_mu_);
    mounts = NsOrInit(ns).mounts_;
    for (const auto& m : mounts) {
      options.push_back(absl::StrCat(m->MountOptionsText(), " - ", m->fstype(), " ", m->source(),
                                     " ", m->SuperOptionsText()));
    }
  }
  std::map<const Mount*, int> ids;
  for (size_t i = 0; i < mounts.size(); ++i) ids[mounts[i].get()] = static_cast<int>(i) + 1;
  std::string out;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Mount& m = *mounts[i];
    int id = static_cast<int>(i) + 1;
    int parent = id;
    const DentryRef at = m.mountpoint();
    if (at && ids.count(at->mount())) parent = ids[at->mount()];
    std::string where = at ? at->Path() : "/";
    // The device stat(2) shows for the mount's root (show_mountinfo():
    // MAJOR(sb->s_dev):MINOR(sb->s_dev)), without the host lock held.
    Result<struct stat> st = StatOf(m.root().get());
    const dev_t dev = st.ok() ? st->st_dev : m.anon_dev();
    absl::StrAppend(&out, id, " ", parent, " ", major(dev), ":", minor(dev), " ", m.root_path(),
                    " ", where, " ", options[i], "\n");
  }
  return out;
}

int Vfs::MountId(const Mount* m, const MountNamespace* ns) const {
  std::lock_guard l(mounts_mu_);
  const auto& mounts = NsOrInit(ns).mounts_;
  for (size_t i = 0; i < mounts.size(); ++i) {
    if (mounts[i].get() == m) return static_cast<int>(i) + 1;
  }
  return 0;
}

std::string Vfs::MountsText(const MountNamespace* ns) const {
  std::lock_guard l(mounts_mu_);
  std::string out;
  for (const auto& m : NsOrInit(ns).mounts_) {
    std::string where = m->mountpoint() ? m->mountpoint()->Path() : "/";
    absl::StrAppend(&out, m->source(), " ", where, " ", m->fstype(), " ",
                    m->MountsOptionsText(), " 0 0\n");
  }
  return out;
}

// ---------------------------------------------------------------- namespaces

namespace {

// Mounts a namespace no longer has, kept while a dentry may still point at
// them (Dentry::mount() is a plain pointer: an open file, a working
// directory or a zombie's root may outlive the unmount, or the namespace).
// One for the process: a namespace may end after its Vfs's users.
struct Graveyard {
  std::mutex mu;
  std::set<std::shared_ptr<Mount>> mounts;
};

Graveyard& Graves() {
  static Graveyard* g = new Graveyard;
  return *g;
}

}  // namespace

void BuryMounts(std::vector<std::shared_ptr<Mount>> gone) {
  std::vector<std::shared_ptr<Mount>> freed;  // destroyed outside the lock
  Graveyard& g = Graves();
  std::lock_guard l(g.mu);
  for (auto& m : gone) g.mounts.insert(std::move(m));
  for (auto it = g.mounts.begin(); it != g.mounts.end();) {
    if (it->use_count() == 1) {
      (*it)->DropDentryCache();
      if ((*it)->root().use_count() == 1) {
        freed.push_back(*it);
        it = g.mounts.erase(it);
        continue;
      }
    }
    ++it;
  }
}

MountNamespace::~MountNamespace() {
  mounted_at_.Clear();  // while its mounts keep the mount points alive
  BuryMounts(std::move(mounts_));
}

Status Vfs::AttachIn(MountNamespace& ns, const DentryRef& at, std::shared_ptr<Mount> m) {
  if (IsDir(at) != IsDir(m->root())) return Errno(IsDir(at) ? EISDIR : ENOTDIR);
  std::unique_lock points(mount_points_mu_);
  if (!MountPointAlive(*at)) return Errno(ENOENT);
  std::lock_guard l(mounts_mu_);
  if (ns.mounts_.size() >= kMaxMounts) return Errno(ENOSPC);
  m->set_mountpoint(at);
  ns.mounted_at_.Set(at.get(), m.get());
  ns.mounts_.push_back(std::move(m));
  return {};
}

bool Vfs::HasMount(const MountNamespace& ns, const Mount* m) const {
  std::lock_guard l(mounts_mu_);
  for (const auto& x : ns.mounts_) {
    if (x.get() == m) return true;
  }
  return false;
}

bool Vfs::HeldMountLive(const Mount* m) const {
  if (m == nullptr || !m->counts()->unmounting.load()) return true;
  // DetachIn holds the lock from setting the flag to its outcome.
  std::lock_guard l(mounts_mu_);
  return !m->counts()->unmounting.load();
}

bool Vfs::MarkExpired(MountNamespace& ns, const Mount* m) {
  std::lock_guard l(mounts_mu_);
  return ns.expiry_marks_.insert(m).second;
}

Status Vfs::DetachIn(MountNamespace& ns, const DentryRef& root, bool detach) {
  std::vector<std::shared_ptr<Mount>> gone;
  {
    std::lock_guard l(mounts_mu_);
    Mount* target = nullptr;
    for (const auto& m : ns.mounts_) {
      if (m->root() == root) target = m.get();
    }
    if (target == nullptr) return Errno(EINVAL);
    // The namespace's root stays (do_umount() of the root: EBUSY, and
    // MNT_DETACH of it is not written).
    if (target == ns.root_mount_.get()) return Errno(detach ? EINVAL : EBUSY);
    if (!detach) {
      // Mounts attached below it make it busy.
      for (const auto& [at, m] : ns.mounted_at_) {
        if (at->mount() == target) return Errno(EBUSY);
      }
      // propagate_mount_busy(), under the lock HeldMountLive takes: the
      // flag first, then the count, so that a hold taken meanwhile is
      // either counted here or finds the flag.
      MountCounts& counts = *target->counts();
      counts.unmounting.store(true);
      if (counts.users.load() > 0) {
        counts.unmounting.store(false);
        return Errno(EBUSY);
      }
    }
    DetachLocked(ns, target, gone);
  }
  BuryMounts(std::move(gone));
  return {};
}

void Vfs::DetachLocked(MountNamespace& ns, const Mount* target,
                       std::vector<std::shared_ptr<Mount>>& gone) {
  // What is mounted below `target` in this namespace, wherever it is
  // attached.
  std::set<const Mount*> doomed{target};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [at, m] : ns.mounted_at_) {
      if (doomed.count(at->mount()) && !doomed.count(m)) {
        doomed.insert(m);
        grew = true;
      }
    }
  }
  for (auto it = ns.mounted_at_.begin(); it != ns.mounted_at_.end();) {
    if (doomed.count(it->second) || doomed.count(it->first->mount())) {
      it = ns.mounted_at_.Erase(it);
    } else {
      ++it;
    }
  }
  for (const Mount* m : doomed) ns.expiry_marks_.erase(m);
  for (auto it = ns.mounts_.begin(); it != ns.mounts_.end();) {
    if (doomed.count(it->get())) {
      gone.push_back(std::move(*it));
      it = ns.mounts_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace seedvisor::sentry
