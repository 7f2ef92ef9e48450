// Landlock's file-system checks (security/landlock/fs.c, ruleset.c).
#include "sentry/vfs/landlock.h"

#include <sys/stat.h>

namespace seedvisor::sentry {

uint64_t LandlockMakeAccess(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFLNK: return kLandlockAccessFsMakeSym;
    case S_IFDIR: return kLandlockAccessFsMakeDir;
    case S_IFCHR: return kLandlockAccessFsMakeChar;
    case S_IFBLK: return kLandlockAccessFsMakeBlock;
    case S_IFIFO: return kLandlockAccessFsMakeFifo;
    case S_IFSOCK: return kLandlockAccessFsMakeSock;
    default: return kLandlockAccessFsMakeReg;
  }
}

Status LandlockRuleset::AddRule(const DentryRef& d, uint64_t access) {
  // add_rule_path_beneath(): the checks in this order.
  if (access == 0) return Errno(ENOMSG);
  if ((access | handled_) != handled_) return Errno(EINVAL);
  if (d->inode()->Type() != S_IFDIR && (access & ~kLandlockAccessFile) != 0) {
    return Errno(EINVAL);
  }
  FileLockKey key = d->inode()->LockKey();
  std::lock_guard l(mu_);
  auto it = rules_.find(key);
  if (it != rules_.end()) {
    it->second.access |= access;
    return {};
  }
  if (rules_.size() >= kLandlockMaxRules) return Errno(E2BIG);
  rules_[key] = Rule{d->inode(), access};
  return {};
}

Result<std::shared_ptr<const LandlockDomain>> LandlockDomain::Restrict(
    const std::shared_ptr<const LandlockDomain>& prev, LandlockRuleset& rs) {
  auto dom = std::make_shared<LandlockDomain>();
  if (prev) dom->layers_ = prev->layers_;
  if (dom->layers_.size() >= kLandlockMaxLayers) return Errno(E2BIG);
  auto layer = std::make_shared<Layer>();
  // _LANDLOCK_ACCESS_FS_INITIALLY_DENIED: every layer handles REFER, so
  // reparenting needs a rule that grants it.
  layer->handled = rs.handled() | kLandlockAccessFsRefer;
  {
    std::lock_guard l(rs.mu_);
    for (const auto& [key, rule] : rs.rules_) {
      layer->rules[key] = rule.access;
      layer->keep.push_back(rule.keep);
    }
  }
  dom->layers_.push_back(std::move(layer));
  return std::shared_ptr<const LandlockDomain>(std::move(dom));
}

namespace {

bool AllZero(const LandlockMasks& m) {
  for (uint64_t v : m) {
    if (v) return false;
  }
  return true;
}

// Per layer, `access` restricted to what the layer handles.
LandlockMasks InitMasks(const LandlockDomain& dom, uint64_t access) {
  LandlockMasks m(dom.layers());
  for (size_t i = 0; i < dom.layers(); ++i) m[i] = access & dom.layer(i).handled;
  return m;
}

// landlock_unmask_layers(): the rules on `d`'s file take their rights out
// of `m`.
void Unmask(const LandlockDomain& dom, const Dentry& d, LandlockMasks& m) {
  if (AllZero(m)) return;
  FileLockKey key = d.inode()->LockKey();
  for (size_t i = 0; i < dom.layers(); ++i) {
    if (m[i] == 0) continue;
    const auto& rules = dom.layer(i).rules;
    auto it = rules.find(key);
    if (it != rules.end()) m[i] &= ~it->second;
  }
}

// The next directory up from `d` on the way to the real root: at a mount's
// root, the mount point's parent (hidden mount points are skipped, as
// follow_up() then dget_parent() do). Null at the top. `internal` is set
// when the top is a mount no namespace has (a pipe's or socket's: Linux's
// MNT_INTERNAL, whose files are always allowed).
DentryRef Up(const DentryRef& d, bool& internal) {
  DentryRef cur = d;
  while (cur->IsMountRoot()) {
    if (cur->mount() == nullptr) {
      internal = true;
      return nullptr;
    }
    DentryRef mp = cur->mount()->mountpoint();
    if (!mp) return nullptr;
    cur = std::move(mp);
    if (!cur->IsMountRoot()) return cur->parent();
  }
  return cur->parent();
}

// Walks from `d` to the root taking each rule's rights out of `m`; true if
// all were granted (or the file is on an internal mount).
bool Collect(const LandlockDomain& dom, const DentryRef& d, LandlockMasks& m) {
  if (d->IsMountRoot() && d->mount() == nullptr) return true;
  // Bounded: every step goes one dentry up, and mounts form a tree.
  for (DentryRef cur = d; cur;) {
    Unmask(dom, *cur, m);
    if (AllZero(m)) return true;
    bool internal = false;
    cur = Up(cur, internal);
    if (internal) return true;
  }
  return false;
}

// is_superset(): the destination denies, in each layer, at least what the
// source (its parent's denials that the child's own rule does not lift)
// does. Directory-only rights do not matter for a file.
bool IsSuperset(bool child_is_dir, const LandlockMasks& dst_parent,
                const LandlockMasks& src_parent, const LandlockMasks& src_child) {
  uint64_t relevant = child_is_dir ? kLandlockAccessFsAll : kLandlockAccessFile;
  for (size_t i = 0; i < dst_parent.size(); ++i) {
    uint64_t src = src_parent[i] & src_child[i] & relevant;
    if ((src & ~dst_parent[i]) != 0) return false;
  }
  return true;
}

LandlockMasks ChildMasks(const LandlockDomain& dom, const DentryRef& child) {
  LandlockMasks m = InitMasks(dom, kLandlockAccessFsAll);
  Unmask(dom, *child, m);
  return m;
}

bool Denies(const LandlockMasks& m, uint64_t access) {
  for (uint64_t v : m) {
    if (v & access) return true;
  }
  return false;
}

}  // namespace

