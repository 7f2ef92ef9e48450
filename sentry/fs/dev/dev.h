// dev: the sandbox's /dev. null, zero, full, random, urandom (host
// getrandom), tty (the controlling terminal, if stdio is one), the fd and
// stdio symlinks into /proc/self/fd, ptmx (a symlink to pts/ptmx), and
// empty shm/, pts/ and mqueue/ directories (the VFS mounts a tmpfs on /dev/shm and
// devpts on /dev/pts).
//
//   Mount dev("devtmpfs", "none", "rw", NewDevFs());
#ifndef SEEDVISOR_SENTRY_FS_DEV_DEV_H_
#define SEEDVISOR_SENTRY_FS_DEV_DEV_H_

#include <functional>
#include <memory>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

InodeRef NewDevFs();

// /dev/tty asks `hook` first (devpts installs it): the caller's controlling
// pty, or ENXIO to fall back to the sandbox's host terminal.
using ControllingTtyHook =
    std::function<Result<FileRef>(const std::shared_ptr<Dentry>&, int flags)>;
void SetControllingTtyHook(ControllingTtyHook hook);

// The FileDescriptions behind the memory devices (also for tests).
FileRef NewNullFile(int flags, std::shared_ptr<Dentry> d);
FileRef NewZeroFile(int flags, std::shared_ptr<Dentry> d);
FileRef NewFullFile(int flags, std::shared_ptr<Dentry> d);
FileRef NewRandomFile(int flags, std::shared_ptr<Dentry> d);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEV_DEV_H_
