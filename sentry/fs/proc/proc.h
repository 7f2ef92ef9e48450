// proc: /proc for the sandbox, generated from the kernel's tasks.
//
// Files are generated when opened. /proc/self, /proc/thread-self,
// /proc/PID/{exe,cwd,root,fd/N} are symlinks whose targets are sandbox paths,
// so following them resolves inside the sandbox, never on the host.
// cmdline and environ are read from the process's memory (MM::layout()).
//
//   auto m = std::make_shared<Mount>("proc", "proc", "rw", NewProcFs(kernel, vfs));
#ifndef SEEDVISOR_SENTRY_FS_PROC_PROC_H_
#define SEEDVISOR_SENTRY_FS_PROC_PROC_H_

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class Vfs;

InodeRef NewProcFs(Kernel& k, Vfs& vfs);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_PROC_H_
