// UserNamespace: a user namespace below the sandbox's own
// (user_namespaces(7)).
//
// The model, the smallest that is honest:
//  - A task's user namespace is its credentials' (Credentials::user_ns;
//    null: the sandbox's initial namespace, which maps every id to itself).
//    clone(CLONE_NEWUSER) and unshare(CLONE_NEWUSER) make a new one below
//    the caller's, with no capability needed; the task then holds every
//    capability in it (set_cred_user_ns()) and none outside it:
//    Credentials::HasCap() is capable(), true only in the initial
//    namespace, so a user namespace never widens what a task may do to the
//    sandbox's files, processes or settings. Only the checks Linux makes
//    against the caller's own namespace use HasCapInOwnNs()/HasCapIn():
//    making namespaces (clone, unshare), writing the namespace's maps.
//  - Ids stay the sandbox's (kuid/kgid) in Credentials; a task sees them
//    through its namespace's maps (from_kuid_munged(): an unmapped id is
//    the overflow id 65534) and names ids through them (make_kuid(): an
//    unmapped one is EINVAL).
//  - The maps are written once, through /proc/PID/uid_map and gid_map, as
//    map_write() rules it (WriteMap()).
//  - Every other namespace stays owned by the sandbox's initial user
//    namespace: a namespace a task makes in its own user namespace is not
//    owned by it (NS_GET_USERNS says the initial one), so its capabilities
//    there never reach it; setns(2) into a user namespace is the only way
//    back in.
//
//   auto ns = std::make_shared<UserNamespace>(t.creds().user_ns, euid, egid);
//   uid_t seen = UserNamespace::UidSeen(ns.get(), kuid);    // 65534: unmapped
//   int64_t kuid = UserNamespace::UidFrom(ns.get(), uid);   // -1: unmapped
#ifndef SEEDVISOR_SENTRY_KERNEL_USER_NAMESPACE_H_
#define SEEDVISOR_SENTRY_KERNEL_USER_NAMESPACE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {

struct Credentials;
class Task;

class UserNamespace {
 public:
  // Linux's nesting limit (create_user_ns(): EUSERS beyond 32 levels).
  static constexpr int kMaxLevel = 32;
  // The initial user namespace's nsfs inode (PROC_USER_INIT_INO).
  static constexpr uint64_t kInitIno = 0xEFFFFFFD;
  // from_kuid_munged()'s id for what a namespace cannot name
  // (/proc/sys/kernel/overflowuid).
  static constexpr uint32_t kOverflowId = 65534;
  // UID_GID_MAP_MAX_EXTENTS.
  static constexpr size_t kMaxExtents = 340;

  // One line of a map: ids [first, first+count) here are the sandbox's
  // [lower, lower+count) (Linux keeps the lower ids as kernel ids too).
  struct Extent {
    uint32_t first, lower, count;
  };
  enum class Map { kUid, kGid };

  // A child of `parent` (null: of the initial one), owned by the sandbox
  // ids `owner`/`group` (the creator's euid/egid).
  UserNamespace(std::shared_ptr<UserNamespace> parent, uid_t owner, gid_t group);
  UserNamespace(const UserNamespace&) = delete;
  UserNamespace& operator=(const UserNamespace&) = delete;

  // create_user_ns(): a new namespace below `creator`'s, owned by its
  // euid/egid, into `*out`; or an errno: EUSERS beyond kMaxLevel, EPERM
  // when its euid or egid has no name in its own namespace.
  static int Create(const Credentials& creator, std::shared_ptr<UserNamespace>* out);
  // set_cred_user_ns(): `c` moved into `ns` (null: the initial one) with
  // every capability there, none inheritable or ambient, default
  // securebits.
  static void Enter(Credentials& c, std::shared_ptr<UserNamespace> ns);

  const std::shared_ptr<UserNamespace>& parent() const { return parent_; }
  int level() const { return level_; }
  uint64_t ino() const { return ino_; }
  uid_t owner() const { return owner_; }
  gid_t group() const { return group_; }
  static uint64_t InoOf(const UserNamespace* ns) { return ns ? ns->ino_ : kInitIno; }
  // Level of `ns` (0: the initial one).
  static int LevelOf(const UserNamespace* ns) { return ns ? ns->level_ : 0; }
  // Whether `ancestor` (null: the initial one) is `ns` or above it.
  static bool IsAncestor(const UserNamespace* ancestor, const UserNamespace* ns);

  // make_kuid()/make_kgid(): the sandbox id of `id` as `ns` names it; -1 if
  // `ns` maps no such id.
  static int64_t IdFrom(const UserNamespace* ns, Map map, uint32_t id);
  // from_kuid()/from_kgid(): what `ns` calls sandbox id `kid`; -1 if none.
  static int64_t IdIn(const UserNamespace* ns, Map map, uint32_t kid);
  // from_kuid_munged(): as IdIn, the overflow id for none.
  static uint32_t IdSeen(const UserNamespace* ns, Map map, uint32_t kid) {
    int64_t id = IdIn(ns, map, kid);
    return id < 0 ? kOverflowId : static_cast<uint32_t>(id);
  }
  static uint32_t UidSeen(const UserNamespace* ns, uint32_t kid) { return IdSeen(ns, Map::kUid, kid); }
  static uint32_t GidSeen(const UserNamespace* ns, uint32_t kid) { return IdSeen(ns, Map::kGid, kid); }
  static int64_t UidFrom(const UserNamespace* ns, uint32_t id) { return IdFrom(ns, Map::kUid, id); }
  static int64_t GidFrom(const UserNamespace* ns, uint32_t id) { return IdFrom(ns, Map::kGid, id); }

  // /proc/PID/uid_map or gid_map as a reader in `viewer` (null: the
  // initial namespace) reads it of `ns` (uid_m_show(): the lower ids as
  // the viewer names them, or as `ns`'s parent does when the viewer is
  // `ns` itself).
  static std::string MapText(const UserNamespace* ns, Map map, const UserNamespace* viewer);

  // map_write(): the one write of `text` at `offset` by `writer` into
  // this namespace's `map`; 0 or an errno. The rules: once per map
  // (EPERM), in one write from offset 0 (EINVAL), lines of "first lower
  // count" (EINVAL when malformed, overlapping, empty or overflowing; at
  // most kMaxExtents), the writer holding CAP_SYS_ADMIN here, every lower
  // range mapped in the parent (EPERM), and new_idmap_permitted(): either
  // CAP_SETUID/CAP_SETGID in the parent, or the namespace's owner mapping
  // its own euid alone (a lone gid needs setgroups denied, which this
  // sandbox has no /proc/PID/setgroups to do: refused).
  int WriteMap(Map map, std::string_view text, int64_t offset, const Credentials& writer);

 private:
  const std::vector<Extent>& extents(Map map) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return map == Map::kUid ? uid_map_ : gid_map_;
  }

  const std::shared_ptr<UserNamespace> parent_;
  const int level_;
  const uint64_t ino_;
  const uid_t owner_;
  const gid_t group_;
  mutable absl::Mutex mu_;
  std::vector<Extent> uid_map_ ABSL_GUARDED_BY(mu_);
  std::vector<Extent> gid_map_ ABSL_GUARDED_BY(mu_);
  bool uid_map_set_ ABSL_GUARDED_BY(mu_) = false;
  bool gid_map_set_ ABSL_GUARDED_BY(mu_) = false;
};

// Task `t`'s user namespace, as another task reads it (under
// Kernel::mu(), which unshare and setns replace it under); null: the
// initial one.
std::shared_ptr<UserNamespace> UserNsOf(Task& t);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_USER_NAMESPACE_H_
