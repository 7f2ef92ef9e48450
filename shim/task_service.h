// containerd.task.v2.Task for seedsc sandboxes: every container of the
// shim's group (a pod's, shim_main.cc's GroupOf). Each container's sandbox
// is started once at Create (by `seedsc create`, which for a pod's
// application container joins the pod's sandbox, or forked from a seedd
// seed: seed_fork.h) and then driven over the control socket (sandbox.h). Exits are learned from blocking
// control Wait calls, one thread per process; every pending Task.Wait is
// answered when the exit is recorded, and /tasks/exit is published.
//
//   Publisher pub(ttrpc_address, ns);
//   TaskService svc(&pub, SandboxConfig::FromEnv(ns), [] { exit(0); });
//   svc.Register(&server);
//
// Errors follow containerd's expectations: unknown container or exec id →
// NotFound, a second Create/Exec of an id → AlreadyExists, wrong lifecycle
// state → FailedPrecondition, Checkpoint and anything unknown → Unimplemented.
#ifndef SEEDVISOR_SHIM_TASK_SERVICE_H_
#define SEEDVISOR_SHIM_TASK_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runsc/oci/spec.h"
#include "shim/events.h"
#include "shim/oom_watcher.h"
#include "shim/process_io.h"
#include "shim/proto/shim.pb.h"
#include "shim/sandbox.h"
#include "shim/ttrpc/server.h"

namespace seedvisor::shim {

namespace task = ::containerd::task::v2;

class TaskService {
 public:
  TaskService(Publisher* publisher, SandboxConfig cfg, std::function<void()> on_shutdown);

  void Register(ttrpc::Server* server);

  absl::StatusOr<task::CreateTaskResponse> Create(const task::CreateTaskRequest& req);
  absl::StatusOr<task::StartResponse> Start(const task::StartRequest& req);
  absl::StatusOr<task::DeleteResponse> Delete(const task::DeleteRequest& req);
  absl::StatusOr<task::StateResponse> State(const task::StateRequest& req);
  absl::Status Kill(const task::KillRequest& req);
  absl::StatusOr<task::WaitResponse> Wait(const task::WaitRequest& req);
  absl::StatusOr<task::PidsResponse> Pids(const task::PidsRequest& req);
  absl::Status Exec(const task::ExecProcessRequest& req);
  absl::Status ResizePty(const task::ResizePtyRequest& req);
  absl::Status CloseIO(const task::CloseIORequest& req);
  absl::StatusOr<task::ConnectResponse> Connect(const task::ConnectRequest& req);
  // OK either way; *exit says whether the shim should now exit (no task
  // left, or `now`): Register runs on_shutdown once the reply is out.
  absl::Status Shutdown(const task::ShutdownRequest& req, bool* exit);
  absl::StatusOr<task::StatsResponse> Stats(const task::StatsRequest& req);
  absl::Status Pause(const task::PauseRequest& req);
  absl::Status Resume(const task::ResumeRequest& req);
  absl::Status Update(const task::UpdateTaskRequest& req);

  // Whether a Create of `id` waits for another lifecycle call (a Delete
  // of `id` now makes it begin nothing): what a test waits for.
  bool CreateQueued(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // How long the shim waits after the last Delete that follows a refused
  // Shutdown, for containerd's own Shutdown, before it exits anyway.
  static constexpr absl::Duration kLastDeleteGrace = absl::Seconds(2);

 private:
  struct Proc {
    std::string exec_id;  // "" for the init
    uint32_t pid = 0;     // what containerd sees
    int32_t sandbox_pid = 0;  // the control protocol's pid (0 = init)
    ::containerd::v1::types::Status status = ::containerd::v1::types::CREATED;
    bool exited = false;
    uint32_t exit_status = 0;
    google::protobuf::Timestamp exited_at;
    std::string stdin_path, stdout_path, stderr_path;
    bool terminal = false;
    std::shared_ptr<ProcessIO> io;
    seedvisor::control::v1::ExecRequest exec;  // for execs
  };
  struct Container {
    std::string id;
    std::string bundle;
    std::unique_ptr<Sandbox> sandbox;
    // The sandbox's cgroup path (v1, relative to each controller's root),
    // or "" when it has none of its own: Update, Stats and OOM events use it.
    std::string cgroup;
    // Forked from this seedd seed (seed_fork.h); "" = booted by seedsc.
    // Then the shim made `cgroup` and removes it at Delete.
    std::string seed;
    std::shared_ptr<Proc> init;
    std::map<std::string, std::shared_ptr<Proc>> execs;
  };

  absl::StatusOr<std::shared_ptr<Container>> Find(const std::string& id);
  // Create's sandbox for a container forked from seedd's seed c.seed: its
  // cgroup (config.json linux.cgroupsPath and resources) and the FRI Fork.
  absl::StatusOr<std::unique_ptr<Sandbox>> ForkSandbox(Container& c, const oci::Spec& spec);
  // Pause and Resume: the control call `method`, the init's new status, and
  // the containerd event `Event` on `topic`.
  template <typename ControlReq, typename ControlResp, typename Event>
  absl::Status SetPaused(const std::string& id, const char* method,
                         ::containerd::v1::types::Status status,
                         const char* topic);
  absl::StatusOr<std::shared_ptr<Proc>> FindProc(const Container& c, const std::string& exec_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the process's exit in the sandbox and records it.
  void WatchExit(std::shared_ptr<Container> c, std::shared_ptr<Proc> p);
  void RecordExit(const Container& c, Proc* p, uint32_t status, google::protobuf::Timestamp at);

  // After a Shutdown that found containers left, the Delete of the last
  // one ends the shim too, unless a Create began in between or is still
  // under way (containerd sends one Shutdown per deleted container, but
  // not after a Delete that it saw fail or time out: the shim would be
  // left for good). After kLastDeleteGrace, for containerd's own Shutdown
  // to come first. A Create that fails with no container left asks again.
  void ExitSoonIfDone() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Publisher* const publisher_;
  const SandboxConfig cfg_;
  const std::function<void()> on_shutdown_;

  // Publishes /tasks/oom; declared after publisher_ (it uses it).
  OomWatcher oom_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Container>> containers_ ABSL_GUARDED_BY(mu_);
  bool shutdown_refused_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t creates_ ABSL_GUARDED_BY(mu_) = 0;       // Creates begun
  int creates_in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // begun and not yet returned
  bool exiting_ ABSL_GUARDED_BY(mu_) = false;       // the shim is about to exit
  // Creates waiting for lifecycle_mu_, by id: true once a Delete of that
  // id came meanwhile (the Create then begins nothing). And the id of the
  // Create that holds lifecycle_mu_ ("" = none).
  std::map<std::string, bool> queued_creates_ ABSL_GUARDED_BY(mu_);
  std::string creating_ ABSL_GUARDED_BY(mu_);
  // Serializes lifecycle calls that talk to the sandbox (Create/Start/
  // Exec/Delete) per shim; Wait/State/Kill never take it.
  absl::Mutex lifecycle_mu_;
};

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_TASK_SERVICE_H_
