// ControlServer: the sandbox side of control.proto. One per sandbox (one
// `seedsc boot` process); it holds the sandbox's containers by id: the
// first (the one the sandbox was booted for; a pod's pause container) and
// those CreateContainer adds (a pod's application containers, each with its
// own root in the sentry's VFS and its processes tagged with its id). Each
// has its init, prepared at create time and started by Start, and the
// processes that Exec adds.
//
//   ContainerConfig cfg{.id = "c1", .init = spec_from_config_json};
//   ControlServer control(*kernel, cfg);
//   ttrpc::Server server;
//   control.Register(server);
//   server.Listen(socket_path); ... a thread that runs server.Serve() ...
//   control.WaitShutdown();   // a Shutdown call arrived
#ifndef SEEDVISOR_SENTRY_CONTROL_SERVER_H_
#define SEEDVISOR_SENTRY_CONTROL_SERVER_H_

#include <sys/types.h>

#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/control/control.pb.h"
#include "sentry/control/fork_watch.h"
#include "sentry/control/host_anchor.h"
#include "sentry/kernel/host_thread.h"
#include "sentry/kernel/kernel.h"
#include "sentry/sfork/sfork.h"
#include "shim/ttrpc/server.h"

namespace seedvisor::control {

inline constexpr const char kService[] = "seedvisor.control.v1.Control";

// How long Shutdown waits for the sandbox's host processes to exit
// (sentry::EndHostProcesses) before it answers anyway; its callers wait
// longer than that for the answer.
inline constexpr absl::Duration kEndHostProcessesTimeout = absl::Seconds(10);

struct ContainerConfig {
  std::string id;
  sentry::ProcessSpec init;    // stdio fds here are the defaults for Start
  bool terminal = false;       // process.terminal: init gets a pty...
  std::string console_socket;  // ...whose master goes to this socket
  // Owner of init.stdio's fds (e.g. a pty slave made at create time): let
  // go once the init has its own copies, so the pty sees the init's exit.
  std::shared_ptr<void> init_stdio_owner;
  // How many forks' host processes a seed keeps ready (sentry/sfork's
  // spares): the annotation dev.seedvisor.fork-spares, 1 to 32.
  int fork_spares = kDefaultForkSpares;
  static constexpr int kDefaultForkSpares = 2;
  static constexpr int kMaxForkSpares = 32;
  // How many of those spares a seed makes into forks made ahead (its
  // sentry host-forked before the request, sentry/sfork's StartForkAhead):
  // the annotation dev.seedvisor.fork-ahead, 0 (none: every fork
  // host-forks the sentry on its path) to 32.
  int fork_ahead = kDefaultForkAhead;
  static constexpr int kDefaultForkAhead = 1;
};

// The OCI annotation that sets ContainerConfig::fork_spares, and its
// parser: a one-line error naming the annotation for anything but 1 to 32.
inline constexpr const char kForkSparesAnnotation[] = "dev.seedvisor.fork-spares";
absl::StatusOr<int> ParseForkSpares(const std::string& value);
inline constexpr const char kForkAheadAnnotation[] = "dev.seedvisor.fork-ahead";
absl::StatusOr<int> ParseForkAhead(const std::string& value);  // 0 to 32

class ControlServer {
 public:
  ControlServer(sentry::Kernel& kernel, ContainerConfig cfg);
  // Ends the spare loop and the fork watchdog and waits for them: they use
  // the server and its kernel (a sentry ends without it; tests make and
  // drop servers).
  ~ControlServer();

  void Register(ttrpc::Server& server);
  // Returns once Shutdown has been called (every guest task is killed).
  void WaitShutdown();

