// The Task methods around the lifecycle: State, Kill, Pids, Stats, Pause,
// Resume, Update, CloseIO, ResizePty, Connect, Shutdown, and registration.
#include <unistd.h>

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "shim/log.h"
#include "shim/proto/events.pb.h"
#include "shim/proto/metrics.pb.h"
#include "shim/task_service.h"
#include "sentry/base/mono_clock.h"
#include "shim/util.h"

namespace seedvisor::shim {

namespace ctl = ::seedvisor::control::v1;
namespace ev = ::containerd::events;
using ::containerd::v1::types::CREATED;
using ::containerd::v1::types::PAUSED;
using ::containerd::v1::types::RUNNING;
using ::containerd::v1::types::STOPPED;

absl::StatusOr<task::StateResponse> TaskService::State(const task::StateRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  std::shared_ptr<Proc> p;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> fp = FindProc(**c, req.exec_id());
    if (!fp.ok()) return fp.status();
    p = *fp;
  }
  bool ask = false;
  {
    absl::MutexLock l(&mu_);
    ask = req.exec_id().empty() && !p->exited && p->status != CREATED;
  }
  if (ask) {
    // The sandbox knows about pause; containerd's State has a 2 s timeout.
    ctl::StateRequest sr;
    sr.set_container_id(req.id());
    ctl::StateResponse out;
    if ((*c)->sandbox->Call("State", sr, &out, absl::Milliseconds(1500)).ok()) {
      if (out.status() == "stopped") {
        // The exit watcher has not run yet: record it now so that a Delete
        // right after this State succeeds.
        RecordExit(**c, p.get(), out.exit_status(),
                   out.exited_at_unix_nanos() > 0 ? TimestampFromUnixNanos(out.exited_at_unix_nanos())
                                                  : Now());
      } else {
        absl::MutexLock l(&mu_);
        if (!p->exited) p->status = out.status() == "paused" ? PAUSED : RUNNING;
      }
    }
  }
  absl::MutexLock l(&mu_);
  task::StateResponse resp;
  resp.set_id(req.exec_id().empty() ? req.id() : req.exec_id());
  resp.set_bundle((*c)->bundle);
  resp.set_pid(p->pid);
  resp.set_status(p->status);
  resp.set_stdin(p->stdin_path);
  resp.set_stdout(p->stdout_path);
  resp.set_stderr(p->stderr_path);
  resp.set_terminal(p->terminal);
  resp.set_exec_id(req.exec_id());
  if (p->exited) {
    resp.set_exit_status(p->exit_status);
    *resp.mutable_exited_at() = p->exited_at;
  }
  return resp;
}

absl::Status TaskService::Kill(const task::KillRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  ctl::SignalRequest sr;
  sr.set_container_id(req.id());
  sr.set_signal(req.signal());
  sr.set_all(req.all());
  bool init_created = false;
  std::shared_ptr<Proc> proc;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> p = FindProc(**c, req.exec_id());
    if (!p.ok()) return p.status();
    proc = *p;
    if ((*p)->exited) {
      return absl::NotFoundError(absl::StrCat("process ", req.exec_id().empty() ? req.id() : req.exec_id(),
                                              ": already finished"));
    }
    if (!req.exec_id().empty() && (*p)->status == CREATED) {
      return absl::FailedPreconditionError(absl::StrCat("exec ", req.exec_id(), ": not started"));
    }
    sr.set_pid((*p)->sandbox_pid);
    init_created = req.exec_id().empty() && (*p)->status == CREATED;
  }
  if (init_created && req.signal() != 0) {
    // No process runs yet: a signal ends the container, as it ends runc's
    // waiting init (`ctr task rm -f` kills a created task, then waits).
    (*c)->sandbox->Destroy();
    RecordExit(**c, (*c)->init.get(), 128 + req.signal(), Now());
    return absl::OkStatus();
  }
  ctl::SignalResponse out;
  absl::Status s = (*c)->sandbox->Call("Signal", sr, &out, absl::Seconds(10));
  if (!s.ok() && !(*c)->sandbox->alive()) {
    // The sandbox is gone, and the process with it, though its exit watcher
    // may not have said so yet: answer as the runc shim does for a finished
    // process (containerd's CRI takes NotFound as "stopped already"; an
    // Unavailable failed StopPodSandbox), with the exit recorded first.
    RecordExit(**c, proc.get(), 137, Now());
    return absl::NotFoundError(absl::StrCat(
        "process ", req.exec_id().empty() ? req.id() : req.exec_id(),
        ": already finished (its sandbox is gone: ", s.message(), ")"));
  }
  return s;
}

