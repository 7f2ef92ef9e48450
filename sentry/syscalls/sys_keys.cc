// The key retention service: add_key(2), request_key(2), keyctl(2).
// Argument decoding only, in Linux's order (so that the same bad argument
// gives the same errno); the keys and their rules are in sentry/kernel/keys.
#include <algorithm>
#include <optional>
#include <string>

#include "sentry/kernel/keys/keyctl.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

// <linux/keyctl.h> operations.
enum KeyctlOp {
  kGetKeyringId = 0,
  kJoinSessionKeyring = 1,
  kUpdate = 2,
  kRevoke = 3,
  kChown = 4,
  kSetperm = 5,
  kDescribe = 6,
  kClear = 7,
  kLink = 8,
  kUnlink = 9,
  kSearch = 10,
  kRead = 11,
  kInstantiate = 12,
  kNegate = 13,
  kSetReqkeyKeyring = 14,
  kSetTimeout = 15,
  kAssumeAuthority = 16,
  kGetSecurity = 17,
  kSessionToParent = 18,
  kReject = 19,
  kInstantiateIov = 20,
  kInvalidate = 21,
  kGetPersistent = 22,
  kMove = 30,
  kCapabilities = 31,
};

constexpr size_t kMaxDescription = 4096;  // KEY_MAX_DESC_SIZE, with the NUL
constexpr size_t kPageSize = 4096;

// key_get_type_from_user(): at most 31 characters, none is EINVAL, a
// leading '.' (the kernel's internal types) EPERM.
Result<std::string> CopyInType(Task& t, UserAddr addr) {
  Result<std::string> s = t.CopyInString(addr, 31);
  if (!s.ok()) return s.error().value() == ENAMETOOLONG ? Errno(EINVAL) : s.error();
  if (s->empty()) return Errno(EINVAL);
  if ((*s)[0] == '.') return Errno(EPERM);
  return s;
}

// strndup_user(): `max` bytes with the NUL, EINVAL past it.
Result<std::string> CopyInStringUpTo(Task& t, UserAddr addr, size_t max) {
  Result<std::string> s = t.CopyInString(addr, max - 1);
  if (!s.ok() && s.error().value() == ENAMETOOLONG) return Errno(EINVAL);
  return s;
}

// A key's contents out to a guest buffer: all of it when the buffer is big
// enough, nothing otherwise; the full length either way (keyctl_read_key()).
SyscallReturn CopyOutWhole(Task& t, const std::string& s, UserAddr buf, size_t buflen) {
  if (!buf.IsNull() && buflen >= s.size()) SV_TRY(t.CopyOut(buf, s.data(), s.size()));
  return s.size();
}

SyscallReturn Ret(Status s) {
  if (!s.ok()) return s.error();
  return 0;
}

template <typename T>
SyscallReturn Ret(Result<T> r) {
  if (!r.ok()) return r.error();
  return static_cast<uint64_t>(static_cast<int64_t>(*r));
}

