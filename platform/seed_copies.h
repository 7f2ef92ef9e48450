// SeedCopies: what a platform whose seed-fork spares keep each guest
// address space's copy in a host process, at the guest's own addresses,
// tells sentry/sfork: that process, whose pages the seed may then write
// ahead through process_vm_writev (sentry/sfork/dirty_pages.h). A platform
// that has no such process (kvm: guest memory behind memslots) does not
// implement it, or answers -1.
//
//   if (auto* c = dynamic_cast<platform::SeedCopies*>(&k.platform())) {
//     pid_t pid = c->SeedCopyProcess(*seed_as, anchor);  // -1: none
//   }
#ifndef SEEDVISOR_PLATFORM_SEED_COPIES_H_
#define SEEDVISOR_PLATFORM_SEED_COPIES_H_

#include <sys/types.h>

namespace seedvisor::platform {

class AddressSpace;

class SeedCopies {
 public:
  virtual ~SeedCopies() = default;
  // The host process of spare `pgid`'s copy of `seed_as` (Platform::
  // PrepareSeedFork), or -1.
  virtual pid_t SeedCopyProcess(const AddressSpace& seed_as, pid_t pgid) = 0;
};

}  // namespace seedvisor::platform

#endif  // SEEDVISOR_PLATFORM_SEED_COPIES_H_
