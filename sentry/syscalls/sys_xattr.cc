// The xattr family (getxattr, setxattr, listxattr, removexattr and their l*
// and f* forms). The checks every filesystem shares live here: name length
// (ERANGE), value size (E2BIG), the namespace rules of xattr_permission()
// and cap_inode_setxattr() (fs/xattr.c, security/commoncap.c), read/write
// permission, EROFS on read-only mounts, and the size-0 / ERANGE buffer
// protocol. The filesystem stores the attributes (Inode::GetXattr etc.):
// tmpfs inodes (and so the overlay's upper layer) keep them in memory;
// setting one on a lower (host) overlay file copies it up first. A writable
// volume's files and directories have their host user.* attributes
// (sentry/fs/host/host_rw_xattr.cc); other host files show none: get/remove
// give ENODATA, list is empty and set on a read-only host bind gives
// EOPNOTSUPP. Supported namespaces: user.*
// (regular files and directories only), trusted.* (CAP_SYS_ADMIN; hidden
// from listxattr without it) and security.* (setting needs CAP_SYS_ADMIN,
// security.capability CAP_SETFCAP); system.* and the rest: EOPNOTSUPP.
#include <sys/xattr.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_xattr.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

// include/uapi/linux/limits.h
constexpr size_t kXattrSizeMax = 65536;
constexpr size_t kXattrListMax = 65536;
// include/uapi/linux/xattr.h
constexpr std::string_view kUser = "user.", kTrusted = "trusted.", kSecurity = "security.";
constexpr std::string_view kCaps = "security.capability";

enum class Target { kPath, kLink, kFd };

// The dentry the call names; null for an fd without one (pipe, socket),
// which stores no attributes. O_PATH fds are EBADF (fdget()).
Result<DentryRef> Resolve(Task& t, const SyscallArgs& a, Target k) {
  if (k == Target::kFd) {
    SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
    return f->dentry();
  }
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, a.Addr(0)));
  return t.kernel().vfs().ResolveAt(t, AT_FDCWD, path,
                                    k == Target::kLink ? AT_SYMLINK_NOFOLLOW : 0);
}

// The attribute name: ERANGE if empty or past XATTR_NAME_MAX (import_xattr_name()).
Result<std::string> CopyInName(Task& t, UserAddr name) {
  auto n = t.CopyInString(name, XATTR_NAME_MAX + 1);
  if (!n.ok()) return n.error() == Errno(ENAMETOOLONG) ? Errno(ERANGE) : n.error();
  if (n->empty() || n->size() > XATTR_NAME_MAX) return Errno(ERANGE);
  return n;
}

bool HasPrefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// xattr_permission() then the namespace lookup: `write` for set/remove.
Status CheckAccessTo(Task& t, const Dentry& d, std::string_view name, bool write) {
  SV_ASSIGN_OR_RETURN(struct stat st, d.inode()->Stat());
  const Credentials& c = t.creds();
  if (HasPrefix(name, kTrusted)) {
    if (!c.HasCap(CAP_SYS_ADMIN)) return Errno(write ? EPERM : ENODATA);
  } else if (HasPrefix(name, kUser)) {
    // xattr(7): user attributes only on regular files and directories.
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return Errno(write ? EPERM : ENODATA);
    // On a sticky directory only the owner (or CAP_FOWNER) may change them.
    if (write && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && c.fsuid != st.st_uid &&
        !c.HasCap(CAP_FOWNER)) {
      return Errno(EPERM);
    }
  }
  if (!CheckAccess(Vfs::CredsOf(t), st, write ? W_OK : R_OK).ok()) return Errno(EACCES);
  if (write && HasPrefix(name, kSecurity)) {
    // cap_inode_setxattr()/cap_inode_removexattr().
    bool fcap = name == kCaps;
    if (!c.HasCap(fcap ? CAP_SETFCAP : CAP_SYS_ADMIN)) return Errno(EPERM);
  }
  if (!HasPrefix(name, kUser) && !HasPrefix(name, kTrusted) &&
      !HasPrefix(name, kSecurity)) {
    return Errno(EOPNOTSUPP);  // xattr_resolve_name(): no handler (system.*: no ACLs)
  }
  return {};
}

