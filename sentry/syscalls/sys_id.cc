// Identity: uid/gid, supplementary groups, capabilities.
#include <linux/capability.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <cstring>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/user_namespace.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

constexpr uint32_t kNoChange = static_cast<uint32_t>(-1);

// The ids a task names and sees are its user namespace's
// (sentry/kernel/user_namespace.h): from_kuid_munged() out, make_kuid() in.
uint32_t SeenUid(const Task& t, uint32_t kid) {
  return UserNamespace::UidSeen(t.creds().user_ns.get(), kid);
}
uint32_t SeenGid(const Task& t, uint32_t kid) {
  return UserNamespace::GidSeen(t.creds().user_ns.get(), kid);
}

// The sandbox ids of what the caller names in `ids` (-1, no change, stays);
// EINVAL if its namespace maps one of them to none (setresuid(2) et al.).
int ToKernelIds(const Task& t, UserNamespace::Map map, std::initializer_list<uint32_t*> ids) {
  const UserNamespace* ns = t.creds().user_ns.get();
  if (ns == nullptr) return 0;
  for (uint32_t* id : ids) {
    if (*id == kNoChange) continue;
    const int64_t k = UserNamespace::IdFrom(ns, map, *id);
    if (k < 0) return EINVAL;
    *id = static_cast<uint32_t>(k);
  }
  return 0;
}

}  // namespace

SyscallReturn SysGetuid(Task& t, const SyscallArgs&) { return SeenUid(t, t.creds().ruid); }
SyscallReturn SysGeteuid(Task& t, const SyscallArgs&) { return SeenUid(t, t.creds().euid); }
SyscallReturn SysGetgid(Task& t, const SyscallArgs&) { return SeenGid(t, t.creds().rgid); }
SyscallReturn SysGetegid(Task& t, const SyscallArgs&) { return SeenGid(t, t.creds().egid); }

SyscallReturn SysGetresuid(Task& t, const SyscallArgs& a) {
  const Credentials& c = t.creds();
  SV_TRY(t.CopyOutObj(a.Addr(0), SeenUid(t, c.ruid)));
  SV_TRY(t.CopyOutObj(a.Addr(1), SeenUid(t, c.euid)));
  SV_TRY(t.CopyOutObj(a.Addr(2), SeenUid(t, c.suid)));
  return 0;
}

SyscallReturn SysGetresgid(Task& t, const SyscallArgs& a) {
  const Credentials& c = t.creds();
  SV_TRY(t.CopyOutObj(a.Addr(0), SeenGid(t, c.rgid)));
  SV_TRY(t.CopyOutObj(a.Addr(1), SeenGid(t, c.egid)));
  SV_TRY(t.CopyOutObj(a.Addr(2), SeenGid(t, c.sgid)));
  return 0;
}

namespace {

// commit_creds(): a change of the effective or filesystem ids makes the
// process non-dumpable (suid_dumpable is 0).
class DumpableGuard {
 public:
  explicit DumpableGuard(Task& t)
      : t_(t), euid_(t.creds().euid), fsuid_(t.creds().fsuid), egid_(t.creds().egid),
        fsgid_(t.creds().fsgid) {}
  ~DumpableGuard() {
    const Credentials& c = t_.creds();
    if (c.euid != euid_ || c.fsuid != fsuid_ || c.egid != egid_ || c.fsgid != fsgid_) {
      t_.tg().dumpable = false;
    }
  }

 private:
  Task& t_;
  const uid_t euid_, fsuid_;
  const gid_t egid_, fsgid_;
};

}  // namespace

