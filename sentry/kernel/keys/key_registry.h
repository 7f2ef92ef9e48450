// KeyRegistry: the sandbox's key retention service (keyrings(7)): every
// key by serial, the per-user quotas and user keyrings, the persistent
// keyrings, the tasks' keyrings and the /proc/sys/kernel/keys limits. One
// per kernel, made on first use (KeysOf(), task_keys.h); sentry memory
// only, so a sandbox fork copies
// it whole with the keys in it (keys are the guest's data, like tmpfs
// files: nothing in them is re-seeded).
//
//   KeyRegistry& r = KeysOf(t.kernel());
//   std::lock_guard l(r.mu());
//   SV_ASSIGN_OR_RETURN(auto key, r.Alloc(&kKeyTypeUser, "desc", uid, gid, perm,
//                                         KeyQuota::kCharge));
//   r.Instantiate(*key, payload);
//   SV_TRY(r.Link(*keyring, key));
//
// One lock guards the registry and every key's mutable state: key
// operations are short and never block, and Linux's per-keyring locks
// buy nothing at this scale. Tasks are never parked inside it.
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_REGISTRY_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_REGISTRY_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "sentry/base/errno.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/keys/key.h"

namespace seedvisor::sentry {

// /proc/sys/kernel/keys (Linux's defaults).
struct KeyLimits {
  std::atomic<int64_t> maxkeys{200}, maxbytes{20000};
  std::atomic<int64_t> root_maxkeys{1000000}, root_maxbytes{25000000};
  std::atomic<int64_t> gc_delay{300};
  std::atomic<int64_t> persistent_keyring_expiry{3 * 24 * 3600};
};

// How a new key counts against its owner's quota (KEY_ALLOC_* flags).
enum class KeyQuota {
  kCharge,    // KEY_ALLOC_IN_QUOTA: EDQUOT past the limits
  kOverrun,   // KEY_ALLOC_QUOTA_OVERRUN: counted, never refused (a task's own keyrings)
  kNone,      // KEY_ALLOC_NOT_IN_QUOTA
};

// A key as a task reached it: `possessed` when through its own keyrings.
struct KeyRef {
  std::shared_ptr<Key> key;
  bool possessed = false;
};

class Task;
class ThreadGroup;

// A task's keyrings (Linux keeps them in the cred): its thread keyring
// (never inherited, gone at execve), its session keyring (inherited by
// clone, kept across execve) and request_key(2)'s default destination
// (KEYCTL_SET_REQKEY_KEYRING: inherited, kept).
struct TaskKeyrings {
  std::shared_ptr<Key> thread, session;
  int reqkey_default = 0;
  // A thread whose creator had a thread keyring gets one of its own
  // (copy_creds()), made when first looked at.
  bool new_thread_keyring = false;
};

class KeyringWalk;

class KeyRegistry {
 public:
  KeyRegistry();
  std::mutex& mu() { return mu_; }
  KeyLimits& limits() { return limits_; }

  // ---- With mu() held ----
  // key_alloc(): a new, uninstantiated key owned by `uid` (its quota), with
  // a fresh serial. EDQUOT when kCharge would pass the owner's limits.
  Result<std::shared_ptr<Key>> Alloc(const KeyType* type, std::string description, uid_t uid,
                                     gid_t gid, uint32_t perm, KeyQuota quota);
  // Positive instantiation with `payload` (charged to the quota: EDQUOT).
  Status Instantiate(Key& key, std::string payload);
  // key_negate_and_link()'s state change: negative with `error` until
  // `timeout` seconds from now.
  void Negate(Key& key, int error, int64_t timeout);
  // KEYCTL_CHOWN's new owner: the key's quota moves to `uid` (EDQUOT).
  Status ChangeOwner(Key& key, uid_t uid);
  // The live key with `serial`, or null.
  std::shared_ptr<Key> Find(int32_t serial);
  // Every live key in serial order.
  void ForEach(const std::function<void(Key&)>& fn);

