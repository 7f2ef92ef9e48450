// PI futexes: FUTEX_LOCK_PI(2), FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI and the
// handoff when an owner ends (kernel/futex/pi.c). See futex.h.
#include <linux/futex.h>

#include "sentry/kernel/futex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/mm/mm.h"

namespace seedvisor::sentry {
namespace {

constexpr int kWaitersBit = 31;  // FUTEX_WAITERS
static_assert(FUTEX_WAITERS == 1u << kWaitersBit);

uint32_t Tid(const Task& t) { return static_cast<uint32_t>(t.tid()); }

}  // namespace

Status FutexTable::LockPi(Task& t, UserAddr addr, const FutexKey& key, const timespec* deadline,
                          bool try_only) {
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  const PiKey k{key.space, key.addr};
  PiWaiter w{&t, t.shared_mm(), addr};
  {
    absl::MutexLock l(&mu_);
    uint32_t uval;
    SV_TRY(t.CopyInObj(addr, &uval));
    // Only the owner (this thread, in this call) could change a word that
    // names it, so this plain read decides EDEADLK.
    if ((uval & FUTEX_TID_MASK) == Tid(t)) return Errno(EDEADLK);
    auto it = pi_.find(k);
    if (it != pi_.end()) {
      // attach_to_pi_state(): the word must name the owner the waiters
      // wait for, or be an owner-died word without a TID (a robust list
      // cleared it; the owner's ExitPi hands it on next).
      const uint32_t pid = uval & FUTEX_TID_MASK;
      const bool died = (uval & FUTEX_OWNER_DIED) && pid == 0;
      if (!died && pid != Tid(*it->second.owner)) return Errno(EINVAL);
      if (try_only) return Errno(EAGAIN);
      it->second.waiters.push_back(&w);
    } else {
      // futex_lock_pi_atomic() without waiters: FUTEX_WAITERS first, in
      // one atomic step against the guest's own cmpxchg fast paths, then
      // the word as it is now.
      if (!t.mm().IsGuestAddress(addr)) return Errno(EFAULT);
      const long r = t.ctx_->AtomicSetBit32(addr, kWaitersBit);
      if (r < 0) return Errno(static_cast<int>(-r));
      SV_TRY(t.CopyInObj(addr, &uval));
      const uint32_t pid = uval & FUTEX_TID_MASK;
      if (pid == 0) {
        // Free (its owner released it, or died with a robust list): take
        // it over, keeping the owner-died bit; nobody waits, so no bit.
        const uint32_t nv = (uval & FUTEX_OWNER_DIED) | Tid(t);
        SV_TRY(t.CopyOutObj(addr, nv));
        return {};
      }
      if (pid == Tid(t)) return Errno(EDEADLK);  // the guest wrote it meanwhile
      // attach_to_pi_owner(): the owner must be a live task; a TID of
      // nobody (or of a task past its exit) is ESRCH (handle_exit_race()),
      // and the waiters bit stays set, as in Linux.
      std::shared_ptr<Task> owner;
      {
        absl::MutexLock kl(&t.kernel().mu());
        owner = t.kernel().TaskByTid(static_cast<int>(pid));
      }
      if (owner == nullptr || owner->futex_exited_) return Errno(ESRCH);
      if (try_only) return Errno(EAGAIN);
      pi_.emplace(k, PiState{owner.get(), {&w}});
    }
  }
  Status result;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (w.granted) return {};
    }
    Status s = t.Block(deadline);
    if (!s.ok()) {
      result = s;
      break;
    }
  }
  absl::MutexLock l(&mu_);
  if (w.granted) return {};  // a handoff that raced the timeout or signal
  auto it = pi_.find(k);
  if (it != pi_.end()) {
    it->second.waiters.remove(&w);
    // The word keeps FUTEX_WAITERS: the owner's unlock then comes here and
    // clears it, as in Linux.
    if (it->second.waiters.empty()) pi_.erase(it);
  }
  return result;
}

Status FutexTable::UnlockPi(Task& t, UserAddr addr, const FutexKey& key) {
  absl::MutexLock l(&mu_);
  // futex_unlock_pi(): the owner check comes before the key's alignment.
  uint32_t uval;
  SV_TRY(t.CopyInObj(addr, &uval));
  if ((uval & FUTEX_TID_MASK) != Tid(t)) return Errno(EPERM);
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  // The word names this thread, which is here: no fast path changes it
  // meanwhile (lockers fail their cmpxchg from 0 and come to mu_).
  auto it = pi_.find(PiKey{key.space, key.addr});
  if (it == pi_.end()) {
    const uint32_t zero = 0;
    return t.CopyOutObj(addr, zero);
  }
  PiState& ps = it->second;
  if (ps.owner != &t) return Errno(EINVAL);  // the guest rewrote the word
  PiWaiter* next = ps.waiters.front();
  // wake_futex_pi(): the new owner with FUTEX_WAITERS even when it was the
  // last waiter, so that its unlock comes here; the owner-died bit goes.
  const uint32_t nv = Tid(*next->task) | FUTEX_WAITERS;
  SV_TRY(t.CopyOutObj(addr, nv));
  ps.waiters.pop_front();
  ps.owner = next->task;
  next->granted = true;
  next->task->Notify();
  if (ps.waiters.empty()) pi_.erase(it);
  return {};
}

void FutexTable::ExitPi(Task& t) {
  absl::MutexLock l(&mu_);
  t.futex_exited_ = true;
  for (auto it = pi_.begin(); it != pi_.end();) {
    PiState& ps = it->second;
    if (ps.owner != &t) {
      ++it;
      continue;
    }
    PiWaiter* next = ps.waiters.front();
    ps.waiters.pop_front();
    // fixup_pi_state_owner() in the waiter: a lock whose owner is gone is
    // taken with FUTEX_OWNER_DIED. Written through the waiter's own mm.
    const uint32_t nv = Tid(*next->task) | FUTEX_WAITERS | FUTEX_OWNER_DIED;
    (void)next->mm->CopyOut(next->addr, &nv, sizeof(nv));
    ps.owner = next->task;
    next->granted = true;
    next->task->Notify();
    it = ps.waiters.empty() ? pi_.erase(it) : std::next(it);
  }
}

}  // namespace seedvisor::sentry
