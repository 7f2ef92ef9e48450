// add_key(2), request_key(2) and the keyctl(2) operations on keys and
// keyrings' contents; keyctl_attr.cc has those on a key's attributes.
#include "sentry/kernel/keys/keyctl.h"

#include <cstring>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/keys/key_registry.h"
#include "sentry/kernel/keys/process_keys.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry::keyops {
namespace {

// The ->preparse() checks of the payload.
Status CheckPayload(const KeyType* type, size_t plen) {
  if (type->is_keyring) return plen == 0 ? Status() : Status(Errno(EINVAL));
  if (plen == 0 || plen > type->max_data) return Errno(EINVAL);
  return {};
}

// logon_vet_description(): "service:name", the service not empty.
Status VetDescription(const KeyType* type, const std::string& desc) {
  if (type != &kKeyTypeLogon) return {};
  const size_t colon = desc.find(':');
  if (colon == std::string::npos || colon == 0) return Errno(EINVAL);
  return {};
}

// key_create_or_update()'s permissions for a new key.
uint32_t DefaultPerm(const KeyType* type) {
  uint32_t pos = kKeyNeedView | kKeyNeedSearch | kKeyNeedLink | kKeyNeedSetattr;
  if (type->readable) pos |= kKeyNeedRead;
  if (type->is_keyring || type->updatable) pos |= kKeyNeedWrite;
  return KeyPos(pos) | KeyUsr(kKeyNeedView);
}

// construct_get_dest_keyring(): where a constructed key goes when the
// caller names no keyring, by its KEYCTL_SET_REQKEY_KEYRING default,
// falling through to the keyrings it has.
Result<std::shared_ptr<Key>> DefaultDestination(KeyContext& ctx) {
  KeyRegistry& r = ctx.registry();
  switch (ctx.reqkey_default()) {
    case kReqkeyDeflUser:
      return r.UserKeyring(ctx.creds().ruid, false);
    case kReqkeyDeflUserSession:
      return r.UserKeyring(ctx.creds().ruid, true);
    case kReqkeyDeflSession:
      if (auto k = ctx.SessionKeyring()) return k;
      return r.UserKeyring(ctx.creds().ruid, true);
    case kReqkeyDeflProcess:
      if (auto k = ctx.ProcessKeyring()) return k;
      if (auto k = ctx.SessionKeyring()) return k;
      return r.UserKeyring(ctx.creds().ruid, true);
    default:  // default, requestor, thread
      if (auto k = ctx.ThreadKeyring()) return k;
      if (auto k = ctx.ProcessKeyring()) return k;
      if (auto k = ctx.SessionKeyring()) return k;
      return r.UserKeyring(ctx.creds().ruid, true);
  }
}

}  // namespace

Result<int32_t> AddKey(Task& t, const std::string& type, const std::optional<std::string>& desc,
                       const std::string& payload, int32_t ring) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef dest, k.ctx.Lookup(ring, kKeyLookupCreate, kKeyNeedWrite));
  const KeyType* kt = FindKeyType(type);
  if (kt == nullptr) return Errno(ENODEV);
  if (!dest.key->is_keyring()) return Errno(ENOTDIR);
  SV_TRY(CheckPayload(kt, payload.size()));
  if (!desc) return Errno(EINVAL);
  if (kt->updatable) {
    // find_key_to_update(): a live key of the same type and description
    // directly in the keyring is updated in place.
    std::shared_ptr<Key> old = k.r.FindLink(*dest.key, kt, *desc);
    if (old != nullptr && !old->revoked && !old->invalidated) {
      SV_TRY(old->Permits(k.ctx.creds(), dest.possessed, kKeyNeedWrite));
      SV_TRY(k.r.Instantiate(*old, payload));
      return old->serial;
    }
  }
  SV_TRY(VetDescription(kt, *desc));
  const Credentials& c = k.ctx.creds();
  SV_ASSIGN_OR_RETURN(auto key,
                      k.r.Alloc(kt, *desc, c.fsuid, c.fsgid, DefaultPerm(kt), KeyQuota::kCharge));
  SV_TRY(k.r.Instantiate(*key, payload));
  SV_TRY(k.r.Link(*dest.key, key));
  return key->serial;
}