uint64_t LandlockAllowed(const LandlockDomain* dom, const DentryRef& d, uint64_t access) {
  if (dom == nullptr || access == 0 || !d) return access;
  LandlockMasks m = InitMasks(*dom, access);
  if (Collect(*dom, d, m)) return access;
  uint64_t denied = 0;
  for (uint64_t v : m) denied |= v;
  return access & ~denied;
}

Status LandlockCheckPath(const LandlockDomain* dom, const DentryRef& d, uint64_t access) {
  if (dom == nullptr || access == 0 || !d) return {};
  LandlockMasks m = InitMasks(*dom, access);
  if (AllZero(m)) return {};
  return Collect(*dom, d, m) ? Status{} : Status(Errno(EACCES));
}

Status LandlockCheckRefer(const LandlockDomain* dom, const DentryRef& old_dir,
                          const DentryRef& old_child, const DentryRef& new_dir, const DentryRef& new_child, bool removable,
                          bool exchange) {
  if (dom == nullptr) return {};
  auto remove_right = [](const DentryRef& d) -> uint64_t {
    if (!d) return 0;
    return d->inode()->Type() == S_IFDIR ? kLandlockAccessFsRemoveDir
                                         : kLandlockAccessFsRemoveFile;
  };
  uint64_t req_src = 0;  // on the source's directory
  if (exchange) {
    if (!new_child) return Errno(ENOENT);
    req_src = LandlockMakeAccess(new_child->inode()->Type());
  }
  uint64_t req_dst = LandlockMakeAccess(old_child->inode()->Type());  // on new_dir
  if (removable) {
    req_src |= remove_right(old_child);
    req_dst |= remove_right(new_child);
  }
  if (old_dir == new_dir) {
    // No reparenting: REFER is not needed, one check on the directory.
    return LandlockCheckPath(dom, new_dir, req_src | req_dst);
  }
  req_src |= kLandlockAccessFsRefer;
  req_dst |= kLandlockAccessFsRefer;
  // Every handled right, denied per layer, along each side's whole path.
  // The paths meet at the shared mount; rules above that point lift the
  // same rights on both sides, so comparing whole paths gives what
  // is_access_to_paths_allowed()'s walk from the mount's root does.
  LandlockMasks src = InitMasks(*dom, kLandlockAccessFsAll);
  LandlockMasks dst = src;
  bool src_all = Collect(*dom, old_dir, src);
  bool dst_all = Collect(*dom, new_dir, dst);
  if (src_all && dst_all) return {};
  bool no_more = IsSuperset(old_child->inode()->Type() == S_IFDIR, dst, src,
                            ChildMasks(*dom, old_child));
  if (no_more && exchange) {
    no_more = IsSuperset(new_child->inode()->Type() == S_IFDIR, src, dst,
                         ChildMasks(*dom, new_child));
  }
  if (no_more && !Denies(src, req_src) && !Denies(dst, req_dst)) return {};
  // is_eacces(): EACCES before EXDEV when a creation or removal is denied.
  if (Denies(src, req_src & ~kLandlockAccessFsRefer) ||
      Denies(dst, req_dst & ~kLandlockAccessFsRefer)) {
    return Errno(EACCES);
  }
  return Errno(EXDEV);
}

}  // namespace seedvisor::sentry
