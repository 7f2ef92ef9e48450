// The inode flags (FS_IOC_GETFLAGS) the VFS and the syscalls check:
// FS_IMMUTABLE_FL and FS_APPEND_FL of a tmpfs or overlay object
// (TmpfsInode::FsFlags); other filesystems keep none.
//
//   if (InodeFsFlags(*d->inode()) & FS_IMMUTABLE_FL) return Errno(EPERM);
#ifndef SEEDVISOR_SENTRY_VFS_INODE_FLAGS_H_
#define SEEDVISOR_SENTRY_VFS_INODE_FLAGS_H_

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

unsigned InodeFsFlags(Inode& inode);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_INODE_FLAGS_H_
