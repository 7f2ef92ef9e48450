#include "sentry/kernel/keys/process_keys.h"

#include <utility>

#include "sentry/kernel/keys/task_keys.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"

namespace seedvisor::sentry {

KeyContext::KeyContext(Task& t, KeyRegistry& r) : t_(t), r_(r) {}

KeyOpScope::KeyOpScope(Task& t) : r(KeysOf(t.kernel())), l(r.mu()), ctx(t, r) {}

const Credentials& KeyContext::creds() const { return t_.creds(); }

std::shared_ptr<Key> KeyContext::ThreadKeyring() {
  TaskKeyrings* k = r_.FindTask(t_);
  if (k == nullptr) return nullptr;
  if (k->thread == nullptr && k->new_thread_keyring) {
    // The keyring clone(CLONE_THREAD) owes this thread.
    k->new_thread_keyring = false;
    Result<std::shared_ptr<Key>> ring =
        NewKeyring("_tid", kKeyPosAll | KeyUsr(kKeyNeedView), KeyQuota::kOverrun);
    if (ring.ok()) r_.OfTask(t_).thread = *ring;
  }
  return r_.OfTask(t_).thread;
}

std::shared_ptr<Key> KeyContext::ProcessKeyring() { return r_.ProcessKeyringOf(t_); }

std::shared_ptr<Key> KeyContext::SessionKeyring() {
  TaskKeyrings* k = r_.FindTask(t_);
  return k != nullptr ? k->session : nullptr;
}

void KeyContext::SetSessionKeyring(std::shared_ptr<Key> k) {
  std::shared_ptr<Key> old = std::exchange(r_.OfTask(t_).session, std::move(k));
}

int KeyContext::reqkey_default() {
  TaskKeyrings* k = r_.FindTask(t_);
  return k != nullptr ? k->reqkey_default : 0;
}

void KeyContext::set_reqkey_default(int v) { r_.OfTask(t_).reqkey_default = v; }

Result<std::shared_ptr<Key>> KeyContext::NewKeyring(const std::string& desc, uint32_t perm,
                                                    KeyQuota quota) {
  // keyring_alloc() with the cred's real ids, as the special keyrings are.
  SV_ASSIGN_OR_RETURN(auto k,
                      r_.Alloc(&kKeyTypeKeyring, desc, creds().ruid, creds().rgid, perm, quota));
  SV_TRY(r_.Instantiate(*k, ""));
  return k;
}

Result<std::shared_ptr<Key>> KeyContext::InstallThreadKeyring() {
  if (auto k = ThreadKeyring()) return k;
  SV_ASSIGN_OR_RETURN(auto k,
                      NewKeyring("_tid", kKeyPosAll | KeyUsr(kKeyNeedView), KeyQuota::kOverrun));
  TaskKeyrings& mine = r_.OfTask(t_);
  mine.thread = k;
  mine.new_thread_keyring = false;
  return k;
}

Result<std::shared_ptr<Key>> KeyContext::InstallProcessKeyring() {
  if (auto k = ProcessKeyring()) return k;
  SV_ASSIGN_OR_RETURN(auto k,
                      NewKeyring("_pid", kKeyPosAll | KeyUsr(kKeyNeedView), KeyQuota::kOverrun));
  r_.ProcessKeyringOf(t_) = k;
  return k;
}

Result<int32_t> KeyContext::JoinSession(const std::optional<std::string>& name) {
  if (!name) {
    // install_session_keyring_to_cred(): a task's first session keyring may
    // overrun the quota, a replacement may not.
    const KeyQuota q = SessionKeyring() ? KeyQuota::kCharge : KeyQuota::kOverrun;
    SV_ASSIGN_OR_RETURN(
        auto k, NewKeyring("_ses", kKeyPosAll | KeyUsr(kKeyNeedView | kKeyNeedRead), q));
    SetSessionKeyring(k);
    return k->serial;
  }
  std::shared_ptr<Key> k = r_.FindKeyringByName(*name, creds());
  if (k == nullptr) {
    SV_ASSIGN_OR_RETURN(
        k, NewKeyring(*name, kKeyPosAll | KeyUsr(kKeyNeedView | kKeyNeedRead | kKeyNeedLink),
                      KeyQuota::kCharge));
  } else if (k == SessionKeyring()) {
    return 0;  // join_session_keyring() answers 0 for the keyring it has
  }
  SetSessionKeyring(k);
  return k->serial;
}

bool KeyContext::PossessedIn(const Key& keyring, const Key& target, int depth,
                             KeyringWalk& walk) {
  if (!walk.Enter(keyring, depth)) return false;
  for (const auto& k : r_.Links(const_cast<Key&>(keyring))) {
    if (k.get() == &target) return true;
  }
  if (depth + 1 >= kKeyringMaxDepth) return false;
  for (const auto& k : keyring.links) {
    if (k->is_keyring() && k->Permits(creds(), true, kKeyNeedSearch).ok() &&
        PossessedIn(*k, target, depth + 1, walk)) {
      return true;
    }
  }
  return false;
}

bool KeyContext::Possessed(const Key& key) {
  std::shared_ptr<Key> session = SessionKeyring();
  if (session == nullptr) session = r_.ExistingUserKeyring(creds().ruid, true);
  KeyringWalk walk;
  for (const auto& ring : {ThreadKeyring(), ProcessKeyring(), session}) {
    if (ring == nullptr || !ring->Permits(creds(), true, kKeyNeedSearch).ok()) continue;
    if (ring.get() == &key || PossessedIn(*ring, key, 0, walk)) return true;
  }
  return false;
}

struct KeyContext::Search {
  const KeyType* type;
  const std::string& desc;
  unsigned flags;
  int64_t now;
  int error = EAGAIN;  // what a search that found nothing usable answers
};

// keyring_search_iterator(): whether a key of the right type and
// description is the answer; if not, the reason is kept as the error.
bool KeyContext::Iterate(Key& key, bool possessed, Search& s) {
  if (s.flags & kKeySearchStateCheck) {
    if (key.invalidated || key.revoked) {
      s.error = EKEYREVOKED;
      return false;
    }
    if (key.Expired(s.now)) {
      if (!(s.flags & kKeySearchSkipExpired)) s.error = EKEYEXPIRED;
      return false;
    }
  }
  if (!key.Permits(creds(), possessed, kKeyNeedSearch).ok()) {
    s.error = EACCES;
    return false;
  }
  if ((s.flags & kKeySearchStateCheck) && key.reject_error != 0) {
    s.error = key.reject_error;
    return false;
  }
  return true;
}

bool KeyContext::SearchNested(Key& keyring, bool possessed, Search& s, int depth,
                              KeyringWalk& walk, KeyRef* out) {
  if (!walk.Enter(keyring, depth)) return false;
  for (const auto& k : r_.Links(keyring)) {
    if (k->type == s.type && k->description == s.desc) {
      if (Iterate(*k, possessed, s)) {
        *out = KeyRef{k, possessed};
        return true;
      }
      break;
    }
  }
  if (depth + 1 >= kKeyringMaxDepth) return false;
  // Copied: a nested search may drop dead links of this keyring's children.
  const std::vector<std::shared_ptr<Key>> nested = keyring.links;
  for (const auto& k : nested) {
    if (!k->is_keyring() || !k->Permits(creds(), possessed, kKeyNeedSearch).ok()) continue;
    if (SearchNested(*k, possessed, s, depth + 1, walk, out)) return true;
  }
  return false;
}

Result<KeyRef> KeyContext::SearchKeyring(const KeyRef& ring, const KeyType* type,
                                         const std::string& desc, unsigned flags) {
  Key& keyring = *ring.key;
  if (!keyring.is_keyring()) return Errno(ENOTDIR);
  SV_TRY(keyring.Permits(creds(), ring.possessed, kKeyNeedSearch));
  Search s{type, desc, flags, KeyNow()};
  // The keyring itself may be what is asked for (search_nested_keyrings()).
  if (type == keyring.type && desc == keyring.description) {
    if (Iterate(keyring, ring.possessed, s)) return ring;
    return Errno(s.error);
  }
  KeyRef out;
  KeyringWalk walk;
  if (SearchNested(keyring, ring.possessed, s, 0, walk, &out)) return out;
  return Errno(s.error);
}

Result<KeyRef> KeyContext::SearchProcessKeyrings(const KeyType* type, const std::string& desc,
                                                 unsigned flags) {
  std::shared_ptr<Key> session = SessionKeyring();
  if (session == nullptr) session = r_.ExistingUserKeyring(creds().ruid, true);
  // A "no key" answer (a negative key, else nothing) wins over other
  // failures (search_process_keyrings_rcu()).
  int none = 0, other = EAGAIN;
  for (const auto& ring : {ThreadKeyring(), ProcessKeyring(), session}) {
    if (ring == nullptr) continue;
    Result<KeyRef> r = SearchKeyring(KeyRef{ring, true}, type, desc, flags);
    if (r.ok()) return r;
    const int e = r.error().value();
    if (e == ENOKEY || (e == EAGAIN && none == 0)) {
      none = e;  // a negative key is not forgotten for a later "nothing"
    } else if (e != EAGAIN) {
      other = e;
    }
  }
  return Errno(none != 0 ? none : other);
}

Result<KeyRef> KeyContext::Lookup(int32_t id, unsigned lflags, uint32_t need) {
  const bool create = lflags & kKeyLookupCreate;
  KeyRef ref;
  switch (id) {
    case kKeySpecThreadKeyring: {
      ref.key = ThreadKeyring();
      if (ref.key == nullptr) {
        if (!create) return Errno(ENOKEY);
        SV_ASSIGN_OR_RETURN(ref.key, InstallThreadKeyring());
      }
      ref.possessed = true;
      break;
    }
    case kKeySpecProcessKeyring: {
      ref.key = ProcessKeyring();
      if (ref.key == nullptr) {
        if (!create) return Errno(ENOKEY);
        SV_ASSIGN_OR_RETURN(ref.key, InstallProcessKeyring());
      }
      ref.possessed = true;
      break;
    }
    case kKeySpecSessionKeyring: {
      ref.key = SessionKeyring();
      if (ref.key == nullptr || (ref.key->uid_keyring && create)) {
        // Always installed on access: the user session keyring, or with
        // create a new anonymous one.
        SV_ASSIGN_OR_RETURN(auto user_session, r_.UserKeyring(creds().ruid, true));
        if (create) {
          SV_TRY(JoinSession(std::nullopt));
        } else {
          SetSessionKeyring(user_session);
        }
        ref.key = SessionKeyring();
      }
      ref.possessed = true;
      break;
    }
    case kKeySpecUserKeyring:
    case kKeySpecUserSessionKeyring: {
      SV_ASSIGN_OR_RETURN(ref.key,
                          r_.UserKeyring(creds().ruid, id == kKeySpecUserSessionKeyring));
      ref.possessed = true;
      break;
    }
    case kKeySpecReqkeyAuthKey:
    case kKeySpecRequestorKeyring:
      // Only a request-key helper holds an authorisation key, and the
      // sandbox runs none.
      return Errno(ENOKEY);
    default: {
      if (id < 1) return Errno(EINVAL);  // the group keyring included
      ref.key = r_.Find(id);
      if (ref.key == nullptr) return Errno(ENOKEY);
      ref.possessed = Possessed(*ref.key);
      break;
    }
  }
  Key& key = *ref.key;
  if (need != kKeyNeedUnlink) {
    const int64_t now = KeyNow();
    if (!(lflags & kKeyLookupPartial)) {
      // wait_for_key_construction(): construction never waits here.
      Status st = key.reject_error != 0 ? Status(Errno(key.reject_error)) : key.Validate(now);
      if (!st.ok() && need != kKeyDeferPermCheck) return st.error();
    } else if (need != kKeyDeferPermCheck) {
      SV_TRY(key.Validate(now));
    }
  }
  if (need != kKeyNeedUnlink && need != kKeyDeferPermCheck) {
    SV_TRY(key.Permits(creds(), ref.possessed, need));
  }
  key.last_used = KeyNow();
  return ref;
}

}  // namespace seedvisor::sentry