  // The handlers (public for tests).
  absl::StatusOr<v1::StartResponse> Start(const v1::StartRequest& req);
  absl::StatusOr<v1::ExecResponse> Exec(const v1::ExecRequest& req);
  absl::StatusOr<v1::SignalResponse> Signal(const v1::SignalRequest& req);
  absl::StatusOr<v1::WaitResponse> Wait(const v1::WaitRequest& req);
  absl::StatusOr<v1::StateResponse> State(const v1::StateRequest& req);
  absl::StatusOr<v1::ProcessesResponse> Processes(const v1::ProcessesRequest& req);
  absl::StatusOr<v1::StatsResponse> Stats(const v1::StatsRequest& req);
  absl::StatusOr<v1::UpdateResponse> Update(const v1::UpdateRequest& req);
  absl::StatusOr<v1::PauseResponse> Pause(const v1::PauseRequest& req);
  absl::StatusOr<v1::ResumeResponse> Resume(const v1::ResumeRequest& req);
  absl::StatusOr<v1::ShutdownResponse> Shutdown(const v1::ShutdownRequest& req);
  absl::StatusOr<v1::CreateContainerResponse> CreateContainer(
      const v1::CreateContainerRequest& req);
  absl::StatusOr<v1::DeleteContainerResponse> DeleteContainer(
      const v1::DeleteContainerRequest& req);
  // server_fork.cc: sandbox fork of a paused container (sentry/sfork).
  // `caller_timeout` (the ttrpc request's; zero = none): when the caller
  // gives up. The Fork answers before then, and forks nothing the caller
  // could no longer learn of (see server_fork.cc). `fds`: what came with
  // the request, the packet socket of req.net_device.
  absl::StatusOr<v1::ForkResponse> Fork(const v1::ForkRequest& req,
                                        absl::Duration caller_timeout = absl::ZeroDuration(),
                                        const ttrpc::RequestFds* fds = nullptr);

  // Test only: called with each of Shutdown's step names where Shutdown
  // holds no lock (a test forks there).
  void SetShutdownHookForTest(std::function<void(const char* step)> hook) {
    shutdown_hook_ = std::move(hook);
  }

 private:
  enum class Phase { kCreated, kRunning, kStopped };
  // One container of the sandbox. Its fields are guarded by mu_.
  struct Container {
    ContainerConfig cfg;  // cfg.init.container_id: its processes' tag ("" for the first)
    Phase phase = Phase::kCreated;
    bool starting = false;
    int init_wait_status = 0;
    int64_t init_exited_at_ns = 0;
    std::shared_ptr<sentry::ThreadGroup> init;
    // Every process Start/Exec made in it, by sandbox pid, with its exec id.
    std::map<int, std::shared_ptr<sentry::ThreadGroup>> procs;
    std::map<int, std::string> exec_ids;
    std::map<int, int64_t> exited_at_ns;
    std::shared_ptr<void> init_stdio_owner;
    // Its host thread (CreateContainerResponse.host_thread), for a
    // container outside the sandbox's pid namespace; null: none.
    std::shared_ptr<HostAnchor> anchor;
    // Its own host cgroups' path (CreateContainerRequest.cgroup; in a
    // fork, its ForkRequest.member_cgroups entry); "": the sandbox's.
    std::string host_cgroup;
  };
  // Starts a HostAnchor (its own thread) under host_fork_mu_; null if
  // the host gave none.
  std::shared_ptr<HostAnchor> StartAnchor();
  // Ends them (their threads have exited) under host_fork_mu_. The
  // caller holds none of fork_mu_, mu_ (taken before host_fork_mu_).
  void EndAnchors(std::vector<std::shared_ptr<HostAnchor>> anchors);
  // SIGKILLs `groups` so that no fork of a paused sandbox sees a task
  // die: there the killed tasks leave the park to die (sentry/kernel/
  // kernel_quiesce.cc), so the kill is sent under the fork lock with no
  // fork in flight, held until every task left is parked again (10 s at
  // most, else DeadlineExceeded); otherwise under mu_, so that no Pause
  // comes between. Nothing to kill: nothing waited for.
  absl::Status KillBesideForks(const std::vector<std::shared_ptr<sentry::ThreadGroup>>& groups);
  // The container a request names ("" = the first), or NotFound.
  absl::StatusOr<std::shared_ptr<Container>> Lookup(const std::string& id);
  bool IsFirst(const Container& c) const { return &c == first_.get(); }
  // Pause, Resume, Fork and Update act on the whole sandbox: only through
  // its first container.
  absl::Status SandboxWide(const Container& c, const char* what) const;
  // Whether `tg` belongs to container `c` (its tag). Caller holds Kernel::mu().
  static bool InContainer(const sentry::ThreadGroup& tg, const Container& c)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // The thread group for a request's pid (0 = the container's init), or NotFound.
  absl::StatusOr<std::shared_ptr<sentry::ThreadGroup>> Find(Container& c, int pid);
  // Runs `fn` on a thread of the ttrpc server's pool: no thread of ours
  // starts or ends outside it (but anchors, which start and end under
  // host_fork_mu_), so that a Fork's host fork, which holds the pool's
  // NoThreadStarts, never copies a thread half started or half ended
  // (shim/ttrpc/worker_pool.h).
  void RunInBackground(std::function<void()> fn);
  // Records the init's exit when it happens (a watcher thread).
  void WatchInit(std::shared_ptr<Container> c, std::shared_ptr<sentry::ThreadGroup> tg);

