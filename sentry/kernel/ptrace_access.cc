#include "sentry/kernel/ptrace_access.h"

#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

bool MayPtraceAccess(const Task& caller, const ThreadGroup& target, const Credentials& tc,
                     PtraceCreds which) {
  if (&caller.tg() == &target) return true;
  const Credentials& c = caller.creds();
  if (c.HasCap(CAP_SYS_PTRACE)) return true;
  const uid_t uid = which == PtraceCreds::kFs ? c.fsuid : c.ruid;
  const gid_t gid = which == PtraceCreds::kFs ? c.fsgid : c.rgid;
  // __ptrace_may_access(): the same ids, and a dumpable target.
  return uid == tc.ruid && uid == tc.euid && uid == tc.suid && gid == tc.rgid && gid == tc.egid &&
         gid == tc.sgid && target.dumpable;
}

}  // namespace seedvisor::sentry
