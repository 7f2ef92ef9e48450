// Futexes (futex(2)): wait queues keyed by guest address.
//
// Keys are (space, address). For a process-private futex the space is the
// MM and the address the guest address; a shared futex in a MAP_SHARED
// mapping is keyed by the mapped object and the offset in it (the caller
// computes it, as Linux's get_futex_key()), so processes mapping the same
// memory at different addresses meet.
#ifndef SEEDVISOR_SENTRY_KERNEL_FUTEX_H_
#define SEEDVISOR_SENTRY_KERNEL_FUTEX_H_

#include <time.h>

#include <cstdint>
#include <list>

#include "absl/synchronization/mutex.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::sentry {

class Task;
class MM;

// A futex's identity, as get_futex_key() (kernel/futex/core.c) makes it.
struct FutexKey {
  const void* space;  // an MM, or the object a MAP_SHARED mapping maps
  uint64_t addr;      // an address in that MM, or an offset in the object
};

// The key of the 32-bit word at `addr` in `mm`: private (FUTEX_PRIVATE_FLAG)
// futexes are (mm, address); shared ones in MAP_SHARED memory are the mapped
// object and offset, so that processes mapping it at different addresses
// meet; shared ones in private memory are (mm, address) marked apart from
// the private key (Linux's FUT_OFF_MMSHARED), so a shared wake never wakes a
// private waiter of the same word, nor the other way round. Wakes the kernel
// makes itself (CLONE_CHILD_CLEARTID, robust lists) are shared.
FutexKey FutexKeyFor(MM& mm, UserAddr addr, bool priv);

class FutexTable {
 public:
  // FUTEX_WAIT(_BITSET): sleeps while *addr == val. `deadline` is absolute
  // CLOCK_MONOTONIC or null.
  // `space`/`key` override the (mm, addr) key when `space` is non-null.
  Status Wait(Task& t, UserAddr addr, uint32_t val, uint32_t bitset, const timespec* deadline,
              const void* space = nullptr, uint64_t key = 0);
  // FUTEX_WAKE(_BITSET): wakes up to `n` waiters, and at least one (as
  // futex_wake() does for a count of 0 or less); returns how many.
  int Wake(const void* space, UserAddr addr, int n, uint32_t bitset);
  int Wake(const FutexKey& k, int n, uint32_t bitset) {
    return Wake(k.space, UserAddr(k.addr), n, bitset);
  }
  // FUTEX_REQUEUE / CMP_REQUEUE (the value check is the caller's).
  int Requeue(const void* space, UserAddr from, UserAddr to, int wake, int requeue,
              const void* to_space = nullptr);

 private:
  struct Waiter {
    const void* mm;  // the key's space (an MM, or a mapped object)
    uint64_t addr;
    uint32_t bitset;
    Task* task;
    bool woken = false;
  };
  friend class Kernel;  // ReinitInForkChild
  absl::Mutex mu_;
  std::list<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_FUTEX_H_