namespace {

// The set*id rules of kernel/sys.c, for uids and gids alike, in one place.
// `priv` is CAP_SETUID (CAP_SETGID for gids). kNoChange (-1) leaves an id as
// it is; it is also the one invalid id (uid_valid() in the sandbox's single
// user namespace). Each rule checks every requested id against the OLD ids
// before changing any, and sets the filesystem id to the new effective id.
struct Ids {
  uint32_t r, e, s, fs;
};

// __sys_setresuid(): an unprivileged caller may pick each id among its
// current real, effective and saved ids. A call that changes nothing (the
// effective id requested equal to both the effective and the filesystem id)
// leaves the filesystem id alone.
int SetRes(Ids& c, bool priv, uint32_t r, uint32_t e, uint32_t s) {
  auto same = [&](uint32_t id) { return id == kNoChange || id == c.r || id == c.e || id == c.s; };
  if ((r == kNoChange || r == c.r) && (e == kNoChange || (e == c.e && e == c.fs)) &&
      (s == kNoChange || s == c.s)) {
    return 0;
  }
  if (!priv && !(same(r) && same(e) && same(s))) return EPERM;
  if (r != kNoChange) c.r = r;
  if (e != kNoChange) c.e = e;
  if (s != kNoChange) c.s = s;
  c.fs = c.e;
  return 0;
}

// __sys_setreuid()/__sys_setregid(): the real id may become the real or the
// effective id, the effective id any of the three; the saved id follows the
// new effective id when the real id is set or the effective id is set to
// something other than the old real id.
int SetRe(Ids& c, bool priv, uint32_t r, uint32_t e) {
  if (!priv) {
    if (r != kNoChange && r != c.r && r != c.e) return EPERM;
    if (e != kNoChange && e != c.r && e != c.e && e != c.s) return EPERM;
  }
  const uint32_t old_r = c.r;
  if (r != kNoChange) c.r = r;
  if (e != kNoChange) c.e = e;
  if (r != kNoChange || (e != kNoChange && e != old_r)) c.s = c.e;
  c.fs = c.e;
  return 0;
}

// __sys_setuid()/__sys_setgid(): privileged, all four ids; otherwise the
// effective (and filesystem) id may become the real or the saved id.
int Set(Ids& c, bool priv, uint32_t id) {
  if (id == kNoChange) return EINVAL;
  if (priv) {
    c.r = c.s = id;
  } else if (id != c.r && id != c.s) {
    return EPERM;
  }
  c.e = c.fs = id;
  return 0;
}

// __sys_setfsuid()/__sys_setfsgid(): never fails; an id that is invalid or
// not allowed (not one of the four current ids, unprivileged) changes
// nothing. The caller returns the old filesystem id either way.
void SetFs(Ids& c, bool priv, uint32_t id) {
  if (id == kNoChange) return;
  if (priv || id == c.r || id == c.e || id == c.s || id == c.fs) c.fs = id;
}

Ids UidsOf(const Credentials& c) { return {c.ruid, c.euid, c.suid, c.fsuid}; }
Ids GidsOf(const Credentials& c) { return {c.rgid, c.egid, c.sgid, c.fsgid}; }

// Installs new uids, with the capability changes that follow
// (cap_task_fix_setuid(): LSM_SETID_FS for setfsuid, cap_emulate_setxuid()
// for the others, which look at the real, effective and saved ids only)
// and the per-user task count.
void CommitUids(Task& t, const Ids& n, bool fs_only) {
  Credentials& c = t.mutable_creds();
  const uid_t old_r = c.ruid, old_e = c.euid, old_s = c.suid, old_fs = c.fsuid;
  c.ruid = n.r;
  c.euid = n.e;
  c.suid = n.s;
  c.fsuid = n.fs;
  if (fs_only) {
    c.FixupAfterSetfsuid(old_fs);
  } else {
    c.FixupAfterSetuid(old_r, old_e, old_s);
  }
  if (c.ruid != old_r) t.kernel().RecountTaskUid(t);
}

void CommitGids(Task& t, const Ids& n) {
  Credentials& c = t.mutable_creds();
  c.rgid = n.r;
  c.egid = n.e;
  c.sgid = n.s;
  c.fsgid = n.fs;
}

SyscallReturn UidResult(Task& t, int err, const Ids& n) {
  if (err != 0) return Errno(err);
  CommitUids(t, n, /*fs_only=*/false);
  return 0;
}

SyscallReturn GidResult(Task& t, int err, const Ids& n) {
  if (err != 0) return Errno(err);
  CommitGids(t, n);
  return 0;
}

}  // namespace

