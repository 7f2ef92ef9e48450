// Futexes (futex(2)): wait queues keyed by guest address.
//
// Keys are (address space, address): process-private futexes are exact;
// shared futexes between processes that map the same memory are not matched
// across processes yet (a note in the syscall table says so).
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

class FutexTable {
 public:
  // FUTEX_WAIT(_BITSET): sleeps while *addr == val. `deadline` is absolute
  // CLOCK_MONOTONIC or null.
  Status Wait(Task& t, UserAddr addr, uint32_t val, uint32_t bitset, const timespec* deadline);
  // FUTEX_WAKE(_BITSET): wakes up to `n` waiters; returns how many.
  int Wake(const MM* mm, UserAddr addr, int n, uint32_t bitset);
  // FUTEX_REQUEUE / CMP_REQUEUE (the value check is the caller's).
  int Requeue(const MM* mm, UserAddr from, UserAddr to, int wake, int requeue);

 private:
  struct Waiter {
    const MM* mm;
    uint64_t addr;
    uint32_t bitset;
    Task* task;
    bool woken = false;
  };
  absl::Mutex mu_;
  std::list<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_FUTEX_H_