  // A keyring's links after dropping the dead ones (the garbage
  // collector's work, done when a keyring is looked into): invalidated
  // keys at once, revoked and expired ones gc_delay seconds later.
  std::vector<std::shared_ptr<Key>>& Links(Key& keyring);
  // __key_link(): links `key` into `keyring`, replacing a link to a key of
  // the same type and description; a new link costs the keyring's owner
  // kKeyLinkBytes (EDQUOT). ENOTDIR if `keyring` is not one, EDEADLK if
  // the link would make a cycle, ELOOP if it would nest keyrings too deep.
  Status Link(Key& keyring, const std::shared_ptr<Key>& key);
  // The link in `keyring` to a key of `type` and `description`, or null.
  std::shared_ptr<Key> FindLink(Key& keyring, const KeyType* type, const std::string& desc);
  // ENOENT if `key` is not linked there.
  Status Unlink(Key& keyring, const Key& key);
  void Clear(Key& keyring);
  // key_revoke(): a revoked keyring loses its links, a revoked payload
  // key its payload.
  void Revoke(Key& key);
  // key_invalidate(): gone from every keyring now.
  void Invalidate(Key& key);

  // The user keyring (`session` false) or user session keyring of `uid`,
  // made on first use (look_up_user_keyrings()).
  Result<std::shared_ptr<Key>> UserKeyring(uid_t uid, bool session);
  // The same if it exists already (null otherwise).
  std::shared_ptr<Key> ExistingUserKeyring(uid_t uid, bool session);
  // The persistent keyring of `uid` (KEYCTL_GET_PERSISTENT), made on first
  // use; its expiry restarts at each use.
  std::shared_ptr<Key> PersistentKeyring(uid_t uid, gid_t gid);
  // find_keyring_by_name(): a keyring called `name` that `c` may search as
  // a non-possessor, not revoked, not a user keyring; null if none.
  std::shared_ptr<Key> FindKeyringByName(const std::string& name, const Credentials& c);

  // The keyrings of `t` (made empty on first use) and of its process.
  // Kept here, beside the tasks, by task and thread group, each entry
  // checked against a weak reference so a recycled address starts empty;
  // entries of tasks and processes that are gone are dropped now and then
  // (PruneTasks).
  TaskKeyrings& OfTask(Task& t);
  // Null if `t` never had keyring state.
  TaskKeyrings* FindTask(const Task& t);
  std::shared_ptr<Key>& ProcessKeyringOf(Task& t);
  // Forgets the entries of tasks and processes that are gone (and with
  // them their keyrings' references).
  void PruneTasks();

  // The quota limits that apply to `uid`.
  int64_t MaxKeys(uid_t uid) const;
  int64_t MaxBytes(uid_t uid) const;
  // /proc/key-users.
  std::string KeyUsersText();

 private:
  std::shared_ptr<KeyUser> UserLocked(uid_t uid);
  int32_t NextSerial();
  // Whether `target` is `from` or is reachable from it through keyrings
  // (keyring_detect_cycle()); ELOOP past the nesting limit.
  Status CheckCycle(const Key& from, const Key& target, int depth, KeyringWalk& walk);

  std::mutex mu_;
  KeyLimits limits_;
  std::map<int32_t, std::weak_ptr<Key>> keys_;
  std::map<uid_t, std::shared_ptr<KeyUser>> users_;
  struct UserKeyrings {
    std::shared_ptr<Key> user, session;
  };
  std::map<uid_t, UserKeyrings> user_keyrings_;
  std::map<uid_t, std::shared_ptr<Key>> persistent_;
  struct TaskSlot {
    std::weak_ptr<Task> task;
    TaskKeyrings keyrings;
  };
  std::map<const Task*, TaskSlot> tasks_;
  struct ProcessSlot {
    std::weak_ptr<ThreadGroup> tg;
    std::shared_ptr<Key> keyring;
  };
  std::map<const ThreadGroup*, ProcessSlot> processes_;
  size_t prune_at_ = 64;
  uint64_t serial_state_;
};

// keyrings(7): a keyring search nests at most this deep.
inline constexpr int kKeyringMaxDepth = 6;

// One walk through nested keyrings (a cycle check, a possession check, a
// search): the depths each keyring was entered at. What a keyring's walk
// finds depends only on the keyring and the depth (the budget left), so it
// is entered once per depth, not once per path: a guest's lattice of
// keyrings, each linked from every keyring of the layer above, would
// otherwise cost width^depth under the registry's lock.
class KeyringWalk {
 public:
  // False if `keyring` was entered at `depth` before in this walk.
  bool Enter(const Key& keyring, int depth) {
    uint32_t& depths = seen_[&keyring];
    const uint32_t bit = uint32_t{1} << depth;
    if (depths & bit) return false;
    depths |= bit;
    return true;
  }

 private:
  std::unordered_map<const Key*, uint32_t> seen_;
};
static_assert(kKeyringMaxDepth < 31, "KeyringWalk keeps a depth per bit");

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_REGISTRY_H_