SyscallReturn SysSetresuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  uint32_t r = a.Uint(0), e = a.Uint(1), s = a.Uint(2);
  if (int err = ToKernelIds(t, UserNamespace::Map::kUid, {&r, &e, &s}); err != 0) return Errno(err);
  int err = SetRes(n, t.creds().HasCapInOwnNs(CAP_SETUID), r, e, s);
  return UidResult(t, err, n);
}

SyscallReturn SysSetresgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  uint32_t r = a.Uint(0), e = a.Uint(1), s = a.Uint(2);
  if (int err = ToKernelIds(t, UserNamespace::Map::kGid, {&r, &e, &s}); err != 0) return Errno(err);
  int err = SetRes(n, t.creds().HasCapInOwnNs(CAP_SETGID), r, e, s);
  return GidResult(t, err, n);
}

SyscallReturn SysSetuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  uint32_t id = a.Uint(0);
  if (int err = ToKernelIds(t, UserNamespace::Map::kUid, {&id}); err != 0) return Errno(err);
  return UidResult(t, Set(n, t.creds().HasCapInOwnNs(CAP_SETUID), id), n);
}

SyscallReturn SysSetgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  uint32_t id = a.Uint(0);
  if (int err = ToKernelIds(t, UserNamespace::Map::kGid, {&id}); err != 0) return Errno(err);
  return GidResult(t, Set(n, t.creds().HasCapInOwnNs(CAP_SETGID), id), n);
}

SyscallReturn SysSetreuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = UidsOf(t.creds());
  uint32_t r = a.Uint(0), e = a.Uint(1);
  if (int err = ToKernelIds(t, UserNamespace::Map::kUid, {&r, &e}); err != 0) return Errno(err);
  return UidResult(t, SetRe(n, t.creds().HasCapInOwnNs(CAP_SETUID), r, e), n);
}

SyscallReturn SysSetregid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  Ids n = GidsOf(t.creds());
  uint32_t r = a.Uint(0), e = a.Uint(1);
  if (int err = ToKernelIds(t, UserNamespace::Map::kGid, {&r, &e}); err != 0) return Errno(err);
  return GidResult(t, SetRe(n, t.creds().HasCapInOwnNs(CAP_SETGID), r, e), n);
}

SyscallReturn SysSetfsuid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  const uint32_t old = t.creds().fsuid;
  Ids n = UidsOf(t.creds());
  uint32_t id = a.Uint(0);
  // An id the namespace does not map changes nothing.
  if (ToKernelIds(t, UserNamespace::Map::kUid, {&id}) != 0) id = kNoChange;
  SetFs(n, t.creds().HasCapInOwnNs(CAP_SETUID), id);
  CommitUids(t, n, /*fs_only=*/true);
  return SeenUid(t, old);
}

SyscallReturn SysSetfsgid(Task& t, const SyscallArgs& a) {
  DumpableGuard dumpable(t);
  const uint32_t old = t.creds().fsgid;
  Ids n = GidsOf(t.creds());
  uint32_t id = a.Uint(0);
  if (ToKernelIds(t, UserNamespace::Map::kGid, {&id}) != 0) id = kNoChange;
  SetFs(n, t.creds().HasCapInOwnNs(CAP_SETGID), id);
  CommitGids(t, n);
  return SeenGid(t, old);
}

