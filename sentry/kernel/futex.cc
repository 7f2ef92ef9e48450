#include "sentry/kernel/futex.h"

#include <linux/futex.h>
#include <sys/mman.h>

#include <vector>

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

void FutexTable::Enqueue(Waiter* w) {
  Queue& q = queues_[PiKey{w->mm, w->addr}];
  w->pos = q.insert(q.end(), w);
}

void FutexTable::Dequeue(Waiter* w) {
  auto it = queues_.find(PiKey{w->mm, w->addr});
  it->second.erase(w->pos);
  if (it->second.empty()) queues_.erase(it);
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
    Enqueue(&w);
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
  Dequeue(&w);
  return result;
}

Result<int> FutexTable::WaitMultiple(Task& t, std::span<const WaitvEntry> entries,
                                     const timespec* deadline) {
  std::vector<Waiter> ws;
  ws.reserve(entries.size());
  for (const WaitvEntry& e : entries) {
    ws.push_back(Waiter{e.key.space, e.key.addr, FUTEX_BITSET_MATCH_ANY, &t});
  }
  // futex_wait_multiple_setup(): each word in order is read and, if it
  // holds its value, queued; the first that faults or differs undoes the
  // rest. Under mu_ throughout, no wake can come in between.
  {
    absl::MutexLock l(&mu_);
    for (size_t i = 0; i < entries.size(); ++i) {
      uint32_t cur;
      Status s = t.CopyInObj(entries[i].addr, &cur);
      if (!s.ok() || cur != entries[i].val) {
        for (size_t j = 0; j < i; ++j) Dequeue(&ws[j]);
        return s.ok() ? Errno(EAGAIN) : s.error();
      }
      Enqueue(&ws[i]);
    }
  }
  // futex_unqueue_multiple(): the highest woken index, or -1.
  auto last_woken = [&ws] {  // under mu_
    int woken = -1;
    for (size_t i = 0; i < ws.size(); ++i) {
      if (ws[i].woken) woken = static_cast<int>(i);
    }
    return woken;
  };
  Status result;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (last_woken() >= 0) break;
    }
    Status s = t.Block(deadline);
    if (!s.ok()) {
      result = s.error().value() == ETIMEDOUT ? Status(Errno(ETIMEDOUT)) : s;
      break;
    }
  }
  absl::MutexLock l(&mu_);
  const int woken = last_woken();  // a wake that raced a signal still counts
  for (Waiter& w : ws) {
    if (!w.woken) Dequeue(&w);
  }
  if (woken >= 0) return woken;
  return result.error();
}

int FutexTable::Wake(const void* mm, UserAddr addr, int n, uint32_t bitset) {
  absl::MutexLock l(&mu_);
  auto qit = queues_.find(PiKey{mm, addr.value()});
  if (qit == queues_.end()) return 0;
  Queue& q = qit->second;
  int woken = 0;
  for (auto it = q.begin(); it != q.end();) {
    Waiter* w = *it;
    if (!(w->bitset & bitset)) {
      ++it;
      continue;
    }
    if (w->requeue_pi != nullptr) {  // futex_wake(): an rt_waiter
      woken = -EINVAL;
      break;
    }
    w->woken = true;
    w->task->Notify();
    it = q.erase(it);
    if (++woken >= n) break;  // futex_wake(): a count <= 0 wakes one
  }
  if (q.empty()) queues_.erase(qit);
  return woken;
}

int FutexTable::Requeue(const void* mm, UserAddr from, UserAddr to, int wake, int requeue,
                        const void* to_space) {
  absl::MutexLock l(&mu_);
  const PiKey from_key{mm, from.value()}, to_key{to_space ? to_space : mm, to.value()};
  auto qit = queues_.find(from_key);
  if (qit == queues_.end()) return 0;
  Queue& q = qit->second;
  // futex_requeue() on one word moves nothing, but counts the moves.
  Queue* dest = to_key == from_key ? nullptr : &queues_[to_key];
  int woken = 0, moved = 0, err = 0;
  for (auto it = q.begin(); it != q.end();) {
    Waiter* w = *it;
    if (w->requeue_pi != nullptr) {  // futex_requeue() without requeue_pi
      err = -EINVAL;
      break;
    }
    if (woken < wake) {
      w->woken = true;
      w->task->Notify();
      it = q.erase(it);
      ++woken;
    } else if (moved < requeue) {
      ++it;
      if (dest != nullptr) {
        dest->splice(dest->end(), q, w->pos);  // w->pos stays valid, now in *dest
        w->mm = to_key.first;
        w->addr = to_key.second;
      }
      ++moved;
    } else {
      break;
    }
  }
  if (q.empty()) queues_.erase(qit);
  if (dest != nullptr && dest->empty()) queues_.erase(to_key);
  return err != 0 ? err : woken + moved;
}

}  // namespace seedvisor::sentry