absl::StatusOr<task::PidsResponse> TaskService::Pids(const task::PidsRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  ctl::ProcessesRequest pr;
  pr.set_container_id(req.id());
  ctl::ProcessesResponse out;
  if (absl::Status s = (*c)->sandbox->Call("Processes", pr, &out, absl::Seconds(10)); !s.ok()) {
    return s;
  }
  task::PidsResponse resp;
  for (const ctl::Process& p : out.processes()) {
    resp.add_processes()->set_pid(static_cast<uint32_t>(p.pid()));
  }
  return resp;
}

absl::StatusOr<task::StatsResponse> TaskService::Stats(const task::StatsRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  ctl::StatsRequest sr;
  sr.set_container_id(req.id());
  ctl::StatsResponse out;
  if (absl::Status s = (*c)->sandbox->Call("Stats", sr, &out, absl::Seconds(10)); !s.ok()) {
    return s;
  }
  // The host's accounting of the whole sandbox (sentry, stubs and the guest
  // memory they hold) where it has a cgroup; the guest's own otherwise. The
  // pid count and limit are the guest's: the cgroup's count sentry threads
  // (and its pids.max has room for them: container::HostPidsMax). A pod
  // member's own cgroup holds its stubs only: its memory is all there, but
  // the CPU time of its system calls is the sentry's (in the pod's cgroup),
  // so its CPU time is what the sandbox counts for it.
  container::CgroupStats cg = container::ReadCgroupStats((*c)->cgroup);
  if ((*c)->sandbox->joined()) cg.has_cpu = false;
  io::containerd::cgroups::v1::Metrics m;
  m.mutable_pids()->set_current(out.pids_current());
  m.mutable_pids()->set_limit(out.pids_limit());
  auto* cpu = m.mutable_cpu()->mutable_usage();
  cpu->set_total(cg.has_cpu ? cg.cpu_usage_ns : out.cpu_usage_ns());
  cpu->set_kernel(cg.has_cpu ? cg.cpu_system_ns : out.cpu_system_ns());
  cpu->set_user(cg.has_cpu ? cg.cpu_user_ns : out.cpu_user_ns());
  auto* mem = m.mutable_memory();
  if (cg.has_memory) {
    mem->mutable_usage()->set_usage(cg.memory_usage);
    mem->mutable_usage()->set_limit(cg.memory_limit);
    mem->mutable_usage()->set_max(cg.memory_max_usage);
    mem->mutable_usage()->set_failcnt(cg.memory_failcnt);
    mem->set_total_rss(cg.memory_rss);
    mem->set_total_cache(cg.memory_cache);
    m.mutable_memory_oom_control()->set_oom_kill(cg.oom_kills);
  } else {
    mem->mutable_usage()->set_usage(out.memory_usage_bytes());
    mem->mutable_usage()->set_limit(out.memory_limit_bytes());
    mem->mutable_usage()->set_max(out.memory_max_rss_bytes());
  }
  task::StatsResponse resp;
  // containerd decodes this by type URL (typeurl registry, no prefix).
  resp.mutable_stats()->set_type_url("io.containerd.cgroups.v1.Metrics");
  resp.mutable_stats()->set_value(m.SerializeAsString());
  return resp;
}

