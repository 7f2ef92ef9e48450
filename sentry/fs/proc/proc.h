// proc: /proc for the sandbox, generated from the kernel's tasks.
//
// Files are generated when opened. /proc/self, /proc/thread-self,
// /proc/PID/{exe,cwd,root,fd/N} are symlinks whose targets are sandbox paths,
// so following them resolves inside the sandbox, never on the host.
// cmdline and environ are read from the process's memory (MM::layout()).
//
// One instance shows the processes of one pid namespace, the one its
// mounter was in (proc_fill_super(): the mounter's active pid namespace),
// by their ids there; /proc/self is the reader's id there (ENOENT for a
// reader outside it), and status's NStgid/NSpid list the ids from that
// namespace down to the task's own.
//
//   auto m = std::make_shared<Mount>("proc", "proc", "rw",
//                                    NewProcFs(kernel, vfs, task.tg().pid_ns));
#ifndef SEEDVISOR_SENTRY_FS_PROC_PROC_H_
#define SEEDVISOR_SENTRY_FS_PROC_PROC_H_

#include <memory>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class PidNamespace;
class Vfs;

// `pid_ns`: null for the sandbox's own pid namespace.
InodeRef NewProcFs(Kernel& k, Vfs& vfs, std::shared_ptr<PidNamespace> pid_ns);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_PROC_H_
