// System V IPC: semget/semop/semtimedop/semctl, shmget/shmat/shmdt/shmctl,
// msgget/msgsnd/msgrcv/msgctl. Argument decoding only: the objects and
// their rules are in sentry/ipc.
#include <time.h>

#include <vector>

#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

IpcNamespace &Ns(Task &t) { return t.kernel().ipc(); }

SyscallReturn SemOp(Task &t, const SyscallArgs &a, bool timed) {
  const unsigned nsops = a.Uint(2);
  if (nsops < 1 || a.Int(0) < 0) return Errno(EINVAL);
  if (nsops > static_cast<unsigned>(kSemOpm)) return Errno(E2BIG);
  std::vector<GuestSembuf> ops(nsops);
  SV_TRY(t.CopyIn(a.Addr(1), ops.data(), ops.size() * sizeof(GuestSembuf)));
  timespec ts;
  const timespec *timeout = nullptr;
  if (timed && !a.Addr(3).IsNull()) {
    SV_TRY(t.CopyInObj(a.Addr(3), &ts));
    timeout = &ts;
  }
  SV_TRY(Ns(t).sems().Op(t, a.Int(0), std::move(ops), timeout));
  return 0;
}

}  // namespace

SyscallReturn SysSemget(Task &t, const SyscallArgs &a) {
  SV_ASSIGN_OR_RETURN(int id, Ns(t).sems().Get(t, a.Int(0), a.Int(1), a.Int(2)));
  return static_cast<uint64_t>(id);
}

SyscallReturn SysSemop(Task &t, const SyscallArgs &a) { return SemOp(t, a, false); }
SyscallReturn SysSemtimedop(Task &t, const SyscallArgs &a) { return SemOp(t, a, true); }

SyscallReturn SysSemctl(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  return Ns(t).sems().Ctl(t, a.Int(0), a.Int(1), a.Int(2), a.Ulong(3));
}

SyscallReturn SysShmget(Task &t, const SyscallArgs &a) {
  SV_ASSIGN_OR_RETURN(int id, Ns(t).shms().Get(t, a.Int(0), a.Ulong(1), a.Int(2)));
  return static_cast<uint64_t>(id);
}

SyscallReturn SysShmat(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(uint64_t addr, Ns(t).shms().Attach(t, a.Int(0), a.Addr(1), a.Int(2)));
  // The new VMA has the default memory policy.
  uint64_t end = addr;
  t.mm().WithVmaAt(UserAddr(addr), [&](const Vma &v) { end = v.end; });
  MemPolicyRemapped(t, 0, 0, addr, end - addr);
  return addr;
}

SyscallReturn SysShmdt(Task &t, const SyscallArgs &a) {
  // The detached VMA's memory policy goes with it.
  uint64_t start = a.Addr(0).value(), end = start;
  t.mm().WithVmaAt(a.Addr(0), [&](const Vma &v) { start = v.start, end = v.end; });
  SV_TRY(Ns(t).shms().Detach(t, a.Addr(0)));
  MemPolicyRemapped(t, start, end - start, 0, 0);
  return 0;
}

SyscallReturn SysShmctl(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  return Ns(t).shms().Ctl(t, a.Int(0), a.Int(1), a.Addr(2));
}

SyscallReturn SysMsgget(Task &t, const SyscallArgs &a) {
  SV_ASSIGN_OR_RETURN(int id, Ns(t).msgs().Get(t, a.Int(0), a.Int(1)));
  return static_cast<uint64_t>(id);
}

SyscallReturn SysMsgsnd(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  SV_TRY(Ns(t).msgs().Send(t, a.Int(0), a.Addr(1), a.Long(2), a.Int(3)));
  return 0;
}

SyscallReturn SysMsgrcv(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  return Ns(t).msgs().Receive(t, a.Int(0), a.Addr(1), a.Long(2), a.Long(3), a.Int(4));
}

SyscallReturn SysMsgctl(Task &t, const SyscallArgs &a) {
  if (a.Int(0) < 0) return Errno(EINVAL);
  return Ns(t).msgs().Ctl(t, a.Int(0), a.Int(1), a.Addr(2));
}

}  // namespace seedvisor::sentry
