// One language runtime's branch of the seed tree (python, node) and the
// invoke path that forks from it.
//
//   L1 "RUNTIME-l1": the interpreter running the runtime's entry program
//      (runtimes/python, runtimes/node), its common modules loaded, paused
//      while blocked reading its channel. Booted at start (FRI Create +
//      Pause), and booted again as "RUNTIME-l1-gN" when a Fork of it timed
//      out (a stuck seed): calls wait for the new one, the old is destroyed.
//   L2 "RUNTIME-l2-NAME-vN": L1 forked, function NAME's code loaded, then
//      paused again (Promote; seedd promotes a function after its
//      --promote-after'th call, off the request path).
//
// A call forks an instance from the deepest seed holding the function (L2,
// else L1 with the code in the request, else the node's level-0 seed with
// the runtime started in the fork), with the request already in its stdin
// pipe, reads the reply frame, and destroys the instance at once. Level 0
// serves when this runtime has no L1 that can fork: it failed to boot, its
// Fork failed (it is being replaced), or it is stuck; a promotion then makes
// the L2 seed from level 0 too. A missing seed is never the call's error.
//
// Replicas: a seed forks one instance at a time, so concurrent calls of one
// function queue behind each other (AFaaS's bottleneck). When a call finds
// every copy of its seed already forking, a replica "SEED-rN" is made off the
// request path (FRI Fork with paused = true: a child seed with the same
// memory, shared copy-on-write), up to `max_replicas` copies in all; each
// call forks from the copy with the fewest forks in flight. As many replicas
// as calls queued are made at once (forks of one seed overlap), up to the
// host's CPUs at a time. A replica unused for `replica_idle` is destroyed.
//
//   RuntimeSeeds py(sandboxes, PythonRuntime("/usr/bin/python3", log_path));
//   RETURN_IF_ERROR(py.BootL1());
//   CallResult r = py.Call(fn, "{\"x\": 1}", absl::Seconds(30));
#ifndef SEEDVISOR_SEEDD_RUNTIME_SEEDS_H_
#define SEEDVISOR_SEEDD_RUNTIME_SEEDS_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fri/sandboxes.h"
#include "seedd/channel.h"
#include "seedd/functions.h"
#include "seedd/veth_pool.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::seedd {

struct RuntimeOptions {
  std::string runtime;            // "python": names seeds and instances
  std::vector<std::string> args;  // the L1's command line (interpreter, its entry program)
  std::vector<std::string> env;
  std::string log_path;  // the sandboxes' stderr (must exist)
  std::string base_id;   // the booted seed's id; "" = RUNTIME-l1
  int level = 1;         // the booted seed's level (label "level")
};

// python3 -c runtimes/python/seedvisor_entry.py; node -e runtimes/node/seedvisor_entry.js.
RuntimeOptions PythonRuntime(const std::string& python, const std::string& log_path);
RuntimeOptions NodeRuntime(const std::string& node, const std::string& log_path);
// The level-0 seed: `seedd l0-init` (seedd/l0_init.h) over the host root, no
// runtime yet. Its RuntimeSeeds is only booted and forked from: a runtime
// told to StartFromL0 forks it and starts its interpreter in the fork.
RuntimeOptions L0Runtime(const std::string& seedd, const std::string& log_path);

// Hands each instance a cgroup to run in ("" = the seed's) and takes it back
// when the instance is gone (seedd/cgroup_pool.h).
class InstanceCgroups {
 public:
  virtual ~InstanceCgroups() = default;
  virtual std::string Take() = 0;
  virtual void Give(const std::string& cgroup) = 0;
  // Why the instance that ran in `cgroup` (taken, not yet given back) failed,
  // when the cgroup saw it: e.g. "the function exceeded its memory limit of
  // 256 MiB (...)"; "" when it has nothing to say.
  virtual std::string LimitHit(const std::string& /*cgroup*/) { return ""; }
};

struct ReplicaOptions {
  int max_replicas = 4;  // copies of one seed, itself included; 1 = no replicas
  absl::Duration replica_idle = absl::Seconds(30);  // a replica unused this long goes
};

// Per seed: how many copies it has and what its forks waited for.
struct SeedLoad {
  std::string seed;           // the original's id
  int copies = 1;             // itself and its replicas
  int forking = 0;            // forks in flight now, over all copies
  uint64_t queued_forks = 0;  // forks that found every copy busy
  uint64_t replicas_made = 0, replicas_dropped = 0;
};

