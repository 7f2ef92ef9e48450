#include "sentry/kernel/ptrace_access.h"

#include "sentry/kernel/task.h"
#include "sentry/vfs/landlock.h"

namespace seedvisor::sentry {

bool MayPtraceAccess(const Task& caller, const ThreadGroup& target, const Credentials& tc,
                     PtraceCreds which) {
  if (&caller.tg() == &target) return true;
  const Credentials& c = caller.creds();
  if (!c.HasCap(CAP_SYS_PTRACE)) {
    const uid_t uid = which == PtraceCreds::kFs ? c.fsuid : c.ruid;
    const gid_t gid = which == PtraceCreds::kFs ? c.fsgid : c.rgid;
    // __ptrace_may_access(): the same ids, and a dumpable target.
    if (uid != tc.ruid || uid != tc.euid || uid != tc.suid || gid != tc.rgid || gid != tc.egid ||
        gid != tc.sgid || !target.dumpable) {
      return false;
    }
  }
  return LandlockMayTrace(c, tc);
}

bool LandlockMayTrace(const Credentials& tracer, const Credentials& tracee) {
  const LandlockDomain* outer = tracer.landlock.get();
  if (outer == nullptr) return true;
  const LandlockDomain* inner = tracee.landlock.get();
  if (inner == nullptr || inner->layers() < outer->layers()) return false;
  // Restrict() shares the layers it keeps: the same objects, in order.
  for (size_t i = 0; i < outer->layers(); ++i) {
    if (&outer->layer(i) != &inner->layer(i)) return false;
  }
  return true;
}

}  // namespace seedvisor::sentry
