// inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch over
// sentry/fs/inotify (events from the sentry's own VFS operations only).
#include <sys/inotify.h>

#include "sentry/fs/inotify/inotify.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

// Every bit inotify_add_watch(2) knows (ALL_INOTIFY_BITS).
constexpr uint32_t kAllBits = IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED |
                              IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_ADD |
                              IN_MASK_CREATE | IN_ISDIR | IN_ONESHOT;

SyscallReturn DoInit(Task& t, int flags) {
  if (flags & ~(IN_CLOEXEC | IN_NONBLOCK)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(auto f,
                      InotifyFile::Create(O_RDONLY | (flags & IN_NONBLOCK), t.creds().euid));
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, flags & IN_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

Result<InotifyFile*> GetInotify(Task& t, int fd, FileRef* hold) {
  SV_ASSIGN_OR_RETURN(*hold, t.fds().Get(fd));
  auto* f = dynamic_cast<InotifyFile*>(hold->get());
  if (!f) return Errno(EINVAL);
  return f;
}

}  // namespace

SyscallReturn SysInotifyInit(Task& t, const SyscallArgs&) { return DoInit(t, 0); }
SyscallReturn SysInotifyInit1(Task& t, const SyscallArgs& a) { return DoInit(t, a.Int(0)); }

SyscallReturn SysInotifyAddWatch(Task& t, const SyscallArgs& a) {
  uint32_t mask = a.Uint(2);
  // inotify_add_watch(2): IN_MASK_ADD and IN_MASK_CREATE exclude each other.
  if ((mask & IN_MASK_ADD) && (mask & IN_MASK_CREATE)) return Errno(EINVAL);
  if (!(mask & kAllBits)) return Errno(EINVAL);
  FileRef hold;
  SV_ASSIGN_OR_RETURN(InotifyFile * in, GetInotify(t, a.Int(0), &hold));
  SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, a.Addr(1)));
  SV_ASSIGN_OR_RETURN(DentryRef d, t.kernel().vfs().ResolveAt(
                                       t, AT_FDCWD, path,
                                       (mask & IN_DONT_FOLLOW) ? AT_SYMLINK_NOFOLLOW : 0));
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  if ((mask & IN_ONLYDIR) && !S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
  SV_TRY(CheckAccess(Vfs::CredsOf(t), st, R_OK));  // inotify_find_inode(): MAY_READ
  SV_ASSIGN_OR_RETURN(int wd, in->AddWatch(d, mask));
  return static_cast<uint64_t>(wd);
}

SyscallReturn SysInotifyRmWatch(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(InotifyFile * in, GetInotify(t, a.Int(0), &hold));
  SV_TRY(in->RemoveWatch(a.Int(1)));
  return 0;
}

}  // namespace seedvisor::sentry
