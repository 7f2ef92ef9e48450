// The operations of add_key(2), request_key(2) and keyctl(2) on decoded
// arguments (security/keys/keyctl.c in Linux); sentry/syscalls/sys_keys.cc
// copies the guest's strings and buffers in and out.
//
//   SV_ASSIGN_OR_RETURN(int32_t id, keyops::AddKey(t, "user", "desc", "data",
//                                                  kKeySpecSessionKeyring));
//   SV_ASSIGN_OR_RETURN(std::string data, keyops::Read(t, id));
//
// Each takes the registry's lock for its whole run.
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_KEYCTL_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_KEYCTL_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class Task;

namespace keyops {

// add_key(2): a new key of `type` linked into `ring`, or the existing key
// of that type and description there updated. `desc` absent: none given.
Result<int32_t> AddKey(Task& t, const std::string& type, const std::optional<std::string>& desc,
                       const std::string& payload, int32_t ring);
// request_key(2): the key found through the caller's keyrings (linked
// into `dest` if given). Nothing found: ENOKEY, and with `callout` a
// negative key is left in the destination, as when /sbin/request-key has
// no rule for it (the sandbox runs no helper).
Result<int32_t> RequestKey(Task& t, const std::string& type, const std::string& desc,
                           const std::optional<std::string>& callout, int32_t dest);

Result<int32_t> GetKeyringId(Task& t, int32_t id, bool create);
Result<int32_t> JoinSession(Task& t, const std::optional<std::string>& name);
Status Update(Task& t, int32_t id, const std::string& payload);
Status Revoke(Task& t, int32_t id);
Status Chown(Task& t, int32_t id, uid_t uid, gid_t gid);
Status SetPerm(Task& t, int32_t id, uint32_t perm);
// "type;uid;gid;perm;description" with its NUL.
Result<std::string> Describe(Task& t, int32_t id);
Status Clear(Task& t, int32_t ring);
Status Link(Task& t, int32_t id, int32_t ring);
Status Unlink(Task& t, int32_t id, int32_t ring);
Result<int32_t> Search(Task& t, int32_t ring, const std::string& type, const std::string& desc,
                       int32_t dest);
// The whole payload (a keyring: its keys' serials).
Result<std::string> Read(Task& t, int32_t id);
// The previous default.
Result<int> SetReqkeyKeyring(Task& t, int defl);
Status SetTimeout(Task& t, int32_t id, uint32_t seconds);
Status Invalidate(Task& t, int32_t id);
// The key's security label: "" with its NUL (no LSM).
Result<std::string> GetSecurity(Task& t, int32_t id);
Status SessionToParent(Task& t);
Result<int32_t> GetPersistent(Task& t, uid_t uid, int32_t dest);
Status Move(Task& t, int32_t id, int32_t from, int32_t to, unsigned flags);
// KEYCTL_INSTANTIATE, _NEGATE, _REJECT, _INSTANTIATE_IOV need the
// authorisation key of a request-key helper: EPERM.
Status NoAuthority();
// KEYCTL_ASSUME_AUTHORITY.
Result<int32_t> AssumeAuthority(int32_t id);

}  // namespace keyops
}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_KEYCTL_H_