SyscallReturn SysGetgroups(Task& t, const SyscallArgs& a) {
  const auto& g = t.creds().groups;
  int size = a.Int(0);
  if (size < 0) return Errno(EINVAL);
  if (size == 0) return g.size();
  if (static_cast<size_t>(size) < g.size()) return Errno(EINVAL);
  std::vector<gid_t> seen(g.size());
  for (size_t i = 0; i < g.size(); i++) seen[i] = SeenGid(t, g[i]);
  SV_TRY(t.CopyOut(a.Addr(1), seen.data(), seen.size() * sizeof(gid_t)));
  return g.size();
}

SyscallReturn SysSetgroups(Task& t, const SyscallArgs& a) {
  if (!t.creds().HasCap(CAP_SETGID)) return Errno(EPERM);
  int size = a.Int(0);
  if (size < 0 || size > 65536) return Errno(EINVAL);
  std::vector<gid_t> g(static_cast<size_t>(size));
  SV_TRY(t.CopyIn(a.Addr(1), g.data(), g.size() * sizeof(gid_t)));
  t.mutable_creds().groups = std::move(g);
  return 0;
}

namespace {

// capget(2)/capset(2)'s header: EINVAL (and the preferred version written
// back) for an unknown version; pid 0 or the caller's own tid for capset.
Result<int> CapVersionWords(Task& t, UserAddr hdr_addr, __user_cap_header_struct* hdr) {
  SV_TRY(t.CopyInObj(hdr_addr, hdr));
  switch (hdr->version) {
    case _LINUX_CAPABILITY_VERSION_1: return 1;
    case _LINUX_CAPABILITY_VERSION_2:
    case _LINUX_CAPABILITY_VERSION_3: return 2;
    default:
      hdr->version = _LINUX_CAPABILITY_VERSION_3;
      SV_TRY(t.CopyOutObj(hdr_addr, *hdr));
      return Errno(EINVAL);
  }
}

}  // namespace

SyscallReturn SysCapget(Task& t, const SyscallArgs& a) {
  __user_cap_header_struct hdr;
  auto words = CapVersionWords(t, a.Addr(0), &hdr);
  if (!words.ok()) return a.Addr(1).IsNull() ? Result<uint64_t>(0) : Result<uint64_t>(words.error());
  if (hdr.pid < 0) return Errno(EINVAL);
  Credentials c;
  if (hdr.pid == 0 || hdr.pid == t.vtid()) {
    c = t.creds();
  } else {
    absl::MutexLock l(&t.kernel().mu());
    auto target = t.kernel().TaskByVtid(t.pid_ns(), hdr.pid);
    if (!target) return Errno(ESRCH);
    c = target->creds();
  }
  if (a.Addr(1).IsNull()) return 0;
  __user_cap_data_struct data[2];
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(c.cap_effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(c.cap_permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(c.cap_inheritable >> (32 * i));
  }
  SV_TRY(t.CopyOut(a.Addr(1), data, *words * sizeof(data[0])));
  return 0;
}

SyscallReturn SysCapset(Task& t, const SyscallArgs& a) {
  __user_cap_header_struct hdr;
  SV_ASSIGN_OR_RETURN(int words, CapVersionWords(t, a.Addr(0), &hdr));
  // Only one's own capabilities can be set (capset(2): EPERM otherwise).
  if (hdr.pid != 0 && hdr.pid != t.tid()) return Errno(EPERM);
  __user_cap_data_struct data[2] = {};
  SV_TRY(t.CopyIn(a.Addr(1), data, words * sizeof(data[0])));
  auto join = [&](uint32_t __user_cap_data_struct::*f) {
    return uint64_t{data[0].*f} | (uint64_t{data[1].*f} << 32);
  };
  int e = t.mutable_creds().Capset(join(&__user_cap_data_struct::effective),
                                   join(&__user_cap_data_struct::permitted),
                                   join(&__user_cap_data_struct::inheritable));
  if (e != 0) return Errno(e);
  return 0;
}

}  // namespace seedvisor::sentry
