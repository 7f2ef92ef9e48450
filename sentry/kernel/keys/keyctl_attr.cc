// The keyctl(2) operations on a key's attributes and on the caller's
// keyrings: owner, permissions, description, timeout, the parent's
// session keyring, persistent keyrings, moves between keyrings.
#include <linux/capability.h>

#include "absl/strings/str_format.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/keys/key_registry.h"
#include "sentry/kernel/keys/keyctl.h"
#include "sentry/kernel/keys/process_keys.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry::keyops {
Status Chown(Task& t, int32_t id, uid_t uid, gid_t gid) {
  constexpr uint32_t kUnset = static_cast<uint32_t>(-1);
  if (uid == kUnset && gid == kUnset) return {};
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref,
                      k.ctx.Lookup(id, kKeyLookupCreate | kKeyLookupPartial, kKeyNeedSetattr));
  Key& key = *ref.key;
  const Credentials& c = k.ctx.creds();
  if (!c.HasCap(CAP_SYS_ADMIN)) {
    // Only the administrator gives a key away, or to a group the caller
    // is not in.
    if (uid != kUnset && uid != key.uid()) return Errno(EACCES);
    if (gid != kUnset && gid != key.gid && gid != c.fsgid && !c.InGroup(gid)) {
      return Errno(EACCES);
    }
  }
  if (uid != kUnset) SV_TRY(k.r.ChangeOwner(key, uid));
  if (gid != kUnset) key.gid = gid;
  return {};
}

Status SetPerm(Task& t, int32_t id, uint32_t perm) {
  if (perm & ~kKeyPermMask) return Errno(EINVAL);
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref,
                      k.ctx.Lookup(id, kKeyLookupCreate | kKeyLookupPartial, kKeyNeedSetattr));
  const Credentials& c = k.ctx.creds();
  if (ref.key->uid() != c.fsuid && !c.HasCap(CAP_SYS_ADMIN)) return Errno(EACCES);
  ref.key->perm = perm;
  return {};
}

Result<std::string> Describe(Task& t, int32_t id) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref, k.ctx.Lookup(id, kKeyLookupPartial, kKeyNeedView));
  const Key& key = *ref.key;
  std::string s = absl::StrFormat("%s;%d;%d;%08x;%s", key.type->name, KeyIdShown(key.uid()),
                                  KeyIdShown(key.gid), key.perm, key.description);
  s.push_back('\0');
  return s;
}

Status SetTimeout(Task& t, int32_t id, uint32_t seconds) {
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ref,
                      k.ctx.Lookup(id, kKeyLookupCreate | kKeyLookupPartial, kKeyNeedSetattr));
  ref.key->expiry = seconds == 0 ? 0 : KeyNow() + seconds;
  return {};
}

Result<std::string> GetSecurity(Task& t, int32_t id) {
  KeyOpScope k(t);
  SV_TRY(k.ctx.Lookup(id, 0, kKeyNeedView));
  return std::string(1, '\0');
}

Status SessionToParent(Task& t) {
  // keyctl_session_to_parent(): a single-threaded parent other than the
  // init, with the caller's effective ids as all its ids, whose session
  // keyring (if any) and the caller's belong to that uid. Linux applies
  // it when the parent next returns to user mode; here at once.
  std::shared_ptr<Task> parent;
  Credentials pc;
  {
    absl::MutexLock kl(&t.kernel().mu());
    std::shared_ptr<ThreadGroup> ptg = t.tg().parent.lock();
    if (ptg != nullptr && ptg->tgid() > 1 && ptg->tasks.size() == 1) {
      parent = ptg->tasks.front()->shared_from_this();
      pc = parent->creds();
    }
  }
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef ses, k.ctx.Lookup(kKeySpecSessionKeyring, 0, kKeyNeedLink));
  if (parent == nullptr) return Errno(EPERM);
  const Credentials& me = k.ctx.creds();
  TaskKeyrings& pk = k.r.OfTask(*parent);
  if (pk.session == ses.key) return {};
  if (pc.ruid != me.euid || pc.euid != me.euid || pc.suid != me.euid || pc.rgid != me.egid ||
      pc.egid != me.egid || pc.sgid != me.egid) {
    return Errno(EPERM);
  }
  if ((pk.session != nullptr && pk.session->uid() != me.euid) || ses.key->uid() != me.euid) {
    return Errno(EPERM);
  }
  pk.session = ses.key;
  return {};
}

Result<int32_t> GetPersistent(Task& t, uid_t uid, int32_t dest_id) {
  KeyOpScope k(t);
  const Credentials& c = k.ctx.creds();
  if (uid == static_cast<uid_t>(-1)) {
    uid = c.ruid;
  } else if (uid != c.ruid && uid != c.euid && !c.HasCap(CAP_SETUID)) {
    return Errno(EPERM);  // only one's own, unless privileged
  }
  SV_ASSIGN_OR_RETURN(KeyRef dest, k.ctx.Lookup(dest_id, kKeyLookupCreate, kKeyNeedWrite));
  if (!dest.key->is_keyring()) return Errno(ENOTDIR);
  std::shared_ptr<Key> p = k.r.PersistentKeyring(uid, static_cast<gid_t>(-1));
  SV_TRY(p->Permits(c, true, kKeyNeedLink));
  SV_TRY(k.r.Link(*dest.key, p));
  return p->serial;
}

Status Move(Task& t, int32_t id, int32_t from_id, int32_t to_id, unsigned flags) {
  constexpr unsigned kMoveExcl = 1;  // KEYCTL_MOVE_EXCL
  if (flags & ~kMoveExcl) return Errno(EINVAL);
  KeyOpScope k(t);
  SV_ASSIGN_OR_RETURN(KeyRef key, k.ctx.Lookup(id, kKeyLookupCreate, kKeyNeedLink));
  SV_ASSIGN_OR_RETURN(KeyRef from, k.ctx.Lookup(from_id, 0, kKeyNeedWrite));
  SV_ASSIGN_OR_RETURN(KeyRef to, k.ctx.Lookup(to_id, kKeyLookupCreate, kKeyNeedWrite));
  if (!from.key->is_keyring() || !to.key->is_keyring()) return Errno(ENOTDIR);
  if (from.key == to.key) return {};
  // key_move(): it must be in `from`; EEXIST with MOVE_EXCL if `to` has
  // one of its type and description.
  bool linked = false;
  for (const auto& l : k.r.Links(*from.key)) linked |= l == key.key;
  if (!linked) return Errno(ENOENT);
  if ((flags & kMoveExcl) &&
      k.r.FindLink(*to.key, key.key->type, key.key->description) != nullptr) {
    return Errno(EEXIST);
  }
  SV_TRY(k.r.Link(*to.key, key.key));
  return k.r.Unlink(*from.key, *key.key);
}

}  // namespace seedvisor::sentry::keyops
