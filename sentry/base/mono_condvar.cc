#include "sentry/base/mono_condvar.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "absl/time/time.h"

namespace seedvisor::sentry {

bool MonoCondVar::WaitUntil(absl::Mutex* mu, Deadline by) {
  if (by.Passed()) return true;
  // The count goes up, and the sequence is read, before the mutex is
  // released: a signal after a change made under it either finds a waiter
  // to wake or has moved the sequence, and the futex then returns at once.
  waiters_.fetch_add(1);
  const uint32_t seen = seq_.load();
  timespec at{};
  if (!by.IsNever()) at = absl::ToTimespec(by.at());
  mu->Unlock();
  // An absolute timeout on CLOCK_MONOTONIC: FUTEX_WAIT_BITSET without
  // FUTEX_CLOCK_REALTIME (futex(2)). EINTR and EAGAIN are wakeups too.
  syscall(SYS_futex, &seq_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, by.IsNever() ? nullptr : &at,
          nullptr, FUTEX_BITSET_MATCH_ANY);
  mu->Lock();
  waiters_.fetch_sub(1);
  return by.Passed();
}

bool MonoCondVar::Await(absl::Mutex* mu, const absl::Condition& cond, Deadline by) {
  while (!cond.Eval()) {
    if (WaitUntil(mu, by)) return cond.Eval();
  }
  return true;
}

void MonoCondVar::Wake(int32_t n) {
  seq_.fetch_add(1);
  if (waiters_.load() == 0) return;
  syscall(SYS_futex, &seq_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, nullptr, nullptr, 0);
}

}  // namespace seedvisor::sentry
