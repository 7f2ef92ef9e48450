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
#include <map>
#include <memory>
#include <span>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
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

// One atomic read-modify-write of the 4-aligned guest word at `addr` of
// `mm` through `ctx`, a context of that address space
// (platform::Context::AtomicUpdate32), as Linux's futex code changes user
// words with cmpxchg: the old value. EINVAL for an unaligned word, EFAULT
// for one outside the guest or not mapped writable.
Result<uint32_t> AtomicUpdateWord(platform::Context& ctx, MM& mm, UserAddr addr,
                                  const platform::Context::WordUpdate& u);

class FutexTable {
 public:
  // The most entries one futex_waitv() takes (FUTEX_WAITV_MAX).
  static constexpr unsigned kWaitvMax = 128;
  // One futex_waitv() entry: the word's key, where it is in the caller's
  // mm, and the value it must hold for the caller to sleep.
  struct WaitvEntry {
    FutexKey key;
    UserAddr addr;
    uint32_t val;
  };
  // FUTEX_WAIT(_BITSET): sleeps while *addr == val. `deadline` is absolute
  // CLOCK_MONOTONIC or null.
  // `space`/`key` override the (mm, addr) key when `space` is non-null.
  Status Wait(Task& t, UserAddr addr, uint32_t val, uint32_t bitset, const timespec* deadline,
              const void* space = nullptr, uint64_t key = 0);
  // futex_waitv(2) (futex_wait_multiple()): sleeps while every word holds
  // its value, until a wake of any of them. Returns the index of a woken
  // entry (the highest, as futex_unqueue_multiple() does); EFAULT if a word
  // cannot be read or EAGAIN if one differs, at the first such entry in
  // order; ETIMEDOUT at `deadline` (absolute CLOCK_MONOTONIC, or null);
  // ERESTARTSYS when a signal or a park interrupts it. The values are read
  // and all entries queued under one lock, so no wake is lost between them.
  // At most kWaitvMax entries (the caller checks).
  Result<int> WaitMultiple(Task& t, std::span<const WaitvEntry> entries,
                           const timespec* deadline);
  // FUTEX_WAKE(_BITSET): wakes up to `n` waiters, and at least one (as
  // futex_wake() does for a count of 0 or less); returns how many, or
  // -EINVAL on meeting a FUTEX_WAIT_REQUEUE_PI waiter (those are only for
  // FUTEX_CMP_REQUEUE_PI).
  int Wake(const void* space, UserAddr addr, int n, uint32_t bitset);
  int Wake(const FutexKey& k, int n, uint32_t bitset) {
    return Wake(k.space, UserAddr(k.addr), n, bitset);
  }
  // FUTEX_REQUEUE / CMP_REQUEUE (the value check is the caller's); -EINVAL
  // as Wake.
  int Requeue(const void* space, UserAddr from, UserAddr to, int wake, int requeue,
              const void* to_space = nullptr);

  // ---- PI futexes (futex_pi.cc) ----
  // The word is the owner's TID | FUTEX_WAITERS | FUTEX_OWNER_DIED, as in
  // Linux; the sentry keeps, per contended word, its owner task and its
  // waiters in arrival order. Priority inheritance itself is not done:
  // the host schedules the sandbox's threads, so there is nothing to
  // boost (as in gVisor); waiters get the lock first come, first served,
  // and lock chains are not searched for deadlocks (Linux's rt_mutex
  // chain walk: only locking one's own lock is EDEADLK).
  //
  // FUTEX_LOCK_PI(2) (`deadline`: absolute CLOCK_MONOTONIC, or null) and
  // FUTEX_TRYLOCK_PI (`try_only`) by `t` on the word at `addr` in its mm,
  // keyed `key`. Sets FUTEX_WAITERS with the platform's atomic update
  // (Context::AtomicSetBit32) before it looks at the owner, as
  // futex_lock_pi_atomic() does with its cmpxchg: once that bit is set,
  // neither a locker's nor the owner's user-space fast path changes the
  // word, so the rest are plain reads and writes under mu_. Returns
  // ETIMEDOUT, or ERESTARTSYS when a signal or a park interrupts the wait.
  Status LockPi(Task& t, UserAddr addr, const FutexKey& key, const timespec* deadline,
                bool try_only);
  // FUTEX_UNLOCK_PI: hands the lock to the first waiter (its TID |
  // FUTEX_WAITERS, wake_futex_pi()) or clears the word.
  Status UnlockPi(Task& t, UserAddr addr, const FutexKey& key);
  // FUTEX_WAIT_REQUEUE_PI: waits on the (non-PI) word at `addr` while it
  // holds `val`, for FUTEX_CMP_REQUEUE_PI to move it to the PI futex at
  // `addr2` (`key2`); returns once it owns that. ETIMEDOUT at `deadline`;
  // a signal before the move restarts the call (kERESTARTNOINTR), one
  // after it is EAGAIN (futex_wait_requeue_pi()).
  Status WaitRequeuePi(Task& t, UserAddr addr, uint32_t val, const FutexKey& key,
                       UserAddr addr2, const FutexKey& key2, const timespec* deadline);
  // FUTEX_CMP_REQUEUE_PI (nr_wake 1; the caller checks the arguments):
  // if the word at `addr` holds `cmpval`, the first waiter takes the PI
  // futex at `addr2` if it is free (with FUTEX_WAITERS if more are moved)
  // and up to `nr_requeue` more (and the first, if it could not take it)
  // wait on it. Returns how many were woken or moved.
  Result<int> CmpRequeuePi(Task& t, UserAddr addr, const FutexKey& key, UserAddr addr2,
                           const FutexKey& key2, int nr_requeue, uint32_t cmpval);
  // exit_pi_state_list(), when `t` ends (after its robust list): every PI
  // futex it owns with waiters goes to its first waiter, with
  // FUTEX_OWNER_DIED (fixup_pi_state_owner()); a later lock of a word that
  // still names `t` is ESRCH. O(contended PI futexes).
  void ExitPi(Task& t);