template <typename ControlReq, typename ControlResp, typename Event>
absl::Status TaskService::SetPaused(const std::string& id, const char* method,
                                    ::containerd::v1::types::Status status,
                                    const char* topic) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(id);
  if (!c.ok()) return c.status();
  ControlReq req;
  req.set_container_id(id);
  ControlResp out;
  if (absl::Status s = (*c)->sandbox->Call(method, req, &out, absl::Seconds(10)); !s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    if (!(*c)->init->exited) (*c)->init->status = status;
  }
  Event e;
  e.set_container_id(id);
  publisher_->Publish(topic, e);
  return absl::OkStatus();
}

absl::Status TaskService::Pause(const task::PauseRequest& req) {
  return SetPaused<ctl::PauseRequest, ctl::PauseResponse, ev::TaskPaused>(req.id(), "Pause", PAUSED,
                                                                          "/tasks/paused");
}

absl::Status TaskService::Resume(const task::ResumeRequest& req) {
  return SetPaused<ctl::ResumeRequest, ctl::ResumeResponse, ev::TaskResumed>(
      req.id(), "Resume", RUNNING, "/tasks/resumed");
}

absl::Status TaskService::Update(const task::UpdateTaskRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  // Annotations need nothing from the sandbox. New limits go straight into
  // the sandbox's cgroups (no runtime exec): the host enforces them on the
  // sandbox process as a whole; the pids limit is the sandbox's own to keep
  // (it counts its guest tasks; the host cgroup gets room for the sentry's
  // threads and stubs, container::HostPidsMax), so it also goes to the
  // sandbox over its control socket.
  if (!req.has_resources() || req.resources().value().empty()) return absl::OkStatus();
  absl::StatusOr<oci::Resources> r = ResourcesFromAny(req.resources());
  if (!r.ok()) return r.status();
  return container::ApplyUpdate(
      *r, req.id(), (*c)->sandbox->joined(), (*c)->cgroup, [&](int64_t limit) {
        ctl::UpdateRequest ur;
        ur.set_container_id(req.id());
        ur.set_pids_limit(limit);
        ctl::UpdateResponse out;
        return (*c)->sandbox->Call("Update", ur, &out, absl::Seconds(10));
      });
}

absl::Status TaskService::CloseIO(const task::CloseIORequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  std::shared_ptr<Proc> p;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> fp = FindProc(**c, req.exec_id());
    if (!fp.ok()) return fp.status();
    p = *fp;
  }
  if (req.stdin() && p->io != nullptr) p->io->CloseStdin();
  return absl::OkStatus();
}

absl::Status TaskService::ResizePty(const task::ResizePtyRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  std::shared_ptr<Proc> p;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> fp = FindProc(**c, req.exec_id());
    if (!fp.ok()) return fp.status();
    p = *fp;
  }
  return p->io->Resize(req.width(), req.height());
}

absl::StatusOr<task::ConnectResponse> TaskService::Connect(const task::ConnectRequest& req) {
  task::ConnectResponse resp;
  resp.set_shim_pid(static_cast<uint32_t>(getpid()));
  resp.set_version("seedsc-shim-v1");
  absl::MutexLock l(&mu_);
  auto it = containers_.find(req.id());
  if (it != containers_.end()) resp.set_task_pid(it->second->init->pid);
  return resp;
}

absl::Status TaskService::Shutdown(const task::ShutdownRequest& req, bool* exit) {
  absl::MutexLock l(&mu_);
  // The runc shim ignores Shutdown while it still has tasks; the Delete
  // of the last one then ends this shim (ExitSoonIfDone).
  // A Create still running has no container yet, but it would be cut off.
  *exit = (containers_.empty() && creates_in_flight_ == 0) || req.now();
  if (!*exit) shutdown_refused_ = true;
  exiting_ = *exit;  // no Create begins after this answer
  return absl::OkStatus();
}

