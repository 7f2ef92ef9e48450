// Keeps the kernel's cgroup migrations fast while instances join cgroups.
//
// Every instance's sentry moves its host processes into the instance's
// pooled cgroup (a write to cgroup.procs) before it reports. A migration
// write-locks the kernel's global cgroup_threadgroup_rwsem, a percpu rwsem:
// since Linux 6.0 (commit 6a010a49b63a) it goes back to its fast reader mode
// one RCU grace period after its last writer unless the hierarchy is mounted
// with favordynmods (or CONFIG_CGROUP_FAVOR_DYNMODS), and the next writer
// then waits for a whole grace period (rcu_sync_enter -> synchronize_rcu)
// holding cgroup_mutex: 5-13 ms on our 2-core VM (HZ=250), where a
// migration within a grace period of the last one takes 0.1 ms. At one call
// every few ms some calls found it idle: seedd's L2 fork p99 was 14.5 ms.
//
// So while calls come (`linger` after the last Touch), a thread of seedd
// moves itself into the cgroup it is already in (its own tid into the
// `tasks` file of its memory cgroup: a migration that changes nothing but
// takes the lock) every `period`, and the rwsem stays in writer-friendly
// mode, as favordynmods would keep it. An idle seedd writes nothing; the
// first call after a pause may still wait for one grace period. seedd uses
// favordynmods itself where the kernel has it (seedd/cgroup_favor.h); this
// is the fallback, off unless asked for (--cgroup-warm). The thread is
// named kThreadName (/proc/PID/task/TID/comm: its CPU can be read there).
//
//   MigrationWarmth warm({});
//   if (absl::Status s = warm.Start(); !s.ok()) ...   // no writable tasks file
//   warm.Touch();          // on every cgroup Take: a migration is coming
#ifndef SEEDVISOR_SEEDD_MIGRATION_WARMTH_H_
#define SEEDVISOR_SEEDD_MIGRATION_WARMTH_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::seedd {

struct MigrationWarmthOptions {
  // Below the grace period's length (over 10 ms here, idle or loaded).
  absl::Duration period = absl::Milliseconds(4);
  // Writes go on this long after a Touch: 250 writes a second then, each
  // ~20 µs of CPU (0.5 % of a CPU), and every fork and exit on the host
  // takes the rwsem's slower reader path meanwhile.
  absl::Duration linger = absl::Seconds(30);
  std::string mount = "/sys/fs/cgroup";      // the v1 hierarchies' parent
};

class MigrationWarmth {
 public:
  static constexpr char kThreadName[] = "seedd-warm";

  explicit MigrationWarmth(MigrationWarmthOptions o);
  ~MigrationWarmth();  // Stop()
  MigrationWarmth(const MigrationWarmth&) = delete;
  MigrationWarmth& operator=(const MigrationWarmth&) = delete;

  // Starts the thread, which opens the `tasks` file of its own memory
  // cgroup; an error (no v1 memory hierarchy, not writable) says which file.
  absl::Status Start();
  // A cgroup migration is coming: keep the lock warm for `linger`.
  void Touch() ABSL_LOCKS_EXCLUDED(mu_);
  // The migrations written so far (tests, metrics).
  uint64_t writes() const ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop(int fd);

  const MigrationWarmthOptions opts_;
  mutable absl::Mutex mu_;
  sentry::MonoCondVar stop_cv_;  // signalled by Stop
  absl::Duration touched_ ABSL_GUARDED_BY(mu_) = -absl::InfiniteDuration();  // MonotonicNow()
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_MIGRATION_WARMTH_H_