SyscallReturn Get(Task& t, const SyscallArgs& a, Target k) {
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(t, a, k));
  SV_ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Addr(1)));
  if (!d) return Errno(ENODATA);
  SV_TRY(CheckAccessTo(t, *d, name, /*write=*/false));
  SV_ASSIGN_OR_RETURN(std::string value, d->inode()->GetXattr(name));
  size_t size = std::min<size_t>(a.Uint(3), kXattrSizeMax);
  if (size == 0) return static_cast<int64_t>(value.size());
  if (value.size() > size) return Errno(ERANGE);
  SV_TRY(t.CopyOut(a.Addr(2), value.data(), value.size()));
  return static_cast<int64_t>(value.size());
}

SyscallReturn Set(Task& t, const SyscallArgs& a, Target k) {
  int flags = a.Int(4);
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Addr(1)));
  size_t size = a.Uint(3);
  if (size > kXattrSizeMax) return Errno(E2BIG);
  std::string value(size, '\0');
  if (size) SV_TRY(t.CopyIn(a.Addr(2), value.data(), size));
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(t, a, k));
  if (!d) return Errno(EOPNOTSUPP);
  SV_TRY(MountWritable(d));
  SV_TRY(CheckAccessTo(t, *d, name, /*write=*/true));
  SV_TRY(d->inode()->SetXattr(name, value, flags));
  FsnotifyDentry(*d, IN_ATTRIB);  // fsnotify_xattr()
  return 0;
}

SyscallReturn List(Task& t, const SyscallArgs& a, Target k) {
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(t, a, k));
  if (!d) return 0;
  SV_ASSIGN_OR_RETURN(std::vector<std::string> names, d->inode()->ListXattr());
  // simple_xattr_list(): trusted.* names only for CAP_SYS_ADMIN.
  bool trusted = t.creds().HasCap(CAP_SYS_ADMIN);
  std::string out;
  for (const std::string& n : names) {
    if (!trusted && HasPrefix(n, kTrusted)) continue;
    out += n;
    out.push_back('\0');
  }
  size_t size = a.Uint(2);
  if (size == 0) return static_cast<int64_t>(out.size());
  if (out.size() > std::min(size, kXattrListMax)) {
    // listxattr(): a full-size buffer that cannot hold the list is E2BIG.
    return Errno(size >= kXattrListMax ? E2BIG : ERANGE);
  }
  SV_TRY(t.CopyOut(a.Addr(1), out.data(), out.size()));
  return static_cast<int64_t>(out.size());
}

SyscallReturn Remove(Task& t, const SyscallArgs& a, Target k) {
  SV_ASSIGN_OR_RETURN(std::string name, CopyInName(t, a.Addr(1)));
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(t, a, k));
  if (!d) return Errno(ENODATA);
  SV_TRY(MountWritable(d));
  SV_TRY(CheckAccessTo(t, *d, name, /*write=*/true));
  SV_TRY(d->inode()->RemoveXattr(name));
  FsnotifyDentry(*d, IN_ATTRIB);
  return 0;
}

}  // namespace

SyscallReturn SysGetxattr(Task& t, const SyscallArgs& a) { return Get(t, a, Target::kPath); }
SyscallReturn SysLgetxattr(Task& t, const SyscallArgs& a) { return Get(t, a, Target::kLink); }
SyscallReturn SysFgetxattr(Task& t, const SyscallArgs& a) { return Get(t, a, Target::kFd); }
SyscallReturn SysSetxattr(Task& t, const SyscallArgs& a) { return Set(t, a, Target::kPath); }
SyscallReturn SysLsetxattr(Task& t, const SyscallArgs& a) { return Set(t, a, Target::kLink); }
SyscallReturn SysFsetxattr(Task& t, const SyscallArgs& a) { return Set(t, a, Target::kFd); }
SyscallReturn SysListxattr(Task& t, const SyscallArgs& a) { return List(t, a, Target::kPath); }
SyscallReturn SysLlistxattr(Task& t, const SyscallArgs& a) { return List(t, a, Target::kLink); }
SyscallReturn SysFlistxattr(Task& t, const SyscallArgs& a) { return List(t, a, Target::kFd); }
SyscallReturn SysRemovexattr(Task& t, const SyscallArgs& a) { return Remove(t, a, Target::kPath); }
SyscallReturn SysLremovexattr(Task& t, const SyscallArgs& a) {
  return Remove(t, a, Target::kLink);
}
SyscallReturn SysFremovexattr(Task& t, const SyscallArgs& a) {
  return Remove(t, a, Target::kFd);
}

}  // namespace seedvisor::sentry