Result<int32_t> RequestKey(Task& t, const std::string& type, const std::string& desc,
                           const std::optional<std::string>& callout, int32_t dest_id) {
  KeyOpScope k(t);
  KeyRef dest;
  if (dest_id != 0) {
    SV_ASSIGN_OR_RETURN(dest, k.ctx.Lookup(dest_id, kKeyLookupCreate, kKeyNeedWrite));
  }
  const KeyType* kt = FindKeyType(type);
  if (kt == nullptr) return Errno(ENOKEY);
  Result<KeyRef> found =
      k.ctx.SearchProcessKeyrings(kt, desc, kKeySearchStateCheck | kKeySearchSkipExpired);
  if (found.ok()) {
    if (dest.key != nullptr) {
      SV_TRY(found->key->Permits(k.ctx.creds(), found->possessed, kKeyNeedLink));
      SV_TRY(k.r.Link(*dest.key, found->key));
    }
    return found->key->serial;
  }
  if (found.error().value() != EAGAIN) return found.error();
  if (!callout) return Errno(ENOKEY);
  // construct_key_and_link(): keyrings are never constructed.
  if (kt->is_keyring) return Errno(EPERM);
  std::shared_ptr<Key> ring = dest.key;
  if (ring == nullptr) {
    SV_ASSIGN_OR_RETURN(ring, DefaultDestination(k.ctx));
    // Write permission on a default destination (CVE-2017-17807).
    SV_TRY(ring->Permits(k.ctx.creds(), true, kKeyNeedWrite));
  }
  const Credentials& c = k.ctx.creds();
  SV_ASSIGN_OR_RETURN(auto key,
                      k.r.Alloc(kt, desc, c.fsuid, c.fsgid, DefaultPerm(kt), KeyQuota::kCharge));
  SV_TRY(k.r.Link(*ring, key));
  // No helper instantiates it: it is negated, as request-key does for a
  // key it has no rule for, and answers ENOKEY for a while.
  k.r.Negate(*key, ENOKEY, kKeyNegativeTimeout);
  return Errno(ENOKEY);
}

Result<int32_t> GetKeyringId(Task& t, int32_t id, bool create) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref, k.ctx.Lookup(id, create ? kKeyLookupCreate : 0, kKeyNeedSearch));
  return ref.key->serial;
}

Result<int32_t> JoinSession(Task& t, const std::optional<std::string>& name) {
  KeyOpScope k(t);
  return k.ctx.JoinSession(name);
}

Status Update(Task& t, int32_t id, const std::string& payload) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref, k.ctx.Lookup(id, 0, kKeyNeedWrite));
  if (!ref.key->type->updatable) return Errno(EOPNOTSUPP);
  SV_TRY(CheckPayload(ref.key->type, payload.size()));
  return k.r.Instantiate(*ref.key, payload);
}

Status Revoke(Task& t, int32_t id) {
  KeyOpScope k(t);
  Result<KeyRef> ref = k.ctx.Lookup(id, 0, kKeyNeedWrite);
  if (!ref.ok() && ref.error().value() == EACCES) ref = k.ctx.Lookup(id, 0, kKeyNeedSetattr);
  if (!ref.ok()) return ref.error();
  k.r.Revoke(*ref->key);
  return {};
}

Status Clear(Task& t, int32_t ring) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref, k.ctx.Lookup(ring, kKeyLookupCreate, kKeyNeedWrite));
  if (!ref.key->is_keyring()) return Errno(ENOTDIR);
  k.r.Clear(*ref.key);
  return {};
}

Status Link(Task& t, int32_t id, int32_t ring) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef dest, k.ctx.Lookup(ring, kKeyLookupCreate, kKeyNeedWrite));
  SV_ASSIGN_OR_RETURN(KeyRef key, k.ctx.Lookup(id, kKeyLookupCreate, kKeyNeedLink));
  return k.r.Link(*dest.key, key.key);
}

