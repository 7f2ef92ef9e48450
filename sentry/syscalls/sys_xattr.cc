// The xattr family (getxattr, setxattr, listxattr, removexattr and their l*
// and f* forms). No sandbox filesystem stores extended attributes yet, so
// every file has none: get/remove fail with ENODATA, list returns an empty
// list and set fails with ENOTSUP, as on a Linux filesystem mounted without
// xattr support. Callers (shutil.copystat, cp -a, tar) treat those errnos as
// "no xattrs here". The path or fd is still resolved first, so ENOENT, EBADF
// and ELOOP come out as Linux gives them.
#include <sys/xattr.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_xattr.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

enum class Target { kPath, kLink, kFd };

// Resolves the file the call names (its existence is all we need).
Status Resolve(Task& t, const SyscallArgs& a, Target k) {
  if (k == Target::kFd) {
    SV_TRY(GetFile(t, a.Int(0)));
    return {};
  }
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, a.Addr(0)));
  SV_TRY(t.kernel().vfs().ResolveAt(t, AT_FDCWD, path,
                                    k == Target::kLink ? AT_SYMLINK_NOFOLLOW : 0));
  return {};
}

// The attribute name: ERANGE past XATTR_NAME_MAX, EINVAL if empty.
Status CheckName(Task& t, UserAddr name) {
  auto n = t.CopyInString(name, XATTR_NAME_MAX + 1);
  if (!n.ok()) return n.error() == Errno(ENAMETOOLONG) ? Errno(ERANGE) : n.error();
  if (n->empty() || n->size() > XATTR_NAME_MAX) return Errno(n->empty() ? EINVAL : ERANGE);
  return {};
}

SyscallReturn Get(Task& t, const SyscallArgs& a, Target k) {
  SV_TRY(Resolve(t, a, k));
  SV_TRY(CheckName(t, a.Addr(1)));
  return Errno(ENODATA);
}

SyscallReturn Set(Task& t, const SyscallArgs& a, Target k) {
  SV_TRY(Resolve(t, a, k));
  SV_TRY(CheckName(t, a.Addr(1)));
  if (a.Int(4) & ~(XATTR_CREATE | XATTR_REPLACE)) return Errno(EINVAL);
  return Errno(ENOTSUP);
}

SyscallReturn List(Task& t, const SyscallArgs& a, Target k) {
  SV_TRY(Resolve(t, a, k));
  return 0;  // an empty list
}

SyscallReturn Remove(Task& t, const SyscallArgs& a, Target k) {
  SV_TRY(Resolve(t, a, k));
  SV_TRY(CheckName(t, a.Addr(1)));
  return Errno(ENODATA);
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
