// The memory budget of the seed tree (seedd --seed-memory): a thread of its
// own sums the PSS of every seed on the node (L1, L2, replicas; FRI Stats,
// from smaps_rollup) every `period`, and when the sum is over the budget it
// evicts the least recently used L2 seed (RuntimeSeeds::Evict; one per
// period, so that the next sum sees its pages gone): its function is then
// served from L1 and promoted again on demand.
// L1 seeds count but are never evicted. The sum, not each seed's share, is
// what is compared: a fork's pages are not always charged to the fork's own
// host processes (fri/host_memory.h), but every page is in the sum once.
//
//   SeedBudget budget(sandboxes, {&python, &node}, {.budget = 512 << 20});
//   budget.Start();
//   ...
//   budget.Stop();
#ifndef SEEDVISOR_SEEDD_SEED_BUDGET_H_
#define SEEDVISOR_SEEDD_SEED_BUDGET_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fri/sandboxes.h"
#include "seedd/runtime_seeds.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::seedd {

// The order to evict in: indices of `last_used`, least recently used first.
std::vector<size_t> EvictionOrder(const std::vector<absl::Duration>& last_used);

struct SeedBudgetOptions {
  int64_t budget = 0;  // bytes of PSS over every seed; 0 = no budget
  absl::Duration period = absl::Seconds(1);
};

struct SeedBudgetStats {
  int64_t seeds_pss_bytes = 0;  // at the last check, before its eviction
  uint64_t evictions = 0;
};

class SeedBudget {
 public:
  SeedBudget(fri::Sandboxes& sandboxes, std::vector<RuntimeSeeds*> runtimes, SeedBudgetOptions o)
      : sb_(sandboxes), runtimes_(std::move(runtimes)), opts_(o) {}
  ~SeedBudget() { Stop(); }

  void Start();  // no thread when there is no budget
  // One check now: measure, evict one L2 seed if over the budget.
  void Check();
  // The PSS of every seed (paused sandbox) on the node.
  int64_t SeedsPss();
  SeedBudgetStats Stats() const;
  void Stop();

 private:
  fri::Sandboxes& sb_;
  const std::vector<RuntimeSeeds*> runtimes_;
  const SeedBudgetOptions opts_;
  mutable absl::Mutex mu_;
  sentry::MonoCondVar stop_cv_;  // signalled by Stop
  SeedBudgetStats stats_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_SEED_BUDGET_H_
