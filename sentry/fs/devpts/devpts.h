// devpts: the sandbox's pseudo-terminals, mounted at /dev/pts.
//
// One instance per sandbox (like a devpts mounted with newinstance): the
// directory lists ptmx and one node N per pty whose master is open; opening
// ptmx makes a new pty and returns its master, opening N its replica. /dev/ptmx
// is a symlink to pts/ptmx, as container runtimes set it up. Controlling
// terminals are recorded per pty (the session it controls); a process's
// controlling pty is the one its session holds.
//
//   vfs.MountAt("/dev/pts", std::make_shared<Mount>("devpts", "devpts", "rw", DevptsRoot()));
//   SV_ASSIGN_OR_RETURN(FileRef tty, OpenControllingPty(d, O_RDWR));  // /dev/tty
#ifndef SEEDVISOR_SENTRY_FS_DEVPTS_DEVPTS_H_
#define SEEDVISOR_SENTRY_FS_DEVPTS_DEVPTS_H_

#include <memory>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class PidNumbers;

// The devpts root directory (the same one every time). Every Mount of it
// (Inode::Mounted) has its /dev/pts/N dentry dropped when pty N goes.
InodeRef DevptsRoot();

// /dev/tty for the current task when its session's controlling terminal is
// one of ours: a new replica file; ENXIO otherwise.
Result<FileRef> OpenControllingPty(const std::shared_ptr<Dentry>& d, int flags);

// True if some pty is the controlling terminal of session `sid` (its
// numbers: Kernel::NumbersOfLocked of its id; null: none).
bool SessionHasPty(const PidNumbers* sid);

// The controlling pty of session `sid` as /proc/PID/stat shows it: its
// device number (tty_nr) and foreground process group (tpgid; null if it
// has none). False if the session has none.
bool ControllingPtyOf(const PidNumbers* sid, dev_t* dev,
                      std::shared_ptr<const PidNumbers>* fg_pgrp);

// The master of pty `index` closed: its node goes and the index is free.
void ReleasePty(int index);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEVPTS_DEVPTS_H_