Status Unlink(Task& t, int32_t id, int32_t ring) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef from, k.ctx.Lookup(ring, 0, kKeyNeedWrite));
  SV_ASSIGN_OR_RETURN(KeyRef key, k.ctx.Lookup(id, kKeyLookupPartial, kKeyNeedUnlink));
  return k.r.Unlink(*from.key, *key.key);
}

Result<int32_t> Search(Task& t, int32_t ring, const std::string& type, const std::string& desc,
                       int32_t dest_id) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef start, k.ctx.Lookup(ring, 0, kKeyNeedSearch));
  KeyRef dest;
  if (dest_id != 0) {
    SV_ASSIGN_OR_RETURN(dest, k.ctx.Lookup(dest_id, kKeyLookupCreate, kKeyNeedWrite));
  }
  const KeyType* kt = FindKeyType(type);
  if (kt == nullptr) return Errno(ENOKEY);
  Result<KeyRef> found = k.ctx.SearchKeyring(start, kt, desc, kKeySearchStateCheck);
  if (!found.ok()) {
    // Nothing and a negative key look the same.
    return found.error().value() == EAGAIN ? Errno(ENOKEY) : found.error();
  }
  if (dest.key != nullptr) {
    SV_TRY(found->key->Permits(k.ctx.creds(), found->possessed, kKeyNeedLink));
    SV_TRY(k.r.Link(*dest.key, found->key));
  }
  return found->key->serial;
}

Result<std::string> Read(Task& t, int32_t id) {
  KeyOpScope k(t);
  Result<KeyRef> r = k.ctx.Lookup(id, 0, kKeyDeferPermCheck);
  if (!r.ok()) return Errno(ENOKEY);
  Key& key = *r->key;
  if (key.reject_error != 0) return Errno(key.reject_error);
  // keyctl_read_key(): Read permission, or possession (a possessed key
  // is readable without it).
  Status perm = key.Permits(k.ctx.creds(), r->possessed, kKeyNeedRead);
  if (!perm.ok() && !r->possessed) return perm.error();
  if (!key.type->readable) return Errno(EOPNOTSUPP);
  SV_TRY(key.Validate(KeyNow()));
  if (!key.is_keyring()) return key.payload;
  std::string out;
  for (const auto& l : k.r.Links(key)) {
    const int32_t serial = l->serial;
    out.append(reinterpret_cast<const char*>(&serial), sizeof(serial));
  }
  return out;
}

Result<int> SetReqkeyKeyring(Task& t, int defl) {
  KeyOpScope k(t);
  const int old = k.ctx.reqkey_default();
  switch (defl) {
    case kReqkeyDeflNoChange:
      return old;
    case kReqkeyDeflThread:
      SV_TRY(k.ctx.InstallThreadKeyring());  // keeps an existing one (CVE-2017-7472)
      break;
    case kReqkeyDeflProcess:
      SV_TRY(k.ctx.InstallProcessKeyring());
      break;
    case kReqkeyDeflDefault:
    case kReqkeyDeflSession:
    case kReqkeyDeflUser:
    case kReqkeyDeflUserSession:
    case kReqkeyDeflRequestor:
      break;
    default:  // the group keyring included
      return Errno(EINVAL);
  }
  k.ctx.set_reqkey_default(defl);
  return old;
}

Status Invalidate(Task& t, int32_t id) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref, k.ctx.Lookup(id, 0, kKeyNeedSearch));
  k.r.Invalidate(*ref.key);
  return {};
}

Status NoAuthority() { return Errno(EPERM); }

Result<int32_t> AssumeAuthority(int32_t id) {
  if (id < 0) return Errno(EINVAL);
  if (id == 0) return 0;  // drops an authority the task never has
  return Errno(ENOKEY);   // no authorisation key exists for any key
}

}  // namespace seedvisor::sentry::keyops