  // The forked sandbox's server: the seed's state under a new id (its
  // first container's; a pod's other containers keep theirs), paused.
  ControlServer(const ControlServer& seed, std::string new_id) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // In a forked sentry: serves `address` as container `new_id` until
  // Shutdown, then ends the process. Never returns.
  // `serve` is the accept loop's thread, made (and the host's refusal
  // reported as the Fork's failure) before the fork reported.
  [[noreturn]] static void ServeForkChild(ControlServer* child, ttrpc::Server* server,
                                          sentry::HostThread serve, bool paused);
  // In a forked sentry, on a thread of its own: once the sandbox's anchor
  // has died before it, the sandbox ends as on Shutdown (its host
  // processes killed first; sentry::WatchOwnAnchor).
  void EndWithAnchor();
  // On a thread of its own, off the request path: has the paused sandbox
  // make what its next Forks take (sentry::PrepareForkSpare, up to
  // cfg_.fork_spares), after `delay`.
  void PrepareForkSpareAsync(absl::Duration delay = absl::ZeroDuration());
  // The loop PrepareForkSpareAsync wakes (started once, ends with the
  // server).
  void SpareLoop();
  // The spare loop's last step: up to cfg_.fork_ahead of the spares become
  // forks made ahead (sentry::StartForkAhead).
  void ForkSparesAhead();
  // What a fork made ahead of this seed does in the child: lets go of our
  // control server's fds, then, given its request, SetUpForkChild.
  sentry::AheadChild AheadChildOf();
  // In a forked sentry, after its kernel is its own (a fork made now or
  // ahead): the child's identity from `req`, its control server (at
  // req.control_address()), cgroup, stdio (host fds) and network device
  // (`net`, taken: the stack owns it then; none: loopback only), and the
  // thread of its accept loop. Sets the pid to report and `main`, which
  // serves the child forever (ServeForkChild).
  absl::Status SetUpForkChild(const v1::ForkRequest& req, const int stdio[3],
                              std::optional<sentry::TakenInterface>* net,
                              const std::vector<pid_t>& pids, pid_t* report,
                              std::function<void()>* main) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // server_fork_pod.cc. Whether `req` may fork this sandbox as to its
  // application containers (a pod's): each started, each with a host
  // cgroup of its own given one for the fork, no other one named.
  absl::Status CheckPodForkLocked(const v1::ForkRequest& req) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // In a forked sentry, on its only thread, before its guest runs: opens
  // each req.member_cgroups() entry, moves that container's stubs there and
  // lets go of the seed's cgroups for it.
  absl::Status TakeMemberCgroupsInForkChild(const v1::ForkRequest& req)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Around every call that may change the sandbox's state (a signal
  // queued, a process started; a pause or resume changes the kernel's
  // quiesce epoch, which sentry/sfork checks itself): seed_version_ counts
  // up before and after it, so that no fork made ahead that copied the
  // seed before or during the change is taken (sentry/sfork), and a paused
  // seed then makes its forks ahead anew.
  class SeedChange {
   public:
    explicit SeedChange(ControlServer& s) : s_(s) { s_.seed_version_.fetch_add(1); }
    ~SeedChange();
    SeedChange(const SeedChange&) = delete;
    SeedChange& operator=(const SeedChange&) = delete;

