// PI futexes: FUTEX_LOCK_PI(2), FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI and the
// handoff when an owner ends (kernel/futex/pi.c). See futex.h.
#include <linux/futex.h>

#include <vector>

#include "sentry/kernel/futex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/mm/mm.h"

namespace seedvisor::sentry {
namespace {

constexpr int kWaitersBit = 31;  // FUTEX_WAITERS
static_assert(FUTEX_WAITERS == 1u << kWaitersBit);

// The TID a PI futex word holds: the task's id in its own pid namespace
// (task_pid_vnr()), what gettid() gave the guest.
uint32_t Tid(const Task& t) { return static_cast<uint32_t>(t.vtid()); }

}  // namespace

Result<bool> FutexTable::LockPiAtomic(Task& t, UserAddr addr, const PiKey& k, Task& locker,
                                      bool set_waiters, PiState** ps, Task** owner) {
  *ps = nullptr;
  *owner = nullptr;
  uint32_t uval;
  SV_TRY(t.CopyInObj(addr, &uval));
  // Only the owner (the locker, in this call) could change a word that
  // names it, so this plain read decides EDEADLK.
  if ((uval & FUTEX_TID_MASK) == Tid(locker)) return Errno(EDEADLK);
  auto it = pi_.find(k);
  if (it != pi_.end()) {
    // attach_to_pi_state(): the word must name the owner the waiters
    // wait for, or be an owner-died word without a TID (a robust list
    // cleared it; the owner's ExitPi hands it on next).
    const uint32_t pid = uval & FUTEX_TID_MASK;
    const bool died = (uval & FUTEX_OWNER_DIED) && pid == 0;
    if (!died && pid != Tid(*it->second.owner)) return Errno(EINVAL);
    *ps = &it->second;
    return false;
  }
  // No waiters: FUTEX_WAITERS first, in one atomic step against the
  // guest's own cmpxchg fast paths, then the word as it is now.
  if (!t.mm().IsGuestAddress(addr)) return Errno(EFAULT);
  const long r = t.ctx_->AtomicSetBit32(addr, kWaitersBit);
  if (r < 0) return Errno(static_cast<int>(-r));
  SV_TRY(t.CopyInObj(addr, &uval));
  const uint32_t pid = uval & FUTEX_TID_MASK;
  if (pid == 0) {
    // Free (its owner released it, or died with a robust list): take it
    // over, keeping the owner-died bit; nobody waits, so no waiters bit
    // unless the caller is about to queue some.
    const uint32_t nv =
        (uval & FUTEX_OWNER_DIED) | Tid(locker) | (set_waiters ? FUTEX_WAITERS : 0);
    SV_TRY(t.CopyOutObj(addr, nv));
    return true;
  }
  if (pid == Tid(locker)) return Errno(EDEADLK);  // the guest wrote it meanwhile
  // attach_to_pi_owner(): the owner must be a live task; a TID of nobody
  // (or of a task past its exit) is ESRCH (handle_exit_race()), and the
  // waiters bit stays set, as in Linux.
  std::shared_ptr<Task> o;
  {
    absl::MutexLock kl(&t.kernel().mu());
    o = t.kernel().TaskByVtid(t.pid_ns(), static_cast<int>(pid));  // futex_find_get_task()
  }
  if (o == nullptr || o->futex_exited_) return Errno(ESRCH);
  *owner = o.get();  // alive until its ExitPi, which needs mu_
  return false;
}

void FutexTable::QueuePi(const PiKey& k, PiState* ps, Task* owner, PiWaiter* w) {
  if (ps != nullptr) {
    ps->waiters.push_back(w);
  } else {
    pi_.emplace(k, PiState{owner, {w}});
  }
}

void FutexTable::DequeuePi(const PiKey& k, PiWaiter* w) {
  auto it = pi_.find(k);
  if (it == pi_.end()) return;
  it->second.waiters.remove(w);
  // The word keeps FUTEX_WAITERS: the owner's unlock then comes here and
  // clears it, as in Linux.
  if (it->second.waiters.empty()) pi_.erase(it);
}

Status FutexTable::BlockUntilGranted(Task& t, const PiWaiter& w, const timespec* deadline) {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (w.granted) return {};
    }
    Status s = t.Block(deadline);
    if (!s.ok()) return s;
  }
}

