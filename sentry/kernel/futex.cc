#include "sentry/kernel/futex.h"

#include <sys/mman.h>

#include "sentry/kernel/task.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

FutexKey FutexKeyFor(MM& mm, UserAddr addr, bool priv) {
  if (priv) return FutexKey{&mm, addr.value()};
  // FUT_OFF_MMSHARED: futex words are 4-aligned (EINVAL otherwise), so bit 0
  // is free to tell a shared key in private memory from the private one.
  FutexKey key{&mm, addr.value() | 1};
  mm.WithVmaAt(addr, [&](const Vma& v) {
    if (!(v.flags & MAP_SHARED)) return;
    if (!v.file) {
      // Shared anonymous memory has no object here to name it (the
      // platform shares it across fork): key by address in one space for
      // all of them. Unrelated mappings at the same address can then see
      // spurious wakeups, which futex(2) callers must tolerate anyway.
      static const char kSharedAnon = 0;
      key = FutexKey{&kSharedAnon, addr.value()};
      return;
    }
    const void* obj = v.file->dentry() ? static_cast<const void*>(v.file->dentry()->inode().get())
                                       : static_cast<const void*>(v.file.get());
    key = FutexKey{obj, v.offset + (addr.value() - v.start)};
  });
  return key;
}

Result<uint32_t> AtomicUpdateWord(platform::Context& ctx, MM& mm, UserAddr addr,
                                  const platform::Context::WordUpdate& u) {
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  if (!mm.IsGuestAddress(addr)) return Errno(EFAULT);
  const long r = ctx.AtomicUpdate32(addr, u);
  if (r < 0) return Errno(static_cast<int>(-r));
  return static_cast<uint32_t>(r);
}

Result<uint32_t> Task::AtomicUpdateWord(UserAddr addr, const platform::Context::WordUpdate& u) {
  return sentry::AtomicUpdateWord(*ctx_, *mm_, addr, u);
}

Status FutexTable::Wait(Task& t, UserAddr addr, uint32_t val, uint32_t bitset,
                        const timespec* deadline, const void* space, uint64_t key) {
  if (bitset == 0) return Errno(EINVAL);
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  Waiter w{space ? space : &t.mm(), space ? key : addr.value(), bitset, &t};
  {
    // Check the value and queue under one lock, so a wake between the two
    // cannot be lost.
    absl::MutexLock l(&mu_);
    uint32_t cur;
    SV_TRY(t.CopyInObj(addr, &cur));
    if (cur != val) return Errno(EAGAIN);
    waiters_.push_back(&w);
  }
  Status result;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (w.woken) break;
    }
    Status s = t.Block(deadline);
    if (!s.ok()) {
      result = s.error().value() == ETIMEDOUT ? Status(Errno(ETIMEDOUT)) : s;
      break;
    }
  }
  absl::MutexLock l(&mu_);
  if (w.woken) return {};  // a wake that raced a signal still counts
  waiters_.remove(&w);
  return result;
}

int FutexTable::Wake(const void* mm, UserAddr addr, int n, uint32_t bitset) {
  absl::MutexLock l(&mu_);
  int woken = 0;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Waiter* w = *it;
    if (w->mm == mm && w->addr == addr.value() && (w->bitset & bitset)) {
      if (w->requeue_pi != nullptr) return -EINVAL;  // futex_wake(): an rt_waiter
      w->woken = true;
      w->task->Notify();
      it = waiters_.erase(it);
      if (++woken >= n) break;  // futex_wake(): a count <= 0 wakes one
    } else {
      ++it;
    }
  }
  return woken;
}

int FutexTable::Requeue(const void* mm, UserAddr from, UserAddr to, int wake, int requeue,
                        const void* to_space) {
  absl::MutexLock l(&mu_);
  int woken = 0, moved = 0;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Waiter* w = *it;
    if (w->mm != mm || w->addr != from.value()) {
      ++it;
      continue;
    }
    if (w->requeue_pi != nullptr) return -EINVAL;  // futex_requeue() without requeue_pi
    if (woken < wake) {
      w->woken = true;
      w->task->Notify();
      it = waiters_.erase(it);
      ++woken;
    } else if (moved < requeue) {
      w->addr = to.value();
      if (to_space) w->mm = to_space;
      ++moved;
      ++it;
    } else {
      break;
    }
  }
  return woken + moved;
}

}  // namespace seedvisor::sentry
