#include "sentry/kernel/keys/key_registry.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace seedvisor::sentry {

KeyRegistry::KeyRegistry() {
  if (getentropy(&serial_state_, sizeof(serial_state_)) != 0 || serial_state_ == 0) {
    serial_state_ = 0x9e3779b97f4a7c15ull;
  }
}

int32_t KeyRegistry::NextSerial() {
  // key_alloc_serial(): a random positive serial of at least 3, the next
  // free one after it on a collision. (Serials name keys, they guard
  // nothing: two forks of a seed may hand out the same ones.)
  int32_t serial;
  do {
    serial_state_ ^= serial_state_ << 13;
    serial_state_ ^= serial_state_ >> 7;
    serial_state_ ^= serial_state_ << 17;
    serial = static_cast<int32_t>(serial_state_ >> 33);
  } while (serial < 3);
  for (;;) {
    auto it = keys_.find(serial);
    if (it == keys_.end()) return serial;
    if (it->second.expired()) {
      keys_.erase(it);
      return serial;
    }
    serial = serial == INT32_MAX ? 3 : serial + 1;
  }
}

std::shared_ptr<KeyUser> KeyRegistry::UserLocked(uid_t uid) {
  std::shared_ptr<KeyUser>& u = users_[uid];
  if (u == nullptr) u = std::make_shared<KeyUser>(uid);
  return u;
}

int64_t KeyRegistry::MaxKeys(uid_t uid) const {
  return uid == 0 ? limits_.root_maxkeys.load() : limits_.maxkeys.load();
}

int64_t KeyRegistry::MaxBytes(uid_t uid) const {
  return uid == 0 ? limits_.root_maxbytes.load() : limits_.maxbytes.load();
}

Result<std::shared_ptr<Key>> KeyRegistry::Alloc(const KeyType* type, std::string description,
                                                uid_t uid, gid_t gid, uint32_t perm,
                                                KeyQuota quota) {
  std::shared_ptr<KeyUser> user = UserLocked(uid);
  const uint32_t quotalen = static_cast<uint32_t>(description.size() + 1);
  if (quota == KeyQuota::kCharge &&
      (user->qnkeys + 1 > MaxKeys(uid) || user->qnbytes + quotalen > MaxBytes(uid))) {
    return Errno(EDQUOT);
  }
  auto key = std::make_shared<Key>(NextSerial(), type, std::move(description), std::move(user),
                                   gid, perm, quota != KeyQuota::kNone, quotalen);
  key->last_used = KeyNow();
  keys_[key->serial] = key;
  return key;
}

Status KeyRegistry::Instantiate(Key& key, std::string payload) {
  if (!key.is_keyring()) SV_TRY(key.Reserve(static_cast<uint32_t>(payload.size()), MaxBytes(key.uid())));
  key.payload = std::move(payload);
  if (!key.instantiated) key.user->nikeys++;
  key.instantiated = true;
  if (key.reject_error != 0) key.expiry = 0;  // a negative key's timeout was its own
  key.reject_error = 0;
  return {};
}

void KeyRegistry::Negate(Key& key, int error, int64_t timeout) {
  if (!key.instantiated) key.user->nikeys++;
  key.instantiated = true;
  key.reject_error = error;
  key.expiry = KeyNow() + timeout;
}

Status KeyRegistry::ChangeOwner(Key& key, uid_t uid) {
  if (uid == key.uid()) return {};
  std::shared_ptr<KeyUser> to = UserLocked(uid);
  // keyctl_chown_key(): the quota burden moves to the new owner.
  if (key.in_quota) {
    if (to->qnkeys + 1 > MaxKeys(uid) || to->qnbytes + key.quotalen > MaxBytes(uid)) {
      return Errno(EDQUOT);
    }
    to->qnkeys++;
    to->qnbytes += key.quotalen;
    key.user->qnkeys--;
    key.user->qnbytes -= key.quotalen;
  }
  to->nkeys++;
  key.user->nkeys--;
  if (key.instantiated) {
    to->nikeys++;
    key.user->nikeys--;
  }
  key.user = std::move(to);
  return {};
}

