// Inode flags (ioctl_iflags(2)): FS_IOC_GETFLAGS and FS_IOC_SETFLAGS
// (ioctl_getflags()/ioctl_setflags(), vfs_fileattr_set()). tmpfs keeps
// FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL and FS_NOATIME_FL and
// enforces the first two itself (TmpfsInode::SetFsFlags); the overlay's
// are its upper layer's. Files of other filesystems answer as their own
// ioctl does (ENOTTY: no ->fileattr_get).
#include <linux/capability.h>
#include <sys/stat.h>

#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/vfs.h"

// Last: glibc 2.36 refuses <sys/mount.h> after it (<linux/mount.h>).
#include <linux/fs.h>

namespace seedvisor::sentry::file_internal {

Result<long> InodeFlagsIoctl(Task& t, FileDescription& f, unsigned long cmd, UserAddr arg) {
  Inode* inode = f.dentry() ? f.dentry()->inode().get() : nullptr;
  auto* tmpfs = dynamic_cast<TmpfsInode*>(inode);
  auto* overlay = dynamic_cast<OverlayInode*>(inode);
  if (tmpfs == nullptr && overlay == nullptr) return f.Ioctl(t, cmd, arg);
  const unsigned old = tmpfs ? tmpfs->FsFlags() : overlay->FsFlags();
  if (cmd == FS_IOC_GETFLAGS) {
    const int out = static_cast<int>(old);
    SV_TRY(t.CopyOut(arg, &out, sizeof(out)));
    return 0L;
  }
  int want;
  SV_TRY(t.CopyIn(arg, &want, sizeof(want)));
  SV_TRY(MountWritable(f.dentry()));  // mnt_want_write_file()
  SV_ASSIGN_OR_RETURN(struct stat st, inode->Stat());
  // vfs_fileattr_set(): inode_owner_or_capable(), then
  // fileattr_set_prepare(): IMMUTABLE and APPEND change only with
  // CAP_LINUX_IMMUTABLE.
  const Credentials& c = t.creds();
  if (c.fsuid != st.st_uid && !c.HasCap(CAP_FOWNER)) return Errno(EPERM);
  const unsigned flags = static_cast<unsigned>(want);
  if (((flags ^ old) & (FS_IMMUTABLE_FL | FS_APPEND_FL)) && !c.HasCap(CAP_LINUX_IMMUTABLE)) {
    return Errno(EPERM);
  }
  SV_TRY(tmpfs ? tmpfs->SetFsFlags(flags) : overlay->SetFsFlags(flags));
  return 0L;
}

}  // namespace seedvisor::sentry::file_internal