   private:
    ControlServer& s_;
  };
  std::atomic<uint64_t> seed_version_{0};
  // Once a second: logs each Fork (or holder of the fork lock) that has
  // stayed in one step for kForkStall (fork_watch_), and reaps the forks
  // that have ended. Started with the spare loop, ends with it.
  void WatchForks();
  // Whether the server is going (~ControlServer): the loops end.
  bool LoopsStopping() ABSL_LOCKS_EXCLUDED(spare_mu_);
  bool SpareLoopWoken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(spare_mu_) {
    return spare_wanted_ || loops_stop_;
  }
  // A loop's end: counted, and its waiter woken.
  void LoopEnded() ABSL_LOCKS_EXCLUDED(spare_mu_);

  sentry::Kernel& kernel_;
  const ContainerConfig cfg_;
  ttrpc::Server* server_ = nullptr;  // the one Register() was given
  // Serializes the forks' host forks and the seed's bookkeeping (sentry/
  // sfork's StartFork, FinishFork, spares); a fork's own start and report
  // wait run outside it, so forks of this seed overlap.
  absl::Mutex fork_mu_;
  // Forks between StartFork and FinishFork: the seed stays quiesced until
  // none is left (Resume, Shutdown wait).
  int forks_in_flight_ ABSL_GUARDED_BY(fork_mu_) = 0;
  bool NoForkInFlight() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(fork_mu_) { return forks_in_flight_ == 0; }
  // Forks waiting for fork_mu_ (to start, or to finish and reply): the
  // spare loop makes way for them.
  std::atomic<int> forks_waiting_{0};
  // What each Fork and each holder of fork_mu_ is doing (WatchForks).
  ForkWatch fork_watch_;
  // Held across each host fork of this sentry that makes a sentry which
  // goes on (a Fork's, a fork made ahead's: under fork_mu_ and mu_, taken
  // first), and by a HostAnchor's start and end: no forked sentry copies
  // an anchor's thread half started or half ended. Only that: a container
  // made or deleted waits for no Fork's other steps under fork_mu_ (its
  // stdio, its network device, a spare, a fork made ahead's readiness).
  absl::Mutex host_fork_mu_;
  absl::Mutex spare_mu_;             // what SpareLoop is asked to do
  bool spare_wanted_ ABSL_GUARDED_BY(spare_mu_) = false;
  absl::Duration spare_delay_ ABSL_GUARDED_BY(spare_mu_);
  bool spare_thread_started_ ABSL_GUARDED_BY(spare_mu_) = false;
  bool loops_stop_ ABSL_GUARDED_BY(spare_mu_) = false;  // ~ControlServer began
  int loops_running_ ABSL_GUARDED_BY(spare_mu_) = 0;    // SpareLoop, WatchForks
  sentry::MonoCondVar loops_cv_;  // loops_stop_ or loops_running_ changed
  absl::Mutex mu_;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Shutdown has begun: no Fork starts and the spare loop makes no spare
  // (one made now would outlive the sandbox's end, EndHostProcesses). Set
  // before Shutdown takes fork_mu_, under which it changes the seed: a Fork
  // that checks it under fork_mu_ sees the seed whole or refuses.
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  // FailedPrecondition "<prefix>container X is shutting down: <consequence>"
  // once ending_ is set. Every call that would start, park or resume guest
  // tasks asks it (and the kernel refuses new processes from Shutdown's
  // kill sweep on: Kernel::RefuseNewProcessesLocked).
  absl::Status RefuseIfEnding(absl::string_view consequence, absl::string_view prefix = "") const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::function<void(const char*)> shutdown_hook_;  // SetShutdownHookForTest
  // The first container (never removed) and every container by id.
  const std::shared_ptr<Container> first_;
  std::map<std::string, std::shared_ptr<Container>> containers_ ABSL_GUARDED_BY(mu_);
};

// Shell-style exit status from a wait status: code, or 128+signal.
uint32_t ExitStatusOf(int wait_status);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_SERVER_H_
