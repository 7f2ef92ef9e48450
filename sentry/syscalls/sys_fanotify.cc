// fanotify_init, fanotify_mark (fs/notify/fanotify/fanotify_user.c) over
// sentry/fs/fanotify: notification groups with inode, mount and filesystem
// marks. As a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS and before
// FAN_REPORT_FID (5.1): permission events and the FID modes are EINVAL,
// which is how programs and LTP probe for them.
#include <sys/fanotify.h>

#include "sentry/fs/fanotify/fanotify.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr unsigned kInitFlags = FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_NOTIF | FAN_CLASS_CONTENT |
                                FAN_CLASS_PRE_CONTENT | FAN_UNLIMITED_QUEUE |
                                FAN_UNLIMITED_MARKS | FAN_ENABLE_AUDIT | FAN_REPORT_TID;
// FANOTIFY_INIT_ALL_EVENT_F_BITS (the kernel's O_LARGEFILE, glibc's is 0).
constexpr unsigned kEventFFlags = O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC |
                                  O_CLOEXEC | kKernelOLargefile | O_NOATIME;
constexpr unsigned kMarkFlags = FAN_MARK_ADD | FAN_MARK_REMOVE | FAN_MARK_DONT_FOLLOW |
                                FAN_MARK_ONLYDIR | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK |
                                FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_FLUSH |
                                FAN_MARK_FILESYSTEM;
constexpr uint64_t kMarkMask = FAN_ACCESS | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE |
                               FAN_OPEN | FAN_OPEN_EXEC | FAN_ONDIR | FAN_EVENT_ON_CHILD;

}  // namespace

SyscallReturn SysFanotifyInit(Task& t, const SyscallArgs& a) {
  const unsigned flags = a.Uint(0);
  const unsigned event_f_flags = a.Uint(1);
  if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  if (flags & ~kInitFlags) return Errno(EINVAL);
  if ((flags & FAN_ENABLE_AUDIT) && !t.creds().HasCap(CAP_AUDIT_WRITE)) return Errno(EPERM);
  if (event_f_flags & ~kEventFFlags) return Errno(EINVAL);
  if ((event_f_flags & O_ACCMODE) == O_ACCMODE) return Errno(EINVAL);
  // FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT is no class.
  if ((flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) ==
      (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) {
    return Errno(EINVAL);
  }
  const int file_flags = O_RDWR | ((flags & FAN_NONBLOCK) ? O_NONBLOCK : 0);
  SV_ASSIGN_OR_RETURN(auto f, FanotifyFile::Create(flags, event_f_flags, file_flags,
                                                   [](Task& r) { return FdLimit(r); }));
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, (flags & FAN_CLOEXEC) != 0, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysFanotifyMark(Task& t, const SyscallArgs& a) {
  const int fan_fd = a.Int(0);
  const unsigned flags = a.Uint(1);
  const uint64_t mask = a.Ulong(2);
  const int dirfd = a.Int(3);
  const UserAddr path_addr = a.Addr(4);
  if (flags & ~kMarkFlags) return Errno(EINVAL);
  if ((flags & FAN_MARK_MOUNT) && (flags & FAN_MARK_FILESYSTEM)) return Errno(EINVAL);
  switch (flags & (FAN_MARK_ADD | FAN_MARK_REMOVE | FAN_MARK_FLUSH)) {
    case FAN_MARK_ADD:
    case FAN_MARK_REMOVE:
      if (mask == 0) return Errno(EINVAL);
      break;
    case FAN_MARK_FLUSH:
      if (flags & ~(FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM | FAN_MARK_FLUSH)) return Errno(EINVAL);
      break;
    default:
      return Errno(EINVAL);
  }
  if (mask & ~kMarkMask) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef hold, t.fds().Get(fan_fd));
  auto* g = dynamic_cast<FanotifyFile*>(hold.get());
  if (g == nullptr) return Errno(EINVAL);
  const FanotifyFile::MarkType type = (flags & FAN_MARK_MOUNT)        ? FanotifyFile::kMount
                                      : (flags & FAN_MARK_FILESYSTEM) ? FanotifyFile::kFilesystem
                                                                      : FanotifyFile::kInode;
  if (flags & FAN_MARK_FLUSH) {
    g->Flush(type);
    return 0;
  }
  // fanotify_find_path(): no path is dirfd's own file.
  DentryRef d;
  if (path_addr.IsNull()) {
    SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(dirfd));
    d = f->dentry();
    if (d == nullptr) return Errno(EBADF);
  } else {
    SV_ASSIGN_OR_RETURN(std::string path, CopyInPath(t, path_addr));
    SV_ASSIGN_OR_RETURN(d, t.kernel().vfs().ResolveAt(
                               t, dirfd, path, (flags & FAN_MARK_DONT_FOLLOW) ? AT_SYMLINK_NOFOLLOW : 0));
  }
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  if ((flags & FAN_MARK_ONLYDIR) && !S_ISDIR(st.st_mode)) return Errno(ENOTDIR);
  SV_TRY(CheckAccess(Vfs::CredsOf(t), st, R_OK));  // inode_permission(MAY_READ)
  if (type != FanotifyFile::kInode && d->mount() == nullptr) return Errno(EINVAL);
  SV_TRY(g->Mark(type, d, mask, flags));
  return 0;
}

}  // namespace seedvisor::sentry