std::shared_ptr<Key> KeyRegistry::Find(int32_t serial) {
  auto it = keys_.find(serial);
  if (it == keys_.end()) return nullptr;
  std::shared_ptr<Key> k = it->second.lock();
  if (k == nullptr) keys_.erase(it);
  return k;
}

void KeyRegistry::ForEach(const std::function<void(Key&)>& fn) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    std::shared_ptr<Key> k = it->second.lock();
    if (k == nullptr) {
      it = keys_.erase(it);
      continue;
    }
    fn(*k);
    ++it;
  }
}

std::vector<std::shared_ptr<Key>>& KeyRegistry::Links(Key& keyring) {
  const int64_t now = KeyNow();
  const int64_t delay = limits_.gc_delay;
  auto dead = [&](const std::shared_ptr<Key>& k) {
    // key_garbage_collector(): what a keyring drops and when.
    return k->invalidated || (k->revoked && now >= k->revoked_at + delay) ||
           (k->expiry != 0 && now >= k->expiry + delay);
  };
  auto& l = keyring.links;
  const size_t before = l.size();
  l.erase(std::remove_if(l.begin(), l.end(), dead), l.end());
  if (l.size() != before) {
    // The dropped links' bytes go back (never refused: it shrinks).
    (void)keyring.Reserve(static_cast<uint32_t>(l.size() * kKeyLinkBytes), INT64_MAX);
  }
  return l;
}

std::shared_ptr<Key> KeyRegistry::FindLink(Key& keyring, const KeyType* type,
                                           const std::string& desc) {
  for (const auto& k : Links(keyring)) {
    if (k->type == type && k->description == desc) return k;
  }
  return nullptr;
}

Status KeyRegistry::CheckCycle(const Key& from, const Key& target, int depth,
                               KeyringWalk& walk) {
  if (&from == &target) return Errno(EDEADLK);
  if (depth >= kKeyringMaxDepth) return Errno(ELOOP);
  if (!walk.Enter(from, depth)) return {};
  for (const auto& k : from.links) {
    if (k->is_keyring()) SV_TRY(CheckCycle(*k, target, depth + 1, walk));
  }
  return {};
}

Status KeyRegistry::Link(Key& keyring, const std::shared_ptr<Key>& key) {
  if (!keyring.is_keyring()) return Errno(ENOTDIR);
  if (keyring.revoked) return Errno(EKEYREVOKED);
  // __key_link_check_live_key(): a keyring may not end up inside itself.
  if (key->is_keyring()) {
    KeyringWalk walk;
    SV_TRY(CheckCycle(*key, keyring, 1, walk));
  }
  auto& links = Links(keyring);
  for (auto& l : links) {
    if (l->type == key->type && l->description == key->description) {
      l = key;  // replaces in place: no new quota
      return {};
    }
  }
  SV_TRY(keyring.Reserve(keyring.datalen + kKeyLinkBytes, MaxBytes(keyring.uid())));
  links.push_back(key);
  return {};
}

Status KeyRegistry::Unlink(Key& keyring, const Key& key) {
  if (!keyring.is_keyring()) return Errno(ENOTDIR);
  auto& links = Links(keyring);
  auto it = std::find_if(links.begin(), links.end(),
                         [&](const std::shared_ptr<Key>& k) { return k.get() == &key; });
  if (it == links.end()) return Errno(ENOENT);
  std::shared_ptr<Key> gone = std::move(*it);
  links.erase(it);
  (void)keyring.Reserve(static_cast<uint32_t>(links.size() * kKeyLinkBytes), INT64_MAX);
  return {};
}

void KeyRegistry::Clear(Key& keyring) {
  std::vector<std::shared_ptr<Key>> gone;
  gone.swap(keyring.links);
  (void)keyring.Reserve(0, INT64_MAX);
}

void KeyRegistry::Revoke(Key& key) {
  if (key.revoked) return;
  key.revoked = true;
  key.revoked_at = KeyNow();
  if (key.is_keyring()) {
    Clear(key);  // keyring_revoke()
  } else if (key.instantiated && key.reject_error == 0) {
    key.payload.clear();  // user_revoke(): the payload goes, and its quota
    (void)key.Reserve(0, INT64_MAX);
  }
}

