// SeedForkSpares: the host processes a seed's next sandbox forks will need,
// made ahead in the seed (quiesced) so that a fork itself only adopts them
// (sentry/sfork, "spares"). Both stub platforms keep a set of them per
// spare, named by the process group the spare's fork will use (its anchor's
// pid, `pgid`):
//
//   - a zygote for the forked sandbox, forked from the seed's zygote and
//     already in the fork's process group;
//   - per guest address space, a copy-on-write copy of the seed's stub
//     (parked, traced by nobody, in that group, with as many parked threads
//     as the address space has tasks; on systrap also with its own region).
//
// The host fork copies this object; the forked sentry Takes its own set and
// lets go of the others (closing its copies of their fds, killing nothing:
// they are the seed's, or a sibling fork's), and the seed then Finishes that
// set: lets go of what the fork took (closing only its own fds), or kills it.
// A set is valid only while the seed stays quiesced (the copies are of its
// memory at that time).
//
//   spares.AddCopy(pgid, &seed_as, copy, threads);    // in the seed
//   spares.AdoptInForkChild(pgid);                    // in the forked sentry
//   auto c = spares.TakeCopy(pgid, &seed_as);
//   spares.Finish(pgid, /*child_took_them=*/true);    // in the seed, after
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
  ~SeedForkSpares();  // kills every set
  SeedForkSpares(const SeedForkSpares&) = delete;
  SeedForkSpares& operator=(const SeedForkSpares&) = delete;

  // ---- In the seed ----
  // The zygote of set `pgid`: forked from `seed_zygote` (the caller
  // serializes injections into it), in process group `pgid`, looping.
  absl::Status MakeZygote(pid_t seed_zygote, uint64_t entry, pid_t pgid);
  // A copy of `seed_as` for set `pgid`; threads[0] is its initial thread.
  // Replaces an older copy of the same address space in that set (which
  // dies).
  void AddCopy(pid_t pgid, const AddressSpace* seed_as, std::shared_ptr<StubAddressSpace> copy,
               std::vector<pid_t> threads);
  // The host pid of set `pgid`'s copy of `seed_as`, or -1.
  pid_t CopyPid(pid_t pgid, const AddressSpace* seed_as);
  // After the host fork that used set `pgid`, or when the seed drops it: if
  // the fork took it, close our handles only; otherwise kill it. Either way
  // nothing of it is left here.
  void Finish(pid_t pgid, bool child_took_them);

  // ---- In the forked sentry (one thread: no lock is contended) ----
  // This object is the seed's copy: its lock starts over, and every set but
  // `pgid` is let go of (our copies of its fds closed; its processes belong
  // to the seed or to a sibling fork).
  void AdoptInForkChild(pid_t pgid);
  // The zygote of set `pgid`; an error if there is none.
  absl::StatusOr<pid_t> TakeZygote(pid_t pgid);
  // The copy of `seed_as` in set `pgid`, with its parked threads (initial
  // thread first).
  absl::StatusOr<ForkedAddressSpace> TakeCopy(pid_t pgid, const AddressSpace* seed_as);

 private:
  struct Copy {
    std::shared_ptr<StubAddressSpace> as;
    std::vector<pid_t> threads;
  };
  struct Set {
    pid_t zygote = -1;
    int zygote_pidfd = -1;
    std::map<const AddressSpace*, Copy> copies;
  };
  // Ends `set`: kills its processes, or (`let_go`) only closes our handles.
  static void End(Set& set, bool let_go);

  absl::Mutex mu_;
  std::map<pid_t, Set> sets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_SEED_FORK_SPARES_H_