namespace {

// With -debug: "Start t1: 12.3 ms: OK" per call.
class Timed {
 public:
  Timed(const char* method, const std::string& id)
      : method_(method), id_(id), start_(sentry::MonotonicNow()) {}
  template <typename T>
  T Done(T result) {
    if (ShimDebugEnabled()) {
      absl::Status s;
      if constexpr (std::is_same_v<T, absl::Status>) {
        s = result;
      } else {
        s = result.status();
      }
      ShimLog("%s %s: %.1f ms: %s", method_, id_,
              absl::ToDoubleMilliseconds(sentry::MonotonicNow() - start_), s.ToString());
    }
    return result;
  }

 private:
  const char* method_;
  const std::string& id_;
  absl::Duration start_;  // MonotonicNow()
};

}  // namespace

void TaskService::Register(ttrpc::Server* server) {
  const std::string svc = "containerd.task.v2.Task";
  using google::protobuf::Empty;
  auto empty = [](absl::Status s) -> absl::StatusOr<Empty> {
    if (!s.ok()) return s;
    return Empty();
  };
#define SEEDSC_TASK_METHOD(NAME, REQ, RESP)                                         \
  server->RegisterMethod<task::REQ, task::RESP>(                                     \
      svc, #NAME, [this](const ttrpc::CallContext&, const task::REQ& r) {            \
        Timed t(#NAME, r.id());                                                      \
        return t.Done(NAME(r));                                                      \
      })
#define SEEDSC_TASK_EMPTY(NAME, REQ)                                                 \
  server->RegisterMethod<task::REQ, Empty>(                                          \
      svc, #NAME, [this, empty](const ttrpc::CallContext&, const task::REQ& r) {     \
        Timed t(#NAME, r.id());                                                      \
        return t.Done(empty(NAME(r)));                                               \
      })
  SEEDSC_TASK_METHOD(State, StateRequest, StateResponse);
  SEEDSC_TASK_METHOD(Create, CreateTaskRequest, CreateTaskResponse);
  SEEDSC_TASK_METHOD(Start, StartRequest, StartResponse);
  SEEDSC_TASK_METHOD(Delete, DeleteRequest, DeleteResponse);
  SEEDSC_TASK_METHOD(Pids, PidsRequest, PidsResponse);
  SEEDSC_TASK_EMPTY(Pause, PauseRequest);
  SEEDSC_TASK_EMPTY(Resume, ResumeRequest);
  SEEDSC_TASK_EMPTY(Kill, KillRequest);
  SEEDSC_TASK_EMPTY(Exec, ExecProcessRequest);
  SEEDSC_TASK_EMPTY(ResizePty, ResizePtyRequest);
  SEEDSC_TASK_EMPTY(CloseIO, CloseIORequest);
  SEEDSC_TASK_EMPTY(Update, UpdateTaskRequest);
  SEEDSC_TASK_METHOD(Wait, WaitRequest, WaitResponse);
  SEEDSC_TASK_METHOD(Stats, StatsRequest, StatsResponse);
  SEEDSC_TASK_METHOD(Connect, ConnectRequest, ConnectResponse);
  server->RegisterMethod<task::ShutdownRequest, Empty>(
      svc, "Shutdown", [this](const ttrpc::CallContext& ctx, const task::ShutdownRequest& r) {
        Timed t("Shutdown", r.id());
        bool exit = false;
        absl::Status s = Shutdown(r, &exit);
        if (s.ok() && exit) ctx.after_reply = on_shutdown_;
        return t.Done(s.ok() ? absl::StatusOr<Empty>(Empty()) : absl::StatusOr<Empty>(s));
      });
#undef SEEDSC_TASK_METHOD
#undef SEEDSC_TASK_EMPTY
  // Checkpoint is not registered: ttrpc answers 12 "method Checkpoint".
}

}  // namespace seedvisor::shim
