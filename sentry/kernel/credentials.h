// Credentials: a task's user and group ids and its capabilities
// (credentials(7), capabilities(7)).
//
//   Credentials c = Credentials::ForUser(1000, 100);   // no capabilities
//   Credentials r;                                      // root, every capability
//   r.cap_bounding = CapBit(CAP_KILL);  r.cap_permitted &= r.cap_bounding; ...
//   if (!c.HasCap(CAP_CHOWN)) return Errno(EPERM);
//
// There are no file capabilities and no set-user-ID executables in the
// sandbox (the rootfs is the container's, read through the sentry), so exec
// recomputes the sets from the "root is privileged" rules and the ambient set
// alone (see OnExec). Capabilities are per task, as in Linux.
#ifndef SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_
#define SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_

#include <linux/capability.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace seedvisor::sentry {

class LandlockDomain;  // sentry/vfs/landlock.h
class UserNamespace;   // sentry/kernel/user_namespace.h

// The capabilities this kernel knows (0..CAP_LAST_CAP, which is 40 here as
// in Linux 5.9+: /proc/sys/kernel/cap_last_cap).
//
// The guest's sets are raw bit masks, not libcap's cap_t: they are what
// capget/capset, prctl(PR_CAPBSET_*) and /proc/PID/status exchange with the
// guest, and libcap's calls (cap_set_proc, cap_drop_bound) act on the host
// process that makes them. runsc uses libcap for the names in config.json
// (runsc/oci/spec.cc) and for the sentry's own host capabilities.
constexpr int kLastCap = 40;
constexpr uint64_t kAllCaps = (uint64_t{1} << (kLastCap + 1)) - 1;
constexpr uint64_t CapBit(int cap) { return uint64_t{1} << cap; }

// prctl(PR_SET_SECUREBITS) bits we honour (linux/securebits.h).
constexpr uint32_t kSecbitNoroot = 1 << 0;
constexpr uint32_t kSecbitNoSetuidFixup = 1 << 2;
constexpr uint32_t kSecbitKeepCaps = 1 << 4;
constexpr uint32_t kSecbitNoCapAmbientRaise = 1 << 6;

struct Credentials {
  // The ids are the sandbox's (Linux's kuid_t/kgid_t: ids in the initial
  // user namespace); a task in another user namespace sees them through its
  // maps (sentry/kernel/user_namespace.h).
  uid_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
  std::vector<gid_t> groups;
  // The five sets; bit n is capability n. The defaults are root's.
  uint64_t cap_inheritable = 0;
  uint64_t cap_permitted = kAllCaps;
  uint64_t cap_effective = kAllCaps;
  uint64_t cap_bounding = kAllCaps;
  uint64_t cap_ambient = 0;
  uint32_t securebits = 0;
  // PR_SET_NO_NEW_PRIVS: inherited by children and across exec, never unset.
  // (Linux keeps it on the task, not the cred; it travels the same way.)
  bool no_new_privs = false;
  // landlock_restrict_self(2)'s layers (null: none). Immutable and shared:
  // a copy of the credentials (fork, clone, exec) keeps the same domain,
  // and only a new restriction replaces it.
  std::shared_ptr<const LandlockDomain> landlock;
  // The user namespace the capability sets are relative to (cred->user_ns);
  // null: the sandbox's initial one. Replaced only by unshare(2) and
  // setns(2) of CLONE_NEWUSER, by the task itself, under Kernel::mu();
  // another task reads it under Kernel::mu() (UserNsOf()).
  std::shared_ptr<UserNamespace> user_ns;

  // All ids `uid`/`gid`; root gets every capability, anyone else none
  // (the bounding set stays full).
  static Credentials ForUser(uid_t uid, gid_t gid);

  // capable(cap): the capability over the whole sandbox, which only a
  // task in its initial user namespace can hold. Capabilities a task holds
  // in a user namespace of its own rule only what that namespace owns
  // (HasCapIn).
  bool HasCap(int cap) const {
    return user_ns == nullptr && (cap_effective & CapBit(cap)) != 0;
  }
  // ns_capable(ns, cap) (security/commoncap.c cap_capable()): `cap` in
  // its own user namespace, or every capability in a namespace below it
  // that its euid owns (null `ns`: the initial one). Defined in
  // user_namespace.cc.
  bool HasCapIn(const UserNamespace* ns, int cap) const;
  // ns_capable(current_user_ns(), cap).
  bool HasCapInOwnNs(int cap) const { return (cap_effective & CapBit(cap)) != 0; }
  bool InGroup(gid_t g) const;

  // Installs configured sets (OCI process.capabilities) keeping the
  // invariants of capabilities(7): effective within permitted, ambient within
  // permitted and inheritable.
  void SetCaps(uint64_t bounding, uint64_t effective, uint64_t inheritable, uint64_t permitted,
               uint64_t ambient);

  // After a change of ruid/euid/suid (setuid(2) family) from the old ids:
  // cap_emulate_setxuid() in security/commoncap.c. Leaving uid 0 in all of
  // ruid/euid/suid clears permitted, effective and ambient unless
  // SECBIT_KEEP_CAPS; euid 0 -> nonzero clears effective; nonzero -> 0
  // raises effective to permitted.
  void FixupAfterSetuid(uid_t old_ruid, uid_t old_euid, uid_t old_suid);
  // After setfsuid(2): the filesystem capabilities leave (or, for fsuid 0,
  // re-enter from permitted) the effective set (cap_task_fix_setuid()).
  void FixupAfterSetfsuid(uid_t old_fsuid);

  // execve(2) (cap_bprm_creds_from_file(), with no file capabilities and no
  // set-ID bits): if ruid or euid is 0 (and not SECBIT_NOROOT), permitted =
  // inheritable | bounding and, for euid 0, effective = permitted; otherwise
  // permitted = effective = ambient. With no_new_privs, nothing beyond the
  // old permitted set is gained.
  void OnExec();

  // capset(2) rules: EPERM unless the new sets are within what the caller may
  // set (new permitted within old; new inheritable within old inheritable |
  // permitted, or with CAP_SETPCAP within old inheritable | bounding;
  // effective within the new permitted). Returns 0 or an errno.
  int Capset(uint64_t effective, uint64_t permitted, uint64_t inheritable);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_CREDENTIALS_H_
