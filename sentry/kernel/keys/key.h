// Key: one key of the kernel key retention service (keyrings(7)), and the
// per-user quota it is charged to (security/keys/key.c in Linux).
//
//   std::shared_ptr<Key> k = ...;            // made by KeyRegistry::Alloc
//   if (k->Permits(creds, possessed, kKeyNeedRead)) ...
//   SV_TRY(k->Validate(now));                // revoked, expired, invalidated
//
// A key is alive while something holds it: a keyring that links it, a
// task whose thread, process or session keyring it is, a registry table
// (user keyrings). Keyrings only link downwards (a link that would make a
// cycle is refused), so shared_ptr counts are exact; when the last holder
// goes, the key's serial stops resolving and its quota is given back.
// Everything mutable is guarded by the owning KeyRegistry's lock; the
// destructor only touches the KeyUser's atomic counters.
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/kernel/credentials.h"

namespace seedvisor::sentry {

// <linux/keyctl.h> permission bits of one class; the classes are
// possessor << 24, user << 16, group << 8, other.
inline constexpr uint32_t kKeyNeedView = 0x01, kKeyNeedRead = 0x02, kKeyNeedWrite = 0x04,
                          kKeyNeedSearch = 0x08, kKeyNeedLink = 0x10, kKeyNeedSetattr = 0x20,
                          kKeyNeedAll = 0x3f;
inline constexpr uint32_t kKeyPosAll = kKeyNeedAll << 24;
constexpr uint32_t KeyPos(uint32_t p) { return p << 24; }
constexpr uint32_t KeyUsr(uint32_t p) { return p << 16; }
// Every class's bits: what KEYCTL_SETPERM accepts.
inline constexpr uint32_t kKeyPermMask = 0x3f3f3f3f;

// Bytes a keyring is charged per link (KEYQUOTA_LINK_BYTES).
inline constexpr uint32_t kKeyLinkBytes = 4;

// The key types the sandbox has (key_type_user, _logon, _big_key,
// _keyring). add_key(2) of any other type is ENODEV, request_key(2) ENOKEY.
struct KeyType {
  const char* name;
  bool readable;    // has ->read: KEYCTL_READ works, possessors get Read
  bool updatable;   // has ->update: add_key updates, KEYCTL_UPDATE works
  size_t max_data;  // the preparse limit on the payload (0: none allowed)
  bool is_keyring;
};
inline constexpr KeyType kKeyTypeUser{"user", true, true, 32767, false};
inline constexpr KeyType kKeyTypeLogon{"logon", false, true, 32767, false};
// big_key keeps its payload in sentry memory (Linux moves payloads past a
// page to an encrypted shmem file; the bytes are the same to the guest).
inline constexpr KeyType kKeyTypeBigKey{"big_key", true, true, (1 << 20) - 1, false};
inline constexpr KeyType kKeyTypeKeyring{"keyring", true, false, 0, true};
// The registered type named `name`, or null.
const KeyType* FindKeyType(const std::string& name);

// One user's keys and quota (struct key_user): /proc/key-users' line.
struct KeyUser {
  explicit KeyUser(uid_t u) : uid(u) {}
  const uid_t uid;
  std::atomic<int> nkeys{0};    // keys owned
  std::atomic<int> nikeys{0};   // of which instantiated (positive or negative)
  std::atomic<int> qnkeys{0};   // keys charged to the quota
  std::atomic<int64_t> qnbytes{0};  // bytes charged to the quota
};

class Key : public std::enable_shared_from_this<Key> {
 public:
  Key(int32_t serial, const KeyType* type, std::string description,
      std::shared_ptr<KeyUser> user, gid_t gid, uint32_t perm, bool in_quota,
      uint32_t quotalen);
  ~Key();
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  const int32_t serial;
  const KeyType* const type;
  const std::string description;
  bool is_keyring() const { return type->is_keyring; }

  // ---- Guarded by the registry's lock ----
  std::shared_ptr<KeyUser> user;  // quota owner; user->uid is the key's uid
  uid_t uid() const { return user->uid; }
  gid_t gid;
  uint32_t perm;
  bool in_quota;           // KEY_FLAG_IN_QUOTA
  bool uid_keyring = false;  // KEY_FLAG_UID_KEYRING: a user (session) keyring
  bool instantiated = false;
  int reject_error = 0;    // non-zero: negatively instantiated with this errno
  bool revoked = false;
  bool invalidated = false;
  int64_t expiry = 0;      // wall-clock seconds; 0: never
  int64_t revoked_at = 0;
  int64_t last_used = 0;
  // The payload (user, logon, big_key) and its quota share; for a keyring,
  // datalen is kKeyLinkBytes per link.
  std::string payload;
  uint32_t datalen = 0;
  uint32_t quotalen;       // bytes charged now (description + 1 + datalen)
  std::vector<std::shared_ptr<Key>> links;  // a keyring's keys, in link order

  // key_task_permission(): the class of `c` (owner by fsuid, group by
  // fsgid or supplementary groups, other), plus the possessor bits when
  // `possessed`; every bit of `need` must be granted (no capability
  // overrides it). EACCES otherwise.
  Status Permits(const Credentials& c, bool possessed, uint32_t need) const;
  // key_validate(): ENOKEY if invalidated, EKEYREVOKED if revoked,
  // EKEYEXPIRED once `now` reaches the expiry.
  Status Validate(int64_t now) const;
  bool Expired(int64_t now) const { return expiry != 0 && now >= expiry; }
  // key_payload_reserve(): grows or shrinks datalen, charging the
  // difference to the owner's byte quota (EDQUOT past `maxbytes`).
  Status Reserve(uint32_t new_datalen, int64_t maxbytes);
  // The line /proc/keys shows after the common fields (->describe()).
  std::string Describe() const;
};

// A key's uid or gid as the guest sees it: unset (-1, a user keyring's
// group) shows as the overflow id (from_kuid_munged()).
inline unsigned KeyIdShown(uint32_t id) { return id == static_cast<uint32_t>(-1) ? 65534 : id; }

// Wall-clock seconds (key expiry and timestamps are in real time).
int64_t KeyNow();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_H_
