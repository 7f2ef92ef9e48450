// The task lifecycle: Create, Start and Delete (Exec, Wait and exits: task_service_exec.cc).
#include "shim/task_service.h"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "shim/log.h"
#include "shim/proto/events.pb.h"
#include "shim/runtime_options.h"
#include "shim/seed_fork.h"
#include "shim/util.h"

namespace seedvisor::shim {

namespace ctl = ::seedvisor::control::v1;
namespace ev = ::containerd::events;
using ::containerd::v1::types::CREATED;
using ::containerd::v1::types::RUNNING;
using ::containerd::v1::types::STOPPED;

TaskService::TaskService(Publisher* publisher, SandboxConfig cfg,
                         std::function<void()> on_shutdown)
    : publisher_(publisher),
      cfg_(std::move(cfg)),
      on_shutdown_(std::move(on_shutdown)),
      oom_([publisher](const std::string& id) {
        ev::TaskOOM e;
        e.set_container_id(id);
        publisher->Publish("/tasks/oom", e);
      }) {}

namespace {

// The cgroup seedsc put the sandbox in (CgroupPathFor of its config.json),
// if the sandbox process really is in it (/proc/<pid>/cgroup): never a
// cgroup the shim or containerd lives in.
std::string SandboxCgroup(const std::string& bundle, const std::string& id, pid_t pid) {
  absl::StatusOr<oci::Spec> spec = oci::LoadBundle(bundle);
  if (!spec.ok()) return "";
  std::string path = container::CgroupPathFor(*spec, id);
  if (path.empty()) return "";
  std::ifstream in(absl::StrCat("/proc/", pid, "/cgroup"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (CgroupOfController(text, "memory") != "/" + path) {
    ShimLog("sandbox %s: not in its cgroup %s", id, path);
    return "";
  }
  return path;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TaskService::Container>> TaskService::Find(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return absl::NotFoundError(absl::StrCat("container ", id, ": not found"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<TaskService::Proc>> TaskService::FindProc(
    const Container& c, const std::string& exec_id) {
  if (exec_id.empty()) return c.init;
  auto it = c.execs.find(exec_id);
  if (it == c.execs.end()) {
    return absl::NotFoundError(absl::StrCat("exec ", exec_id, " of ", c.id, ": not found"));
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<Sandbox>> TaskService::ForkSandbox(Container& c,
                                                                  const oci::Spec& spec) {
  const std::string cgroup = container::CgroupPathFor(spec, c.id);
  if (absl::Status s = container::CreateCgroups(spec, cgroup, cfg_.root); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Sandbox>> sb =
      ForkFromSeed(cfg_, c.seed, c.id, c.init->io->SandboxStdio(), cgroup);
  if (!sb.ok()) {
    if (!cgroup.empty()) container::RemoveCgroups(cgroup, cfg_.root).IgnoreError();
    return sb.status();
  }
  c.cgroup = cgroup;
  // What `<shim> delete` reports if this shim dies (seedsc writes it otherwise).
  std::ofstream(c.bundle + "/init.pid") << (*sb)->pid();
  return sb;
}

absl::StatusOr<task::CreateTaskResponse> TaskService::Create(const task::CreateTaskRequest& req) {
  if (req.id().empty()) return absl::InvalidArgumentError("create: empty id");
  if (!req.checkpoint().empty()) {
    return absl::UnimplementedError("seedsc: restoring from a checkpoint is not supported");
  }
  {
    absl::MutexLock l(&mu_);
    if (containers_.count(req.id()) > 0 || queued_creates_.count(req.id()) > 0 ||
        creating_ == req.id()) {
      return absl::AlreadyExistsError(absl::StrCat("container ", req.id(), ": already exists"));
    }
    queued_creates_[req.id()] = false;
  }
  absl::MutexLock lc(&lifecycle_mu_);
  {
    absl::MutexLock l(&mu_);
    auto queued = queued_creates_.extract(req.id());
    if (queued.mapped()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container ", req.id(), ": deleted before its Create could begin (its caller gave up)"));
    }
    if (containers_.count(req.id()) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("container ", req.id(), ": already exists"));
    }
    if (exiting_) {
      return absl::UnavailableError(absl::StrCat("container ", req.id(),
                                                 ": this shim is exiting (its last container is gone)"));
    }
    // Counted from its start: the exit after a last Delete never comes in
    // the middle of a Create, however long its sandbox takes to start.
    ++creates_;
    ++creates_in_flight_;
    creating_ = req.id();
  }
  absl::Cleanup counted = [this] {
    absl::MutexLock l(&mu_);
    --creates_in_flight_;
    creating_.clear();
    ExitSoonIfDone();  // it failed after the last Delete: the exit is due again
  };
  // The runtime's options from containerd's CRI config (ConfigPath):
  // this container's seedsc flags, after those of SEEDSC_FLAGS.
  SandboxConfig cfg = cfg_;
  absl::StatusOr<std::vector<std::string>> option_flags = FlagsFromRuntimeOptions(req.options());
  if (!option_flags.ok()) return option_flags.status();
  cfg.flags.insert(cfg.flags.end(), option_flags->begin(), option_flags->end());
  absl::StatusOr<oci::Spec> spec = oci::LoadBundle(req.bundle());
  auto c = std::make_shared<Container>();
  c->id = req.id();
  c->bundle = req.bundle();
  if (spec.ok()) c->seed = SeedOf(*spec);
  // A fork runs in its seed's root: the image's rootfs stays unmounted.
  const std::string rootfs = req.bundle() + "/rootfs";
  if (c->seed.empty()) {
    if (absl::Status s = MountRootfs(req.rootfs(), rootfs); !s.ok()) return s;
  }
  c->init = std::make_shared<Proc>();
  Proc& init = *c->init;
  init.stdin_path = req.stdin();
  init.stdout_path = req.stdout();
  init.stderr_path = req.stderr();
  init.terminal = req.terminal();
  absl::StatusOr<std::shared_ptr<ProcessIO>> io =
      ProcessIO::Create(req.stdin(), req.stdout(), req.stderr(), req.terminal());
  if (!io.ok()) {
    UnmountAll(rootfs);
    return io.status();
  }
  init.io = *io;
  absl::StatusOr<std::unique_ptr<Sandbox>> sb =
      c->seed.empty() ? Sandbox::Create(cfg, req.id(), req.bundle(), init.io->console_socket())
                      : ForkSandbox(*c, *spec);
  if (!sb.ok()) {
    init.io->Finish(absl::ZeroDuration());
    UnmountAll(rootfs);
    return sb.status();
  }
  c->sandbox = std::move(*sb);
  init.pid = static_cast<uint32_t>(c->sandbox->pid());
  // A container that joined its pod's sandbox: its own cgroup, which holds
  // its processes' stubs (their memory, their guest code's CPU time), if
  // seedsc made one; never the pod sandbox's (Update, Stats and OOM events
  // would be the whole pod's).
  if (c->seed.empty() && !c->sandbox->joined()) {
    c->cgroup = SandboxCgroup(c->bundle, c->id, c->sandbox->pid());
  } else if (c->sandbox->joined()) {
    c->cgroup = c->sandbox->joined_cgroup();
  }
  if (!c->cgroup.empty()) {
    if (absl::Status s = oom_.Watch(c->id, c->cgroup); !s.ok()) {
      ShimLog("sandbox %s: no OOM events: %s", c->id, s.ToString());
    }
  }
  {
    absl::MutexLock l(&mu_);
    containers_[c->id] = c;
  }

  ev::TaskCreate e;
  e.set_container_id(req.id());
  e.set_bundle(req.bundle());
  *e.mutable_rootfs() = req.rootfs();
  e.mutable_io()->set_stdin(req.stdin());
  e.mutable_io()->set_stdout(req.stdout());
  e.mutable_io()->set_stderr(req.stderr());
  e.mutable_io()->set_terminal(req.terminal());
  e.set_checkpoint(req.checkpoint());
  e.set_pid(init.pid);
  publisher_->Publish("/tasks/create", e);

  task::CreateTaskResponse resp;
  resp.set_pid(init.pid);
  return resp;
}

absl::StatusOr<task::StartResponse> TaskService::Start(const task::StartRequest& req) {
  absl::MutexLock lc(&lifecycle_mu_);
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  std::shared_ptr<Proc> p;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> fp = FindProc(**c, req.exec_id());
    if (!fp.ok()) return fp.status();
    p = *fp;
    if (p->status != CREATED || p->exited) {
      return absl::FailedPreconditionError(
          absl::StrCat("process ", req.exec_id().empty() ? req.id() : req.exec_id(),
                       ": already started"));
    }
  }
  Sandbox& sb = *(*c)->sandbox;
  // The shim's early writers of the output fifos go once the sandbox has
  // its own (Started), and also when the start fails: the client waits for
  // EOF on its fifos before it deletes the task (process_io.h).
  absl::Cleanup drop_early = [&p] { p->io->DropEarlyWriters(); };
  if (req.exec_id().empty() && sb.forked()) {
    // The fork's init is the seed's, paused since Create with its stdio.
    if (absl::Status s = ActivateForked(cfg_, req.id()); !s.ok()) return s;
    p->sandbox_pid = 0;
  } else if (req.exec_id().empty()) {
    ctl::StartRequest sr;
    sr.set_container_id(req.id());
    // A terminal init keeps the pty that `seedsc create --console-socket`
    // set up (runc's convention: the master reaches the console socket
    // during create, or at Start at the latest); other stdio goes here.
    if (!p->terminal) *sr.mutable_stdio() = p->io->SandboxStdio();
    ctl::StartResponse out;
    if (absl::Status s = sb.Call("Start", sr, &out); !s.ok()) return s;
    p->sandbox_pid = 0;  // the control protocol's name for the init
  } else {
    ctl::ExecRequest er = p->exec;
    er.set_container_id(req.id());
    er.set_exec_id(req.exec_id());
    *er.mutable_stdio() = p->io->SandboxStdio();
    ctl::ExecResponse out;
    if (absl::Status s = sb.Call("Exec", er, &out); !s.ok()) return s;
    p->sandbox_pid = out.pid();
    p->pid = static_cast<uint32_t>(out.pid());
  }
  if (absl::Status s = p->io->Started(); !s.ok()) ShimLog("%s: io: %s", req.id(), s.ToString());
  {
    absl::MutexLock l(&mu_);
    if (!p->exited) p->status = RUNNING;
  }
  std::shared_ptr<Container> cc = *c;
  std::thread([this, cc, p] { WatchExit(cc, p); }).detach();

  if (req.exec_id().empty()) {
    ev::TaskStart e;
    e.set_container_id(req.id());
    e.set_pid(p->pid);
    publisher_->Publish("/tasks/start", e);
  } else {
    ev::TaskExecStarted e;
    e.set_container_id(req.id());
    e.set_exec_id(req.exec_id());
    e.set_pid(p->pid);
    publisher_->Publish("/tasks/exec-started", e);
  }
  task::StartResponse resp;
  resp.set_pid(p->pid);
  return resp;
}

bool TaskService::CreateQueued(const std::string& id) {
  absl::MutexLock l(&mu_);
  return queued_creates_.count(id) > 0;
}

absl::StatusOr<task::DeleteResponse> TaskService::Delete(const task::DeleteRequest& req) {
  {
    // Not there, and not being created: answered at once, not after
    // another container's Create (lifecycle_mu_). A Create of it that
    // waits for that lock is the one its caller gave up on (containerd
    // deletes a task whose Create failed or timed out, then sends
    // Shutdown): it begins nothing.
    absl::MutexLock l(&mu_);
    if (containers_.count(req.id()) == 0 && creating_ != req.id()) {
      auto queued = queued_creates_.find(req.id());
      if (queued != queued_creates_.end()) queued->second = true;
      return absl::NotFoundError(absl::StrCat("container ", req.id(), ": not found"));
    }
  }
  absl::MutexLock lc(&lifecycle_mu_);
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  std::shared_ptr<Proc> p;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::shared_ptr<Proc>> fp = FindProc(**c, req.exec_id());
    if (!fp.ok()) return fp.status();
    p = *fp;
    if (!p->exited && p->status != CREATED) {
      // As containerd's runc shim: a paused process is refused as paused
      // (its pausedState.Delete), not as running; the state is named too.
      const bool paused = p->status == ::containerd::v1::types::PAUSED;
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot delete a ", paused ? "paused" : "running", " process: ",
          req.exec_id().empty() ? req.id() : req.exec_id(), " (state ",
          ::containerd::v1::types::Status_Name(p->status), "; kill it first)"));
    }
    if (!p->exited) {  // never started
      p->exited = true;
      p->status = STOPPED;
      p->exited_at = Now();
    }
  }
  task::DeleteResponse resp;
  resp.set_pid(p->pid);
  resp.set_exit_status(p->exit_status);
  *resp.mutable_exited_at() = p->exited_at;
  if (!req.exec_id().empty()) {
    p->io->Finish(absl::ZeroDuration());
    absl::MutexLock l(&mu_);
    (*c)->execs.erase(req.exec_id());
    return resp;
  }

  oom_.Unwatch(req.id());
  (*c)->sandbox->Destroy();
  p->io->Finish(absl::ZeroDuration());
  UnmountAll((*c)->bundle + "/rootfs");
  if (!(*c)->seed.empty() && !(*c)->cgroup.empty()) {
    if (absl::Status s = container::RemoveCgroups((*c)->cgroup, cfg_.root); !s.ok()) {
      ShimLog("delete %s: %s", req.id(), s.ToString());
    }
  }
  {
    absl::MutexLock l(&mu_);
    // A Wait on an exec that never started must not block forever.
    for (auto& [id, e] : (*c)->execs) {
      if (!e->exited) {
        e->exited = true;
        e->status = STOPPED;
        e->exit_status = 137;
        e->exited_at = Now();
      }
    }
    containers_.erase(req.id());
    ExitSoonIfDone();
  }
  ev::TaskDelete e;
  e.set_container_id(req.id());
  e.set_pid(p->pid);
  e.set_exit_status(p->exit_status);
  *e.mutable_exited_at() = p->exited_at;
  e.set_id(req.id());
  publisher_->Publish("/tasks/delete", e);
  return resp;
}

void TaskService::ExitSoonIfDone() {
  if (!containers_.empty() || !shutdown_refused_) return;
  const uint64_t creates = creates_;
  std::thread([this, creates] {
    absl::SleepFor(kLastDeleteGrace);
    {
      absl::MutexLock l(&mu_);
      if (!containers_.empty() || creates_in_flight_ > 0 || creates_ != creates) return;
      exiting_ = true;  // decided: a Create that comes now is refused, not cut off
    }
    ShimLog("the last container is deleted, after a Shutdown that found containers: exiting");
    on_shutdown_();
    // It returns only where it does not exit (a test's stand-in): go on.
    absl::MutexLock l(&mu_);
    exiting_ = false;
  }).detach();
}

}  // namespace seedvisor::shim