// An L2 seed as the memory budget sees it (seedd/seed_budget.h).
struct L2Usage {
  std::string function;
  std::string seed;              // the original's id
  std::vector<std::string> ids;  // every copy's sandbox id (replicas first)
  absl::Duration last_used;      // its last fork, from any copy (or its making): MonotonicNow()
};

struct CallResult {
  // DeadlineExceeded, Unavailable (instance died), ResourceExhausted (its
  // cgroup's memory limit was hit; the message says so), or the fork's error.
  absl::Status status;
  std::string reply;    // the runtime's reply frame (JSON) when status is ok
  std::string seed;     // the seed the instance was forked from
  int level = -1;       // that seed's level: 0, 1 or 2 (-1: no fork)
  bool forked = false;  // false: no instance was made (status says why)
  // queue, fork, setup (a part of fork: the sandbox's setup in the seed's
  // child, its cgroup join among it), start (a level-0 fork: the runtime's
  // start), run, destroy
  std::vector<std::pair<std::string, absl::Duration>> phases;
};

class RuntimeSeeds {
 public:
  // cgroups may be null (instances run in their seed's cgroup).
  RuntimeSeeds(fri::Sandboxes& sandboxes, RuntimeOptions o, InstanceCgroups* cgroups = nullptr,
               ReplicaOptions ro = {});
  ~RuntimeSeeds();  // Stop()

  // Boots and pauses the L1 seed; progress on stderr.
  absl::Status BootL1();
  // Every call forks `l0` (booted, never called itself) and starts this
  // runtime in the fork, instead of forking an L1 or L2 seed (seedd
  // --max-level=0). Call before the first Call; BootL1 is not needed.
  void StartFromL0(RuntimeSeeds* l0) {
    l0_ = l0;
    always_l0_ = true;
  }
  // Every instance (not seeds or replicas) gets a network device of its
  // own from `pool` (seedd --network=sandbox): its packet socket sent to
  // the seed with the Fork request itself (FRI ForkRequest.net_device),
  // the device given back, and so destroyed, once the instance is. A pool
  // miss: the instance has loopback only. The seeds must run the sandbox's
  // own stack (seedsc --network=sandbox, the default). Call before the
  // first Call.
  void UseNetwork(VethPool* pool) { net_ = pool; }
  // `l0` serves (calls and promotions) whenever no L1 seed can: call before
  // BootL1, which may then fail without leaving the runtime unserved.
  void FallBackToL0(RuntimeSeeds* l0);
  CallResult Call(const Function& fn, const std::string& event_json, absl::Duration timeout);
  // Starts making fn's L2 seed on a thread of its own (once per version).
  void PromoteAsync(std::shared_ptr<const Function> fn);
  // Forgets (and destroys) the L2 seeds of `name` older than `version`.
  void DropOldL2(const std::string& name, uint64_t version);
  // seed id -> (function, version) of every L2 seed, plus the L1's id.
  std::map<std::string, std::pair<std::string, uint64_t>> L2Seeds();
  std::vector<SeedLoad> Loads();
  std::vector<L2Usage> L2Usages();
  // Destroys function's L2 seed and its replicas if `seed` is still it; the
  // next calls fork from L1 (and promote it again on demand).
  bool Evict(const std::string& function, const std::string& seed);
  std::string l1_id() ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& runtime() const { return opts_.runtime; }
  // Waits for promotions in flight; no new ones start.
  void Stop();