 private:
  struct PiWaiter;
  using PiKey = std::pair<const void*, uint64_t>;
  struct Waiter;
  using Queue = std::list<Waiter*>;
  // A task blocked on a word (FUTEX_WAIT*, one futex_waitv() entry, or
  // FUTEX_WAIT_REQUEUE_PI before its move); on the waiter's stack, queued
  // until it returns.
  struct Waiter {
    const void* mm;  // the key's space (an MM, or a mapped object)
    uint64_t addr;
    uint32_t bitset;
    Task* task;
    bool woken = false;  // a requeue-PI waiter: moved to its PI futex
    // FUTEX_WAIT_REQUEUE_PI: what the waiter waits with once moved, and the
    // only PI futex it may be moved to.
    PiWaiter* requeue_pi = nullptr;
    PiKey pi_key{};
    Queue::iterator pos{};  // where it is in queues_[{mm, addr}], while queued
  };
  // A task blocked in LockPi; on its stack, listed until it returns.
  struct PiWaiter {
    Task* task;
    // Where this waiter's word is: an owner's exit writes the new owner
    // there (the dying owner may map it elsewhere, or not at all).
    std::shared_ptr<MM> mm;
    UserAddr addr;
    bool granted = false;  // the lock is the waiter's now
  };
  // A word with waiters (futex_pi_state). `owner` is never a task that has
  // passed ExitPi: that hands the word on first.
  struct PiState {
    Task* owner;
    std::list<PiWaiter*> waiters;  // never empty: the state goes with the last
  };
  // futex_lock_pi_atomic() for `locker` on the word at `addr` of `t`'s mm
  // (`t` is the caller, whose context makes the atomic update): true if
  // `locker` owns it now (the word names it, with FUTEX_WAITERS if
  // `set_waiters`); false if it must wait, with *ps the word's state if it
  // has one, else *owner the task to make one for.
  Result<bool> LockPiAtomic(Task& t, UserAddr addr, const PiKey& k, Task& locker,
                            bool set_waiters, PiState** ps, Task** owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lists `w` as a waiter of the word `k` (its state `ps`, or a new one
  // owned by `owner`).
  void QueuePi(const PiKey& k, PiState* ps, Task* owner, PiWaiter* w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Blocks `t` until `w` is granted (success), its deadline or a signal
  // (Task::Block's error; the caller re-checks `granted` under mu_).
  Status BlockUntilGranted(Task& t, const PiWaiter& w, const timespec* deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes `w` off the waiters of `k` (and the state with the last one).
  void DequeuePi(const PiKey& k, PiWaiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `w` last on its word (w->mm, w->addr) / takes it off it: O(log
  // words with waiters), so a wake costs the word's waiters, not everyone's
  // (a futex_waitv() queues up to kWaitvMax entries per task).
  void Enqueue(Waiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Dequeue(Waiter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  friend class Kernel;  // ReinitInForkChild
  absl::Mutex mu_;
  // The waiters of each word with any, in arrival order (a futex hash
  // bucket's list, one per word).
  std::map<PiKey, Queue> queues_ ABSL_GUARDED_BY(mu_);
  std::map<PiKey, PiState> pi_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_FUTEX_H_
