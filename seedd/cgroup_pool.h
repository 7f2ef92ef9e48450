// A pool of cgroups (v1: memory, pids, cpu) for instances, so that nothing
// on the invoke path creates one (DESIGN.md, "Early destroy and pools").
// They live under a parent seedd owns, /sys/fs/cgroup/<controller>/<parent>/
// c<N>, each with the instance memory limit set; an instance's sandbox joins
// one at Fork (FRI ForkRequest.cgroup) and gives it back on destroy. The
// pool is filled serially at start; a thread of its own refills it and
// recycles given-back cgroups (once their processes are gone) off the
// request path. With warm_linger it keeps the kernel's cgroup migrations
// fast while cgroups are taken (seedd/migration_warmth.h; seedd prefers
// favordynmods, seedd/cgroup_favor.h): an instance joining its cgroup could
// otherwise wait for an RCU grace period now and then (5-25 ms).
//
//   CgroupPool pool({.parent = "seedd-1234", .size = 8, .memory_limit = 256 << 20});
//   RETURN_IF_ERROR(pool.RemoveLeftovers());   // an earlier run's, at start
//   RETURN_IF_ERROR(pool.Fill());
//   std::string cg = pool.Take();              // "seedd-1234/c3"
//   ... fork with cgroup=cg, run, destroy ...
//   pool.Give(cg);
#ifndef SEEDVISOR_SEEDD_CGROUP_POOL_H_
#define SEEDVISOR_SEEDD_CGROUP_POOL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "seedd/migration_warmth.h"
#include "seedd/runtime_seeds.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::seedd {

struct CgroupPoolOptions {
  std::string parent;  // relative to each controller's mount, e.g. "seedd-<hash>"
  int size = 8;  // free cgroups the pool keeps ready (it keeps up to twice that given back)
  int64_t memory_limit = 0;  // memory.limit_in_bytes of each; 0 = none
  int64_t pids_max = 0;      // pids.max of each; 0 = none
  std::string mount = "/sys/fs/cgroup";
  std::vector<std::string> controllers = {"memory", "pids", "cpu"};
  // MigrationWarmth's linger: how long after a Take migrations are kept
  // fast (0 = not at all). Without favordynmods, every call arriving later
  // than this after the last one may wait a grace period (5-25 ms here) to
  // join its cgroup.
  absl::Duration warm_linger = absl::ZeroDuration();
};

struct CgroupPoolStats {
  int free = 0;       // ready to take
  int in_use = 0;     // taken, not given back yet
  int draining = 0;   // given back, waiting for their processes to be gone
  uint64_t created = 0, recycled = 0, misses = 0;  // misses: Take found none ready
  uint64_t warm_writes = 0;  // MigrationWarmth's migrations of its own thread
};

class CgroupPool : public InstanceCgroups {
 public:
  // The host thread that makes and empties the pool's cgroups off the request path.
  static constexpr const char* kRefillThreadName = "seedd-cgrefill";
  explicit CgroupPool(CgroupPoolOptions o);
  ~CgroupPool() override;  // Stop(), then removes every cgroup of the pool

  // Kills the processes left in <parent>'s cgroups by an earlier run and
  // removes them; returns how many cgroups there were.
  absl::StatusOr<int> RemoveLeftovers();
  // Makes <parent> and `size` cgroups, one after the other, then starts the
  // refill thread (and the migration warmth: if it cannot start, stderr
  // says why and the pool works without). An error names the controller
  // and file.
  absl::Status Fill();
  // A free cgroup, or one made now when none is (counted as a miss); ""
  // when one cannot be made (the instance then runs in its seed's cgroup).
  std::string Take() override;
  void Give(const std::string& cgroup) override;
  // The memory limit hit by what ran in `cgroup` since it was taken: the
  // kernel's OOM kills there (memory.oom_control's oom_kill, counted from
  // the take) or, with none, the times usage hit the limit
  // (memory.failcnt, zeroed on recycle); "" when neither.
  std::string LimitHit(const std::string& cgroup) override;
  CgroupPoolStats Stats() const;
  // The host pids in `cgroup` (its memory controller's cgroup.procs).
  std::vector<int> Pids(const std::string& cgroup) const;
  void Stop();
  const std::string& parent() const { return opts_.parent; }

 private:
  absl::StatusOr<std::string> Make() ABSL_LOCKS_EXCLUDED(mu_);
  bool Empty(const std::string& cgroup) const;
  void Reset(const std::string& cgroup);
  uint64_t OomKills(const std::string& cgroup) const;
  void Refill();
  std::string Dir(const std::string& controller, const std::string& cgroup) const;

  const CgroupPoolOptions opts_;
  mutable absl::Mutex mu_;
  std::deque<std::string> free_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> draining_ ABSL_GUARDED_BY(mu_);  // not yet looked at by Refill
  int draining_count_ ABSL_GUARDED_BY(mu_) = 0;  // given back, not yet free or removed
  std::vector<std::string> all_ ABSL_GUARDED_BY(mu_);
  // memory.oom_control's oom_kill of each cgroup when it was last made free
  // (the kernel never zeroes it).
  std::map<std::string, uint64_t> oom_kills_at_free_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t recycled_ ABSL_GUARDED_BY(mu_) = 0, misses_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool work_ ABSL_GUARDED_BY(mu_) = false;
  sentry::MonoCondVar work_cv_;  // signalled with work_ or stopping_
  std::thread refill_;
  MigrationWarmth warmth_;
  bool warm_ = false;  // warmth_ started (set before any Take)
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_CGROUP_POOL_H_