 private:
  // One copy of a seed: the original or a replica.
  struct Copy {
    std::string id;
    std::unique_ptr<Channel> channel;  // the copy's own, kept open while it lives
    int forking = 0;                   // forks from it in flight
    absl::Duration last_used;  // MonotonicNow()
    // Its last Fork failed: calls fork from another copy while there is one.
    bool unhealthy = false;
  };
  struct Seed {
    uint64_t version = 0;
    std::vector<std::shared_ptr<Copy>> copies;  // [0] is the original
    int want_replicas = 0;  // calls that found every copy busy (at most what fits)
    int replicating = 0;    // replicas being made
    uint64_t next_replica = 1, queued = 0, made = 0, dropped = 0;
    const std::string& id() const { return copies[0]->id; }
  };
  // Between a booted runtime's reply and Pause, so that the pause finds it
  // blocked reading its channel (a pause elsewhere is correct too, only
  // slower to fork).
  static constexpr absl::Duration kSettle = absl::Milliseconds(30);
  void Promote(std::shared_ptr<const Function> fn);
  // The stdio of a sandbox on `ch`, stderr to `log`.
  static fri::v1::Stdio StdioFor(const Channel& ch, const std::string& log);
  // A call (begun at t0) served by forking the level-0 seed and starting
  // this runtime in the fork.
  CallResult CallFromL0(const Function& fn, const std::string& event_json, absl::Duration timeout,
                        absl::Duration t0);
  // Whether a call should skip L1 for level 0: there is a level-0 seed and
  // no L1 copy that is healthy.
  bool UseL0() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forks the L2 seed `id` of `fn` with its code loaded, from L1 or (no
  // healthy L1, or its Fork failed) from level 0; its channel on success.
  absl::StatusOr<Channel> ForkL2(const Function& fn, const std::string& id);
  absl::StatusOr<Channel> ForkL2From(const Function& fn, const std::string& id, bool from_l0);
  // After the Fork into instance `id` (t0: the call's start): the phases,
  // the rest of the request frame, the reply, the instance destroyed and
  // its cgroup given back. `starts_runtime`: a level-0 fork, whose runtime
  // answers a ready frame first.
  void Serve(CallResult& r, const absl::StatusOr<fri::v1::ForkResponse>& forked, absl::Duration t0, Channel& ch,
             const std::string& id, absl::string_view unsent, const std::string& cgroup, Deadline deadline,
             bool starts_runtime);
  // sb_.Fork(fr), with `dev` (may be null) as the new sandbox's network
  // device.
  absl::StatusOr<fri::v1::ForkResponse> ForkInstance(fri::v1::ForkRequest& fr,
                                                     const VethPool::Device* dev);
  // Boots and pauses a level-1 seed `id`; its copy on success.
  absl::StatusOr<std::shared_ptr<Copy>> BootSeed(const std::string& id);
  // On the maintenance thread: a new L1 seed replaces the stuck original.
  void RebootL1();
  std::string RequestJson(const Function& fn, bool with_files, const std::string& event_json,
                          absl::Duration timeout, bool load_only);
  // The copy of `seed` to fork from (its forking count taken); starts a
  // replica when every copy is busy. Healthy copies first; with `exclude`
  // (a retry), never that one and never an unhealthy one: null if none is
  // left.
  std::shared_ptr<Copy> Pick(Seed& seed, const std::string& exclude = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A Fork of `copy` (of `function`'s L2 seed, or of L1 for "") failed:
  // a replica is dropped and destroyed; an L2 seed whose Fork timed out is
  // evicted (its function forks from L1 until it is promoted again); the
  // L1 seed is marked unhealthy, and booted again if its Fork timed out.
  // Says so on stderr.
  void ForkFailed(const std::shared_ptr<Copy>& copy, const std::string& function,
                  const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);
  void StartMaintenance();
  void Release(const std::shared_ptr<Copy>& c) ABSL_LOCKS_EXCLUDED(mu_);
  void MakeReplica(std::string function, std::string original, std::string id);
  Seed* Find(const std::string& function) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // "" = L1
  void DropIdle();  // the maintenance thread's loop
  static std::vector<std::string> Ids(const Seed& s);

  fri::Sandboxes& sb_;
  const RuntimeOptions opts_;
  const std::string base_id_;  // the first booted seed's id
  InstanceCgroups* const cgroups_;
  RuntimeSeeds* l0_ = nullptr;  // StartFromL0, FallBackToL0
  bool always_l0_ = false;      // StartFromL0
  VethPool* net_ = nullptr;     // UseNetwork
  std::atomic<uint64_t> next_instance_{1};
  const ReplicaOptions ropts_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Seed l1_ ABSL_GUARDED_BY(mu_);
  std::string l1_id_ ABSL_GUARDED_BY(mu_);  // l1_'s original
  int l1_generation_ ABSL_GUARDED_BY(mu_) = 1;
  bool l1_reboot_ ABSL_GUARDED_BY(mu_) = false;  // wanted or under way
  std::map<std::string, Seed> l2_ ABSL_GUARDED_BY(mu_);  // by function name
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // replicas wanted
  // Signalled when wake_ is set, l1_reboot_ cleared or stopping_ set: its
  // waits end on the monotonic clock (mono_condvar.h, issue 10).
  sentry::MonoCondVar changed_;
  std::thread maintenance_;  // makes wanted replicas and drops idle ones, one at a time
  std::map<std::string, uint64_t> promoting_ ABSL_GUARDED_BY(mu_);  // name -> version
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// The runtimes' entry programs (runtimes/*/seedvisor_entry.*, embedded).
extern const char kPythonEntrySource[];
extern const char kNodeEntrySource[];

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_RUNTIME_SEEDS_H_
