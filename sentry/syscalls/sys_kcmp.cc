// kcmp(2) (kernel/kcmp.c): whether two processes share a kernel object.
// 0 means the same object; otherwise 1 or 2 order the two objects (by
// sentry address, hidden behind a per-type random cookie as Linux
// obfuscates kernel pointers), consistently for the sandbox's life.
// Both processes must be open to the caller as for PTRACE_MODE_READ.
//
// KCMP_IO: the sandbox keeps no block-I/O context, so every task has none
// and all compare equal, as two Linux tasks that never submitted block I/O
// do. KCMP_SYSVSEM: undo lists are per process here (CLONE_SYSVSEM does
// not share them), so two processes compare equal when neither has one.
// KCMP_EPOLL_TFD is EOPNOTSUPP, as a kernel without checkpoint/restore.
#include <linux/kcmp.h>

#include <array>
#include <cstdint>
#include <random>

#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {

namespace {

// kcmp_ptr(): 0, or 1 / 2 by the obfuscated order of the two objects.
long Order(const void* a, const void* b, int type) {
  static const auto cookies = [] {
    std::array<uint64_t, KCMP_TYPES> c{};
    std::random_device rd;
    for (auto& v : c) v = (uint64_t{rd()} << 32 | rd()) | 1;
    return c;
  }();
  const uint64_t x = reinterpret_cast<uintptr_t>(a) ^ cookies[type];
  const uint64_t y = reinterpret_cast<uintptr_t>(b) ^ cookies[type];
  return x == y ? 0 : x < y ? 1 : 2;
}

}  // namespace

SyscallReturn SysKcmp(Task& t, const SyscallArgs& a) {
  const int pid1 = a.Int(0), pid2 = a.Int(1), type = a.Int(2);
  Kernel& k = t.kernel();
  std::shared_ptr<Task> t1, t2;
  {
    absl::MutexLock l(&k.mu());
    t1 = k.TaskByVtid(t.pid_ns(), pid1);
    t2 = k.TaskByVtid(t.pid_ns(), pid2);
    if (t1 == nullptr || t2 == nullptr || t1->exited() || t2->exited()) return Errno(ESRCH);
    if (!MayPtraceAccess(t, t1->tg(), t1->creds(), PtraceCreds::kReal) ||
        !MayPtraceAccess(t, t2->tg(), t2->creds(), PtraceCreds::kReal)) {
      return Errno(EPERM);
    }
  }
  switch (type) {
    case KCMP_FILE: {
      std::shared_ptr<FdTable> f1 = t1->shared_fds(), f2 = t2->shared_fds();
      if (f1 == nullptr || f2 == nullptr) return Errno(EBADF);
      SV_ASSIGN_OR_RETURN(FileRef a1, f1->Get(static_cast<int>(a.raw[3])));
      SV_ASSIGN_OR_RETURN(FileRef a2, f2->Get(static_cast<int>(a.raw[4])));
      return Order(a1.get(), a2.get(), type);
    }
    case KCMP_VM:
      return Order(t1->shared_mm().get(), t2->shared_mm().get(), type);
    case KCMP_FILES:
      return Order(t1->shared_fds().get(), t2->shared_fds().get(), type);
    case KCMP_FS:
      return Order(t1->shared_fs().get(), t2->shared_fs().get(), type);
    case KCMP_SIGHAND: {
      absl::MutexLock l(&k.mu());
      return Order(t1->tg().handlers.get(), t2->tg().handlers.get(), type);
    }
    case KCMP_IO:
      return 0;
    case KCMP_SYSVSEM: {
      if (&t1->tg() == &t2->tg()) return 0;
      SemRegistry& sems = k.ipc().sems();
      if (!sems.HasUndo(t1->tgid()) && !sems.HasUndo(t2->tgid())) return 0;
      return Order(&t1->tg(), &t2->tg(), type);
    }
    case KCMP_EPOLL_TFD:
      return Errno(EOPNOTSUPP);
    default:
      return Errno(EINVAL);
  }
}

}  // namespace seedvisor::sentry
