// Who may look into or change another process (its memory through
// /proc/PID/mem, its fds through pidfd_getfd): Linux's
// __ptrace_may_access() as far as it applies in the sandbox.
//
//   if (!MayPtraceAccess(caller, target.tg(), target.creds(), PtraceCreds::kFs))
//     return Errno(EACCES);
#ifndef SEEDVISOR_SENTRY_KERNEL_PTRACE_ACCESS_H_
#define SEEDVISOR_SENTRY_KERNEL_PTRACE_ACCESS_H_

#include "sentry/kernel/credentials.h"

namespace seedvisor::sentry {

class Task;
class ThreadGroup;

// Which of the caller's ids are compared: PTRACE_MODE_REALCREDS (real uid
// and gid) or PTRACE_MODE_FSCREDS (filesystem uid and gid).
enum class PtraceCreds { kReal, kFs };

// A thread of the same process, a caller with CAP_SYS_PTRACE, or a caller
// whose uid and gid (as `which` says) match all of the target's ids when
// the target is dumpable (ThreadGroup::dumpable). There is no Yama LSM in
// the sandbox, so a process of the same user may as it could on a host
// without Yama.
bool MayPtraceAccess(const Task& caller, const ThreadGroup& target, const Credentials& tc,
                     PtraceCreds which);

// Landlock's ptrace hooks (hook_ptrace_access_check(), hook_ptrace_traceme()
// in security/landlock/task.c): a tracer with a Landlock domain reaches only
// tasks whose domain is the same or nested in it (its layers first), so a
// restricted task cannot drive a less restricted one. MayPtraceAccess asks
// it after its own checks, as security_ptrace_access_check() comes last.
bool LandlockMayTrace(const Credentials& tracer, const Credentials& tracee);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_PTRACE_ACCESS_H_
