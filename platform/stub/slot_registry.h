// SlotRegistry: which per-thread slots of a stub platform's shared region
// are in use, and which slot a stub thread being made has reserved.
// systrap and kvm keep one per address space.
#ifndef SEEDVISOR_PLATFORM_STUB_SLOT_REGISTRY_H_
#define SEEDVISOR_PLATFORM_STUB_SLOT_REGISTRY_H_

#include <sys/types.h>

#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/id_bitmap.h"

namespace seedvisor::platform::stub {

class SlotRegistry {
 public:
  // Slots [first, limit) are handed out; those below `first` are the
  // platform's own (systrap's setup area in slot 0).
  SlotRegistry(int first, int limit) : first_(first), limit_(limit) {}

  // A free slot, or -1 when all of them are taken.
  int Alloc();
  void Free(int slot);

  // A slot NewThread() took for stub thread `tid` before making it, so that
  // a full region fails clone() rather than the new task. Take returns it
  // once (-1 if there is none: allocate one then).
  void Reserve(pid_t tid, int slot);
  int Take(pid_t tid);

 private:
  const int first_;
  const int limit_;
  absl::Mutex mu_;
  IdBitmap used_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<pid_t, int> reserved_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_SLOT_REGISTRY_H_