Status FutexTable::LockPi(Task& t, UserAddr addr, const FutexKey& key, const timespec* deadline,
                          bool try_only) {
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  const PiKey k{key.space, key.addr};
  PiWaiter w{&t, t.shared_mm(), addr};
  {
    absl::MutexLock l(&mu_);
    PiState* ps;
    Task* owner;
    SV_ASSIGN_OR_RETURN(bool acquired, LockPiAtomic(t, addr, k, t, false, &ps, &owner));
    if (acquired) return {};
    if (try_only) return Errno(EAGAIN);
    QueuePi(k, ps, owner, &w);
  }
  const Status result = BlockUntilGranted(t, w, deadline);
  absl::MutexLock l(&mu_);
  if (w.granted) return {};  // a handoff that raced the timeout or signal
  DequeuePi(k, &w);
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

Status FutexTable::WaitRequeuePi(Task& t, UserAddr addr, uint32_t val, const FutexKey& key,
                                 UserAddr addr2, const FutexKey& key2,
                                 const timespec* deadline) {
  PiWaiter pw{&t, t.shared_mm(), addr2};
  Waiter w{key.space, key.addr, FUTEX_BITSET_MATCH_ANY, &t};
  w.requeue_pi = &pw;
  w.pi_key = PiKey{key2.space, key2.addr};
  {
    absl::MutexLock l(&mu_);
    uint32_t cur;
    SV_TRY(t.CopyInObj(addr, &cur));
    if (cur != val) return Errno(EAGAIN);
    if (key.space == key2.space && key.addr == key2.addr) return Errno(EINVAL);
    Enqueue(&w);
  }
  const Status result = BlockUntilGranted(t, pw, deadline);
  absl::MutexLock l(&mu_);
  if (pw.granted) return {};
  const bool timeout = result.error().value() == ETIMEDOUT;
  if (!w.woken) {
    // handle_early_requeue_pi_wakeup(): still on the first word.
    Dequeue(&w);
    return timeout ? result : Status(Errno(kERESTARTNOINTR));
  }
  // Moved, not yet the owner. A restart would find the word changed:
  // futex_wait_requeue_pi() says EAGAIN at once (and so does a park).
  DequeuePi(w.pi_key, &pw);
  return timeout ? result : Status(Errno(EAGAIN));
}

Result<int> FutexTable::CmpRequeuePi(Task& t, UserAddr addr, const FutexKey& key,
                                     UserAddr addr2, const FutexKey& key2, int nr_requeue,
                                     uint32_t cmpval) {
  if (key.space == key2.space && key.addr == key2.addr) return Errno(EINVAL);
  const PiKey k2{key2.space, key2.addr};
  absl::MutexLock l(&mu_);
  uint32_t cur;
  SV_TRY(t.CopyInObj(addr, &cur));
  if (cur != cmpval) return Errno(EAGAIN);
  std::vector<Waiter*> found;
  if (auto q = queues_.find(PiKey{key.space, key.addr}); q != queues_.end()) {
    found.assign(q->second.begin(), q->second.end());
  }
  if (found.empty()) return 0;
  // futex_proxy_trylock_atomic(): the first waiter takes the PI futex if
  // it can, with FUTEX_WAITERS when more are to be moved.
  auto fits = [&](const Waiter* w) { return w->requeue_pi != nullptr && w->pi_key == k2; };
  if (!fits(found[0])) return Errno(EINVAL);
  PiState* ps;
  Task* owner;
  SV_ASSIGN_OR_RETURN(bool acquired, LockPiAtomic(t, addr2, k2, *found[0]->task,
                                                  nr_requeue != 0, &ps, &owner));
  int count = 0;
  size_t i = 0;
  if (acquired) {
    Waiter* top = found[0];
    Dequeue(top);
    top->woken = true;
    top->requeue_pi->granted = true;
    top->task->Notify();
    owner = top->task;  // the others queue behind the new owner
    count = i = 1;
  }
  // Up to nr_requeue more, and the first if it could not take the lock:
  // futex_requeue()'s loop ends at task_count - nr_wake >= nr_requeue.
  for (; i < found.size() && count - 1 < nr_requeue; ++i) {
    Waiter* w = found[i];
    if (!fits(w)) return Errno(EINVAL);  // those moved so far stay moved
    Dequeue(w);
    w->woken = true;
    QueuePi(k2, ps, owner, w->requeue_pi);
    if (ps == nullptr) ps = &pi_.find(k2)->second;
    ++count;
  }
  return count;
}

}  // namespace seedvisor::sentry