SyscallReturn Keyctl(Task& t, const SyscallArgs& a) {
  switch (a.Int(0)) {
    case kGetKeyringId:
      return Ret(keyops::GetKeyringId(t, a.Int(1), a.Int(2) != 0));
    case kJoinSessionKeyring: {
      std::optional<std::string> name;
      if (!a.Addr(1).IsNull()) {
        SV_ASSIGN_OR_RETURN(name, CopyInStringUpTo(t, a.Addr(1), kMaxDescription));
        // Kernel keyrings ('.'-names) are never joined (CVE-2016-9604).
        if (!name->empty() && (*name)[0] == '.') return Errno(EPERM);
      }
      return Ret(keyops::JoinSession(t, name));
    }
    case kUpdate: {
      const size_t plen = a.Size(3);
      if (plen > kPageSize) return Errno(EINVAL);
      std::string payload(plen, '\0');
      if (plen != 0) SV_TRY(t.CopyIn(a.Addr(2), payload.data(), plen));
      return Ret(keyops::Update(t, a.Int(1), payload));
    }
    case kRevoke:
      return Ret(keyops::Revoke(t, a.Int(1)));
    case kChown:
      return Ret(keyops::Chown(t, a.Int(1), a.Uint(2), a.Uint(3)));
    case kSetperm:
      return Ret(keyops::SetPerm(t, a.Int(1), a.Uint(2)));
    case kDescribe: {
      SV_ASSIGN_OR_RETURN(std::string s, keyops::Describe(t, a.Int(1)));
      return CopyOutWhole(t, s, a.Addr(2), a.Size(3));
    }
    case kClear:
      return Ret(keyops::Clear(t, a.Int(1)));
    case kLink:
      return Ret(keyops::Link(t, a.Int(1), a.Int(2)));
    case kUnlink:
      return Ret(keyops::Unlink(t, a.Int(1), a.Int(2)));
    case kSearch: {
      SV_ASSIGN_OR_RETURN(std::string type, CopyInType(t, a.Addr(2)));
      SV_ASSIGN_OR_RETURN(std::string desc, CopyInStringUpTo(t, a.Addr(3), kMaxDescription));
      return Ret(keyops::Search(t, a.Int(1), type, desc, a.Int(4)));
    }
    case kRead: {
      SV_ASSIGN_OR_RETURN(std::string s, keyops::Read(t, a.Int(1)));
      return CopyOutWhole(t, s, a.Addr(2), a.Size(3));
    }
    case kInstantiate:
    case kNegate:
    case kReject:
    case kInstantiateIov:
      return Ret(keyops::NoAuthority());
    case kSetReqkeyKeyring:
      return Ret(keyops::SetReqkeyKeyring(t, a.Int(1)));
    case kSetTimeout:
      return Ret(keyops::SetTimeout(t, a.Int(1), a.Uint(2)));
    case kAssumeAuthority:
      return Ret(keyops::AssumeAuthority(a.Int(1)));
    case kGetSecurity: {
      SV_ASSIGN_OR_RETURN(std::string s, keyops::GetSecurity(t, a.Int(1)));
      if (!a.Addr(2).IsNull() && a.Size(3) > 0) {
        SV_TRY(t.CopyOut(a.Addr(2), s.data(), std::min(s.size(), a.Size(3))));
      }
      return s.size();
    }
    case kSessionToParent:
      return Ret(keyops::SessionToParent(t));
    case kInvalidate:
      return Ret(keyops::Invalidate(t, a.Int(1)));
    case kGetPersistent:
      return Ret(keyops::GetPersistent(t, a.Uint(1), a.Int(2)));
    case kMove:
      return Ret(keyops::Move(t, a.Int(1), a.Int(2), a.Int(3), a.Uint(4)));
    case kCapabilities: {
      // KEYCTL_CAPS0_CAPABILITIES | _PERSISTENT_KEYRINGS | _BIG_KEY |
      // _INVALIDATE | _MOVE; nothing of CAPS1 (no namespaced keyring
      // names or tags, no notifications).
      const unsigned char caps[2] = {0x01 | 0x02 | 0x10 | 0x20 | 0x80, 0x00};
      const size_t buflen = a.Size(2);
      // keyctl_capabilities(): the bytes we have, then the rest of the
      // guest's buffer cleared in place (a page at a time: buflen is the
      // guest's, never an allocation), EFAULT at the first bad page.
      const size_t have = std::min(buflen, sizeof(caps));
      if (have > 0) SV_TRY(t.CopyOut(a.Addr(1), caps, have));
      static const char kZeros[4096] = {};
      for (size_t off = have; off < buflen;) {
        const size_t n = std::min(sizeof(kZeros), buflen - off);
        SV_TRY(t.CopyOut(a.Addr(1) + off, kZeros, n));
        off += n;
      }
      return sizeof(caps);
    }
    default:
      // Diffie-Hellman, public-key operations, keyring restrictions and
      // key notifications are not built in (as without CONFIG_KEY_DH_
      // OPERATIONS, CONFIG_ASYMMETRIC_KEY_TYPE, CONFIG_KEY_NOTIFICATIONS).
      return Errno(EOPNOTSUPP);
  }
}

}  // namespace

SyscallReturn SysAddKey(Task& t, const SyscallArgs& a) {
  const size_t plen = a.Size(3);
  if (plen > (1 << 20) - 1) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string type, CopyInType(t, a.Addr(0)));
  std::optional<std::string> desc;
  if (!a.Addr(1).IsNull()) {
    SV_ASSIGN_OR_RETURN(std::string d, CopyInStringUpTo(t, a.Addr(1), kMaxDescription));
    if (!d.empty()) {
      // Keyrings named like the kernel's ('.') are not made by users.
      if (d[0] == '.' && type.compare(0, 7, "keyring") == 0) return Errno(EPERM);
      desc = std::move(d);
    }
  }
  std::string payload(plen, '\0');
  if (plen != 0) SV_TRY(t.CopyIn(a.Addr(2), payload.data(), plen));
  return Ret(keyops::AddKey(t, type, desc, payload, a.Int(4)));
}

SyscallReturn SysRequestKey(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(std::string type, CopyInType(t, a.Addr(0)));
  SV_ASSIGN_OR_RETURN(std::string desc, CopyInStringUpTo(t, a.Addr(1), kMaxDescription));
  std::optional<std::string> callout;
  if (!a.Addr(2).IsNull()) {
    SV_ASSIGN_OR_RETURN(callout, CopyInStringUpTo(t, a.Addr(2), kPageSize));
  }
  return Ret(keyops::RequestKey(t, type, desc, callout, a.Int(3)));
}

SyscallReturn SysKeyctl(Task& t, const SyscallArgs& a) { return Keyctl(t, a); }

}  // namespace seedvisor::sentry
