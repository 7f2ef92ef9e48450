// KeyContext: one task's view of the key retention service: its thread,
// process and session keyrings, the special keyring ids, what it
// possesses, and searches through its keyrings (security/keys/
// process_keys.c and keyring.c's searches in Linux).
//
//   KeyRegistry& r = KeysOf(t.kernel());
//   std::lock_guard l(r.mu());
//   KeyContext ctx(t, r);
//   SV_ASSIGN_OR_RETURN(KeyRef ring, ctx.Lookup(id, kKeyLookupCreate, kKeyNeedWrite));
//
// Made for one syscall with the registry's lock held; it takes the task's
// keyrings_mu_ (inside that lock) to read or change the task's keyrings.
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_PROCESS_KEYS_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_PROCESS_KEYS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sentry/base/errno.h"
#include "sentry/kernel/keys/key.h"
#include "sentry/kernel/keys/key_registry.h"

namespace seedvisor::sentry {

class Task;

// <linux/keyctl.h> special keyring ids.
inline constexpr int32_t kKeySpecThreadKeyring = -1, kKeySpecProcessKeyring = -2,
                         kKeySpecSessionKeyring = -3, kKeySpecUserKeyring = -4,
                         kKeySpecUserSessionKeyring = -5, kKeySpecGroupKeyring = -6,
                         kKeySpecReqkeyAuthKey = -7, kKeySpecRequestorKeyring = -8;
// request_key(2)'s default destinations (KEYCTL_SET_REQKEY_KEYRING).
inline constexpr int kReqkeyDeflNoChange = -1, kReqkeyDeflDefault = 0,
                     kReqkeyDeflThread = 1, kReqkeyDeflProcess = 2, kReqkeyDeflSession = 3,
                     kReqkeyDeflUser = 4, kReqkeyDeflUserSession = 5, kReqkeyDeflGroup = 6,
                     kReqkeyDeflRequestor = 7;

// lookup_user_key() flags and the "needs" that are not permission bits.
inline constexpr unsigned kKeyLookupCreate = 1, kKeyLookupPartial = 2;
inline constexpr uint32_t kKeyNeedUnlink = 0x100;     // no checks on the key itself
inline constexpr uint32_t kKeyDeferPermCheck = 0x200;  // the caller checks

// keyring_search flags.
inline constexpr unsigned kKeySearchStateCheck = 1, kKeySearchSkipExpired = 2;

// Seconds a negative key from a failed request_key(2) lives
// (key_negative_timeout).
inline constexpr int64_t kKeyNegativeTimeout = 60;

class KeyContext {
 public:
  KeyContext(Task& t, KeyRegistry& r);
  Task& task() { return t_; }
  KeyRegistry& registry() { return r_; }
  const Credentials& creds() const;

  // lookup_user_key(): the key named by `id` (a serial or a special id),
  // with its possession, checked for `need` (permission bits or one of the
  // kKeyNeed*/kKeyDefer* values above). Special keyrings the task lacks
  // are made with kKeyLookupCreate (else ENOKEY); an invalid id is EINVAL,
  // an unknown serial ENOKEY; a negative key its error; without
  // kKeyLookupPartial also a revoked, expired or invalidated key fails.
  Result<KeyRef> Lookup(int32_t id, unsigned lflags, uint32_t need);

  // Whether the task possesses `key`: one of its keyrings, or reachable
  // from one through keyrings it may search.
  bool Possessed(const Key& key);

  // search_process_keyrings_rcu(): the thread, process and session (else
  // user session) keyrings in turn. EAGAIN when nothing matched at all.
  Result<KeyRef> SearchProcessKeyrings(const KeyType* type, const std::string& desc,
                                       unsigned flags);
  // keyring_search_rcu(): `keyring` and the keyrings nested in it.
  Result<KeyRef> SearchKeyring(const KeyRef& keyring, const KeyType* type,
                               const std::string& desc, unsigned flags);

  // The task's keyrings (null: none yet).
  std::shared_ptr<Key> ThreadKeyring();
  std::shared_ptr<Key> ProcessKeyring();
  std::shared_ptr<Key> SessionKeyring();
  // install_thread_keyring_to_cred() and the process one: the existing
  // keyring, or a new one.
  Result<std::shared_ptr<Key>> InstallThreadKeyring();
  Result<std::shared_ptr<Key>> InstallProcessKeyring();
  // join_session_keyring(): a new anonymous session keyring (no name), or
  // the keyring called `name` (made if none), as the task's session
  // keyring. Its serial, or 0 if it already was the session keyring.
  Result<int32_t> JoinSession(const std::optional<std::string>& name);
  void SetSessionKeyring(std::shared_ptr<Key> k);
  int reqkey_default();
  void set_reqkey_default(int v);

  // A new, instantiated keyring owned by the task's real ids.
  Result<std::shared_ptr<Key>> NewKeyring(const std::string& desc, uint32_t perm,
                                          KeyQuota quota);

 private:
  bool PossessedIn(const Key& keyring, const Key& target, int depth, KeyringWalk& walk);
  struct Search;
  bool SearchNested(Key& keyring, bool possessed, Search& s, int depth, KeyringWalk& walk,
                    KeyRef* out);
  bool Iterate(Key& key, bool possessed, Search& s);

  Task& t_;
  KeyRegistry& r_;
};

// One key operation of `t`: the kernel's registry, locked, and the task's
// context in it (keyctl.cc's operations start with one).
struct KeyOpScope {
  explicit KeyOpScope(Task& t);
  KeyRegistry& r;
  std::lock_guard<std::mutex> l;
  KeyContext ctx;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_PROCESS_KEYS_H_
