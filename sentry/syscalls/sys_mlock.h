// What mmap(2) and mremap(2) share with the mlock family (sys_mlock.cc).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_MLOCK_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_MLOCK_H_

#include <cstdint>

namespace seedvisor::sentry {

class Task;

// can_do_mlock(): a RLIMIT_MEMLOCK of 0 refuses locking to all but
// CAP_IPC_LOCK.
bool CanDoMlock(Task& t);
// RLIMIT_MEMLOCK in bytes, UINT64_MAX (no limit) with CAP_IPC_LOCK: the
// `limit` of MM::SetLock and MmapRequest::memlock_limit.
uint64_t MemlockLimit(Task& t);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_MLOCK_H_
