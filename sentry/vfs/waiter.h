// WaitQueue: the tasks blocked on one sentry object (a pipe, an eventfd),
// waiting for its state to change.
//
// A task registers under the object's lock, drops the lock and parks in
// Task::Block(); whoever changes the state notifies the queue under the same
// lock. Task::Notify() sets the task's own wakeup flag, so a notification
// that lands between the unlock and the park is not lost, and Block() also
// returns for a signal (ERESTARTSYS) or a deadline. Nothing waits on a lock
// or a condition variable: a host fork() of the sentry never copies a lock
// that a parked thread is waiting on (DESIGN.md, "Inside the sentry").
//
//   std::unique_lock l(mu_);
//   while (empty()) {
//     if (nonblocking) return Errno(EAGAIN);
//     SV_TRY(WaitOn(readers_, t, l));      // ERESTARTSYS on a signal
//   }
//   ...                                   // and elsewhere, under mu_:
//   readers_.NotifyAll();
#ifndef SEEDVISOR_SENTRY_VFS_WAITER_H_
#define SEEDVISOR_SENTRY_VFS_WAITER_H_

#include <time.h>

#include <algorithm>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Task;

// Not thread-safe by itself: every call is made under the owning object's
// lock. Wakeups may be spurious; waiters re-check their condition.
class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  void Add(Task* t) { waiters_.push_back(t); }
  void Remove(Task* t) {
    auto it = std::find(waiters_.begin(), waiters_.end(), t);
    if (it != waiters_.end()) waiters_.erase(it);
  }
  bool empty() const { return waiters_.empty(); }
  // Wakes every waiter (each one host write to its task's wakeup fd).
  void NotifyAll() {
    for (Task* t : waiters_) TaskNotify(*t);
  }

 private:
  std::vector<Task*> waiters_;
};

// Parks `t` on `q` with `lock` (held, guarding `q`) released meanwhile;
// `lock` is held again on return. ERESTARTSYS when a signal is pending,
// ETIMEDOUT at `deadline` (CLOCK_MONOTONIC), success otherwise.
template <typename Lock>
Status WaitOn(WaitQueue& q, Task& t, Lock& lock, const timespec* deadline = nullptr) {
  q.Add(&t);
  lock.unlock();
  Status s = TaskBlockOnFd(t, -1, 0, deadline);
  lock.lock();
  q.Remove(&t);
  return s;
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_WAITER_H_
