// SeedForkSpares: the host processes a seed's next sandbox fork will need,
// made ahead in the seed (quiesced) so that the fork itself only adopts
// them (sentry/sfork, "spares"). Both stub platforms keep one:
//
//   - a zygote for the forked sandbox, forked from the seed's zygote and
//     already in the fork's process group (its anchor's);
//   - per guest address space, a copy-on-write copy of the seed's stub
//     (parked, traced by nobody, in that group, with as many parked threads
//     as the address space has tasks; on systrap also with its own region).
//
// The host fork copies this object; the forked sentry Takes what it needs,
// and the seed then Finishes: lets go of what the fork took (closing only its
// own fds), kills the rest. Made again for every fork; valid only while the
// seed stays quiesced (the copies are of its memory at that time).
//
//   spares.AddCopy(&seed_as, copy, threads);        // in the seed
//   auto c = spares.TakeCopy(&seed_as);              // in the forked sentry
//   spares.Finish(/*child_took_them=*/true);         // in the seed, after
#ifndef SEEDVISOR_PLATFORM_STUB_SEED_FORK_SPARES_H_
#define SEEDVISOR_PLATFORM_STUB_SEED_FORK_SPARES_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "platform/stub/stub_address_space.h"

namespace seedvisor::platform::stub {

class SeedForkSpares {
 public:
  SeedForkSpares() = default;
  ~SeedForkSpares() { Finish(false); }
  SeedForkSpares(const SeedForkSpares&) = delete;
  SeedForkSpares& operator=(const SeedForkSpares&) = delete;

  // ---- In the seed ----
  // A zygote for the next fork: forked from `seed_zygote` (the caller
  // serializes injections into it), in process group `pgid`, looping.
  absl::Status MakeZygote(pid_t seed_zygote, uint64_t entry, pid_t pgid);
  // A copy of `seed_as`; threads[0] is its initial thread. Replaces an older
  // copy of the same address space (which dies).
  void AddCopy(const AddressSpace* seed_as, std::shared_ptr<StubAddressSpace> copy,
               std::vector<pid_t> threads);
  // After the host fork: if the fork took them, close our handles only;
  // otherwise kill every spare. Either way nothing is left here.
  void Finish(bool child_took_them);

  // ---- In the forked sentry (one thread: no lock is contended) ----
  // This object is the seed's copy: its lock starts over.
  void ReinitInForkChild();
  // The zygote MakeZygote made; an error if there is none.
  absl::StatusOr<pid_t> TakeZygote();
  // The copy of `seed_as`, with its parked threads (initial thread first).
  absl::StatusOr<ForkedAddressSpace> TakeCopy(const AddressSpace* seed_as);

 private:
  struct Copy {
    std::shared_ptr<StubAddressSpace> as;
    std::vector<pid_t> threads;
  };
  absl::Mutex mu_;
  pid_t zygote_ ABSL_GUARDED_BY(mu_) = -1;
  int zygote_pidfd_ ABSL_GUARDED_BY(mu_) = -1;
  std::map<const AddressSpace*, Copy> copies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_SEED_FORK_SPARES_H_