void KeyRegistry::Invalidate(Key& key) {
  if (key.invalidated) return;
  key.invalidated = true;
  ForEach([](Key& k) {
    if (k.is_keyring()) {
      for (const auto& l : k.links) {
        if (l->invalidated) {
          k.links.erase(std::remove_if(k.links.begin(), k.links.end(),
                                       [](const std::shared_ptr<Key>& x) { return x->invalidated; }),
                        k.links.end());
          (void)k.Reserve(static_cast<uint32_t>(k.links.size() * kKeyLinkBytes), INT64_MAX);
          break;
        }
      }
    }
  });
}

Result<std::shared_ptr<Key>> KeyRegistry::UserKeyring(uid_t uid, bool session) {
  UserKeyrings& u = user_keyrings_[uid];
  if (u.user == nullptr) {
    // look_up_user_keyrings(): "_uid.N" and "_uid_ses.N", owned by the
    // user, no group, the session one linking the other.
    constexpr uint32_t kPerm = KeyPos(kKeyNeedAll & ~kKeyNeedSetattr) | KeyUsr(kKeyNeedAll);
    SV_ASSIGN_OR_RETURN(auto user, Alloc(&kKeyTypeKeyring, absl::StrCat("_uid.", uid), uid,
                                         static_cast<gid_t>(-1), kPerm, KeyQuota::kCharge));
    SV_ASSIGN_OR_RETURN(auto ses, Alloc(&kKeyTypeKeyring, absl::StrCat("_uid_ses.", uid), uid,
                                        static_cast<gid_t>(-1), kPerm, KeyQuota::kCharge));
    user->uid_keyring = ses->uid_keyring = true;
    SV_TRY(Instantiate(*user, ""));
    SV_TRY(Instantiate(*ses, ""));
    SV_TRY(Link(*ses, user));
    u.user = std::move(user);
    u.session = std::move(ses);
  }
  return session ? u.session : u.user;
}

std::shared_ptr<Key> KeyRegistry::ExistingUserKeyring(uid_t uid, bool session) {
  auto it = user_keyrings_.find(uid);
  if (it == user_keyrings_.end()) return nullptr;
  return session ? it->second.session : it->second.user;
}

std::shared_ptr<Key> KeyRegistry::PersistentKeyring(uid_t uid, gid_t gid) {
  std::shared_ptr<Key>& p = persistent_[uid];
  if (p == nullptr || p->revoked || p->invalidated || p->Expired(KeyNow())) {
    // key_create_persistent(): not in anyone's quota.
    constexpr uint32_t kPerm =
        KeyPos(kKeyNeedAll & ~kKeyNeedSetattr) | KeyUsr(kKeyNeedView | kKeyNeedRead);
    auto k = Alloc(&kKeyTypeKeyring, absl::StrCat("_persistent.", uid), uid, gid, kPerm,
                   KeyQuota::kNone);
    p = std::move(k).value();  // kNone never fails
    (void)Instantiate(*p, "");
  }
  p->expiry = KeyNow() + limits_.persistent_keyring_expiry;
  return p;
}

std::shared_ptr<Key> KeyRegistry::FindKeyringByName(const std::string& name,
                                                    const Credentials& c) {
  std::shared_ptr<Key> found;
  ForEach([&](Key& k) {
    if (found != nullptr || !k.is_keyring() || k.revoked || k.invalidated || k.uid_keyring ||
        k.description != name || name.empty() || name[0] == '.') {
      return;
    }
    if (!k.Permits(c, false, kKeyNeedSearch).ok()) return;
    found = k.shared_from_this();
  });
  return found;
}

std::string KeyRegistry::KeyUsersText() {
  // proc_key_users_show(): usage, keys/instantiated keys, quota use/limit.
  std::string out;
  for (const auto& [uid, u] : users_) {
    if (u->nkeys == 0) continue;
    absl::StrAppendFormat(&out, "%5u: %5d %d/%d %d/%d %d/%d\n", uid, u->nkeys + 1,
                          u->nkeys.load(), u->nikeys.load(), u->qnkeys.load(),
                          static_cast<int>(MaxKeys(uid)), static_cast<int>(u->qnbytes.load()),
                          static_cast<int>(MaxBytes(uid)));
  }
  return out;
}

}  // namespace seedvisor::sentry
