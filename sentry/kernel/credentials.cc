#include "sentry/kernel/credentials.h"

#include <errno.h>

#include <algorithm>

namespace seedvisor::sentry {
namespace {

// CAP_FS_MASK (include/linux/capability.h): what setfsuid(2) moves.
constexpr uint64_t kFsCaps = CapBit(CAP_CHOWN) | CapBit(CAP_DAC_OVERRIDE) |
                             CapBit(CAP_DAC_READ_SEARCH) | CapBit(CAP_FOWNER) |
                             CapBit(CAP_FSETID) | CapBit(CAP_LINUX_IMMUTABLE) |
                             CapBit(CAP_MAC_OVERRIDE) | CapBit(CAP_MKNOD);

bool Subset(uint64_t a, uint64_t b) { return (a & ~b) == 0; }

}  // namespace

Credentials Credentials::ForUser(uid_t uid, gid_t gid) {
  Credentials c;
  c.ruid = c.euid = c.suid = c.fsuid = uid;
  c.rgid = c.egid = c.sgid = c.fsgid = gid;
  if (uid != 0) c.cap_permitted = c.cap_effective = 0;
  return c;
}

bool Credentials::InGroup(gid_t g) const {
  return g == fsgid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

void Credentials::SetCaps(uint64_t bounding, uint64_t effective, uint64_t inheritable,
                          uint64_t permitted, uint64_t ambient) {
  cap_bounding = bounding & kAllCaps;
  cap_permitted = permitted & kAllCaps;
  cap_effective = effective & cap_permitted;
  cap_inheritable = inheritable & kAllCaps;
  // PR_CAP_AMBIENT_RAISE refuses a capability that is not both permitted
  // and inheritable (runc ignores that failure; so do we, by dropping it).
  cap_ambient = ambient & cap_permitted & cap_inheritable;
}

void Credentials::FixupAfterSetuid(uid_t old_ruid, uid_t old_euid, uid_t old_suid) {
  if (securebits & kSecbitNoSetuidFixup) return;
  if ((old_ruid == 0 || old_euid == 0 || old_suid == 0) && ruid != 0 && euid != 0 && suid != 0) {
    if (!(securebits & kSecbitKeepCaps)) cap_permitted = cap_effective = 0;
    cap_ambient = 0;
  }
  if (old_euid == 0 && euid != 0) cap_effective = 0;
  if (old_euid != 0 && euid == 0) cap_effective = cap_permitted;
}

void Credentials::FixupAfterSetfsuid(uid_t old_fsuid) {
  if (securebits & kSecbitNoSetuidFixup) return;
  if (old_fsuid == 0 && fsuid != 0) cap_effective &= ~kFsCaps;
  if (old_fsuid != 0 && fsuid == 0) cap_effective |= cap_permitted & kFsCaps;
}

void Credentials::OnExec() {
  uint64_t old_permitted = cap_permitted;
  bool root = !(securebits & kSecbitNoroot) && (ruid == 0 || euid == 0);
  if (root) {
    // handle_privileged_root(): root's executables count as having every
    // file capability, and the effective bit when euid is 0.
    cap_permitted = (cap_inheritable | cap_bounding) | cap_ambient;
    cap_effective = euid == 0 ? cap_permitted : cap_ambient;
  } else {
    cap_permitted = cap_ambient;
    cap_effective = cap_ambient;
  }
  // no_new_privs (and Linux's general rule for unsafe execs): never more
  // than was permitted before.
  if (no_new_privs) {
    cap_permitted &= old_permitted;
    cap_effective &= cap_permitted;
  }
  // SECURE_KEEP_CAPS is cleared on exec (securebits.h: "cleared on execve").
  securebits &= ~kSecbitKeepCaps;
}

int Credentials::Capset(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
  if (!Subset(effective | permitted | inheritable, kAllCaps)) {
    effective &= kAllCaps;
    permitted &= kAllCaps;
    inheritable &= kAllCaps;
  }
  // cap_capset() in security/commoncap.c.
  if (!HasCap(CAP_SETPCAP) && !Subset(inheritable, cap_inheritable | cap_permitted)) return EPERM;
  if (!Subset(inheritable, cap_inheritable | cap_bounding)) return EPERM;
  if (!Subset(permitted, cap_permitted)) return EPERM;
  if (!Subset(effective, permitted)) return EPERM;
  cap_effective = effective;
  cap_permitted = permitted;
  cap_inheritable = inheritable;
  cap_ambient &= permitted & inheritable;
  return 0;
}

}  // namespace seedvisor::sentry
