// Memory locking: mlock(2), mlock2(2), munlock(2), mlockall(2),
// munlockall(2). The sentry keeps the lock in the VMAs and counts it as
// Linux does (VmLck, smaps' Locked, RLIMIT_MEMLOCK) and faults locked
// pages in; it never asks the host to lock them (sentry/mm/mm_lock.cc).
#include "sentry/syscalls/sys_mlock.h"

#include <linux/capability.h>
#include <sys/mman.h>

#include <algorithm>
#include <utility>

#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {

bool CanDoMlock(Task& t) {
  return t.tg().rlimits[RLIMIT_MEMLOCK].rlim_cur != 0 || t.creds().HasCap(CAP_IPC_LOCK);
}

uint64_t MemlockLimit(Task& t) {
  if (t.creds().HasCap(CAP_IPC_LOCK)) return UINT64_MAX;
  const rlim_t lim = t.tg().rlimits[RLIMIT_MEMLOCK].rlim_cur;
  return lim == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(lim);
}

namespace {

// do_mlock()'s page rounding: the start down, the length (with the start's
// offset in its page) up, wrapping as Linux's PAGE_ALIGN does.
std::pair<uint64_t, uint64_t> LockPages(const SyscallArgs& a) {
  const uint64_t start = a.Addr(0).value();
  const uint64_t len = (a.Ulong(1) + start % kPageSize + kPageSize - 1) & ~(kPageSize - 1);
  return {start & ~(kPageSize - 1), len};
}

// __mm_populate(): faults in what [start, end) locked, in pieces so that
// a kill ends a large one early. `strict` (mlock, not mlockall): an error
// is the caller's, as __mlock_posix_error_return() maps it (a page that
// cannot be faulted in, past a file's end, is ENOMEM; no memory EAGAIN).
Status PopulateLocked(Task& t, uint64_t start, uint64_t end, bool strict) {
  constexpr uint64_t kChunk = 64ull << 20;
  for (const MM::PopulateRange& r : t.mm().RangesToPopulate(start, end)) {
    for (uint64_t at = r.start; at < r.end; at += kChunk) {
      if (t.FatalSignalPending()) return Errno(EINTR);
      Status s = t.mm().Populate({at, std::min(r.end, at + kChunk), r.write});
      if (s.ok() || !strict) continue;
      if (s.error() == Errno(EFAULT)) return Errno(ENOMEM);
      if (s.error() == Errno(ENOMEM)) return Errno(EAGAIN);
    }
  }
  return {};
}

SyscallReturn DoMlock(Task& t, const SyscallArgs& a, uint8_t lock) {
  if (!CanDoMlock(t)) return Errno(EPERM);
  const auto [start, len] = LockPages(a);
  SV_TRY(t.mm().SetLock(start, start + len, lock, MemlockLimit(t)));
  if (!(lock & Vma::kLockOnFault)) SV_TRY(PopulateLocked(t, start, start + len, true));
  return 0;
}

}  // namespace

SyscallReturn SysMlock(Task& t, const SyscallArgs& a) { return DoMlock(t, a, Vma::kLocked); }

// mlock2(2): MLOCK_ONFAULT the only flag.
SyscallReturn SysMlock2(Task& t, const SyscallArgs& a) {
  constexpr unsigned kMlockOnfault = 0x01;
  if (a.Uint(2) & ~kMlockOnfault) return Errno(EINVAL);
  return DoMlock(t, a, Vma::kLocked | ((a.Uint(2) & kMlockOnfault) ? Vma::kLockOnFault : 0));
}

SyscallReturn SysMunlock(Task& t, const SyscallArgs& a) {
  const auto [start, len] = LockPages(a);
  SV_TRY(t.mm().SetLock(start, start + len, 0));
  return 0;
}

SyscallReturn SysMlockall(Task& t, const SyscallArgs& a) {
  const int flags = a.Int(0);
  if (flags == 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT) {
    return Errno(EINVAL);
  }
  if (!CanDoMlock(t)) return Errno(EPERM);
  SV_TRY(t.mm().SetLockAll(flags, MemlockLimit(t)));
  // mlockall(): mm_populate(0, TASK_SIZE), errors ignored.
  if ((flags & MCL_CURRENT) && !(flags & MCL_ONFAULT)) {
    SV_TRY(PopulateLocked(t, 0, t.mm().address_space().UserTop().value(), false));
  }
  return 0;
}

SyscallReturn SysMunlockall(Task& t, const SyscallArgs&) {
  SV_TRY(t.mm().SetLockAll(0));
  return 0;
}

}  // namespace seedvisor::sentry
