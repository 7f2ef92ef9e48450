#include "platform/stub/slot_registry.h"

namespace seedvisor::platform::stub {

int SlotRegistry::Alloc() {
  absl::MutexLock l(&mu_);
  const int i = used_.LowestClear(first_);
  if (i >= limit_) return -1;
  used_.Set(i);
  return i;
}

void SlotRegistry::Free(int slot) {
  absl::MutexLock l(&mu_);
  used_.Clear(slot);
}

void SlotRegistry::Reserve(pid_t tid, int slot) {
  absl::MutexLock l(&mu_);
  reserved_[tid] = slot;
}

int SlotRegistry::Take(pid_t tid) {
  absl::MutexLock l(&mu_);
  auto it = reserved_.find(tid);
  if (it == reserved_.end()) return -1;
  const int slot = it->second;
  reserved_.erase(it);
  return slot;
}

}  // namespace seedvisor::platform::stub
