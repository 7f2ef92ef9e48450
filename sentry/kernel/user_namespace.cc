// User namespaces (kernel/user_namespace.c): ids through maps, the maps'
// one write, and ns_capable().
#include "sentry/kernel/user_namespace.h"

#include <errno.h>
#include <linux/capability.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/ns_ino.h"

namespace seedvisor::sentry {

UserNamespace::UserNamespace(std::shared_ptr<UserNamespace> parent, uid_t owner, gid_t group)
    : parent_(std::move(parent)),
      level_(LevelOf(parent_.get()) + 1),
      ino_(NextNsIno()),
      owner_(owner),
      group_(group) {}

int UserNamespace::Create(const Credentials& creator, std::shared_ptr<UserNamespace>* out) {
  const UserNamespace* here = creator.user_ns.get();
  if (LevelOf(here) >= kMaxLevel) return EUSERS;
  // The new namespace's owner must be nameable where it is made.
  if (IdIn(here, Map::kUid, creator.euid) < 0 || IdIn(here, Map::kGid, creator.egid) < 0) {
    return EPERM;
  }
  *out = std::make_shared<UserNamespace>(creator.user_ns, creator.euid, creator.egid);
  return 0;
}

void UserNamespace::Enter(Credentials& c, std::shared_ptr<UserNamespace> ns) {
  c.securebits = 0;
  c.cap_inheritable = 0;
  c.cap_permitted = c.cap_effective = c.cap_bounding = kAllCaps;
  c.cap_ambient = 0;
  c.user_ns = std::move(ns);
}

bool UserNamespace::IsAncestor(const UserNamespace* ancestor, const UserNamespace* ns) {
  for (const UserNamespace* p = ns;; p = p->parent_.get()) {
    if (p == ancestor) return true;
    if (p == nullptr) return false;
  }
}

int64_t UserNamespace::IdFrom(const UserNamespace* ns, Map map, uint32_t id) {
  if (id == static_cast<uint32_t>(-1)) return -1;  // (uid_t)-1 is never an id
  if (ns == nullptr) return id;
  absl::ReaderMutexLock l(&ns->mu_);
  for (const Extent& e : ns->extents(map)) {
    if (id >= e.first && id - e.first < e.count) return int64_t{e.lower} + (id - e.first);
  }
  return -1;
}

int64_t UserNamespace::IdIn(const UserNamespace* ns, Map map, uint32_t kid) {
  if (ns == nullptr) return kid;
  absl::ReaderMutexLock l(&ns->mu_);
  for (const Extent& e : ns->extents(map)) {
    if (kid >= e.lower && kid - e.lower < e.count) return int64_t{e.first} + (kid - e.lower);
  }
  return -1;
}

namespace {

// One map line as Linux prints it: "%10u %10u %10u\n" (uid_m_show()).
std::string MapLine(uint32_t first, uint32_t lower, uint32_t count) {
  auto field = [](uint32_t v) {
    std::string s = absl::StrCat(v);
    return std::string(s.size() < 10 ? 10 - s.size() : 0, ' ') + s;
  };
  return absl::StrCat(field(first), " ", field(lower), " ", field(count), "\n");
}

}  // namespace

std::string UserNamespace::MapText(const UserNamespace* ns, Map map,
                                   const UserNamespace* viewer) {
  if (ns == nullptr) return MapLine(0, 0, 4294967295u);
  if (viewer == ns) viewer = ns->parent_.get();
  std::vector<Extent> extents;
  {
    absl::ReaderMutexLock l(&ns->mu_);
    extents = ns->extents(map);
  }
  std::string out;
  for (const Extent& e : extents) {
    const int64_t lower = IdIn(viewer, map, e.lower);
    // from_kuid_munged(): a lower id the viewer cannot name.
    out += MapLine(e.first, lower < 0 ? kOverflowId : static_cast<uint32_t>(lower), e.count);
  }
  return out;
}

int UserNamespace::WriteMap(Map map, std::string_view text, int64_t offset,
                            const Credentials& writer) {
  const int cap_setid = map == Map::kUid ? CAP_SETUID : CAP_SETGID;
  // Only one write, from the start (map_write()).
  if (offset != 0) return EINVAL;
  // Adjusting the namespace needs CAP_SYS_ADMIN in it.
  if (!writer.HasCapIn(this, CAP_SYS_ADMIN)) return EPERM;
  std::vector<Extent> parsed;
  // (absl's string_view is not std's in this system's abseil.)
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() != 3) return EINVAL;
    uint32_t first, lower, count;
    if (!absl::SimpleAtoi(f[0], &first) || !absl::SimpleAtoi(f[1], &lower) ||
        !absl::SimpleAtoi(f[2], &count)) {
      return EINVAL;
    }
    // Neither range may wrap, nor be empty.
    if (count == 0 || uint64_t{first} + count - 1 >= UINT32_MAX ||
        uint64_t{lower} + count - 1 >= UINT32_MAX) {
      return EINVAL;
    }
    for (const Extent& e : parsed) {
      const bool up = first < e.first + uint64_t{e.count} && e.first < first + uint64_t{count};
      const bool down = lower < e.lower + uint64_t{e.count} && e.lower < lower + uint64_t{count};
      if (up || down) return EINVAL;  // mappings_overlap()
    }
    if (parsed.size() == kMaxExtents) return EINVAL;
    parsed.push_back({first, lower, count});
  }
  if (parsed.empty()) return EINVAL;
  // new_idmap_permitted(): the owner mapping its own id alone, or a
  // writer with CAP_SETUID/CAP_SETGID over the parent.
  const UserNamespace* up = parent_.get();
  bool permitted = writer.HasCapIn(up, cap_setid);
  if (!permitted && parsed.size() == 1 && parsed[0].count == 1 && writer.euid == owner_ &&
      map == Map::kUid) {
    permitted = IdFrom(up, map, parsed[0].lower) == int64_t{writer.euid};
  }
  if (!permitted) return EPERM;
  // Every lower range must be the parent's to give; kept as sandbox ids.
  for (Extent& e : parsed) {
    const int64_t lo = IdFrom(up, map, e.lower);
    const int64_t hi = IdFrom(up, map, e.lower + e.count - 1);
    if (lo < 0 || hi < 0 || hi - lo != int64_t{e.count} - 1) return EPERM;
    e.lower = static_cast<uint32_t>(lo);
  }
  absl::MutexLock l(&mu_);
  bool& set = map == Map::kUid ? uid_map_set_ : gid_map_set_;
  if (set) return EPERM;
  set = true;
  (map == Map::kUid ? uid_map_ : gid_map_) = std::move(parsed);
  return 0;
}

bool Credentials::HasCapIn(const UserNamespace* ns, int cap) const {
  // cap_capable(): walk up from `ns` to the caller's namespace.
  for (const UserNamespace* p = ns;; p = p->parent().get()) {
    if (p == user_ns.get()) return (cap_effective & CapBit(cap)) != 0;
    if (p == nullptr) return false;  // the caller's namespace is not above
    // The owner of a namespace directly below its own holds every
    // capability in it (and so below it).
    if (p->parent().get() == user_ns.get() && p->owner() == euid) return true;
  }
}

std::shared_ptr<UserNamespace> UserNsOf(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  return t.creds().user_ns;
}

}  // namespace seedvisor::sentry
