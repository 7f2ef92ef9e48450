#include "sentry/control/server.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sentry/base/log.h"
#include "sentry/control/start_hooks.h"
#include "sentry/control/stdio.h"
#include "sentry/sfork/sfork.h"

namespace seedvisor::control {
namespace {

using sentry::ThreadGroup;

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

sentry::Credentials CredsOf(const v1::User& u) {
  sentry::Credentials c = sentry::Credentials::ForUser(u.uid(), u.gid());
  c.groups.assign(u.additional_gids().begin(), u.additional_gids().end());
  return c;
}

// The memory cgroup this process is in, from /proc/self/cgroup (v1).
std::string MemoryCgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':');
    size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    if (line.substr(a + 1, b - a - 1) == "memory") return "/sys/fs/cgroup/memory" + line.substr(b + 1);
  }
  return "";
}

uint64_t ReadU64(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

}  // namespace

uint32_t ExitStatusOf(int ws) {
  if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
  return WEXITSTATUS(ws);
}

ControlServer::ControlServer(sentry::Kernel& kernel, ContainerConfig cfg)
    : kernel_(kernel), cfg_(std::move(cfg)), init_stdio_owner_(cfg_.init_stdio_owner) {}

void ControlServer::Register(ttrpc::Server& s) {
  server_ = &s;
#define SV_REGISTER(Name)                                                                  \
  s.RegisterMethod<v1::Name##Request, v1::Name##Response>(                                 \
      kService, #Name,                                                                     \
      [this](const ttrpc::CallContext&,                                                    \
             const v1::Name##Request& req) -> absl::StatusOr<v1::Name##Response> {         \
        return Name(req);                                                                  \
      })
  SV_REGISTER(Start);
  SV_REGISTER(Exec);
  SV_REGISTER(Signal);
  SV_REGISTER(Wait);
  SV_REGISTER(State);
  SV_REGISTER(Processes);
  SV_REGISTER(Stats);
  SV_REGISTER(Update);
  SV_REGISTER(Pause);
  SV_REGISTER(Resume);
  SV_REGISTER(Shutdown);
#undef SV_REGISTER
  s.RegisterMethod<v1::ForkRequest, v1::ForkResponse>(
      kService, "Fork",
      [this](const ttrpc::CallContext& ctx,
             const v1::ForkRequest& req) -> absl::StatusOr<v1::ForkResponse> {
        return Fork(req, absl::Nanoseconds(ctx.timeout_nano));
      });
}

void ControlServer::WaitShutdown() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(&shutdown_));
}

absl::Status ControlServer::CheckId(const std::string& id) const {
  // An empty id means "this sandbox's container" (there is one per sandbox).
  if (!id.empty() && id != cfg_.id) {
    return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found in this sandbox"));
  }
  return absl::OkStatus();
}

void ControlServer::RunInBackground(std::function<void()> fn) {
  if (server_ != nullptr) {
    server_->pool().Run(std::move(fn));
  } else {
    // No server (tests): no fork either.
    Result<sentry::HostThread> t = sentry::HostThread::Spawn();
    if (!t.ok()) {
      Log::Warning("container %s: the host refused a background thread (%s)", cfg_.id,
                   std::strerror(t.error().value()));
      return;
    }
    std::move(*t).Run(std::move(fn));
  }
}

void ControlServer::WatchInit(std::shared_ptr<ThreadGroup> tg) {
  RunInBackground([this, tg] {
    int ws = kernel_.WaitProcess(tg);
    absl::MutexLock l(&mu_);
    if (phase_ != Phase::kStopped) {
      phase_ = Phase::kStopped;
      init_wait_status_ = ws;
      init_exited_at_ns_ = RealtimeNs();
    }
    Log::Debug("container %s: init exited, wait status %#x", cfg_.id, ws);
  });
}

absl::StatusOr<v1::StartResponse> ControlServer::Start(const v1::StartRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    if (phase_ != Phase::kCreated || starting_) {
      return absl::FailedPreconditionError(
          absl::StrCat("container \"", cfg_.id, "\" cannot be started: it is not in the created state"));
    }
    starting_ = true;
  }
  if (absl::Status s = RunStartHooks(kernel_, cfg_.init, req); !s.ok()) {
    // runtime-spec: a failing startContainer hook stops the container.
    absl::MutexLock l(&mu_);
    starting_ = false;
    phase_ = Phase::kStopped;
    init_wait_status_ = (127 & 0xff) << 8;
    init_exited_at_ns_ = RealtimeNs();
    return s;
  }
  v1::Stdio io = req.stdio();
  if (cfg_.terminal && !req.has_stdio()) {
    io.set_terminal(true);
    io.set_console_socket(cfg_.console_socket);
  }
  absl::StatusOr<HostStdio> host = OpenStdio(io, cfg_.init.stdio);
  sentry::ProcessSpec spec = cfg_.init;
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = absl::UnknownError("not started");
  if (host.ok()) {
    for (int i = 0; i < 3; ++i) spec.stdio[i] = host->fds[i];
    tg = kernel_.StartProcess(spec);
  } else {
    tg = host.status();
  }
  absl::MutexLock l(&mu_);
  starting_ = false;
  init_stdio_owner_.reset();
  if (!tg.ok()) {
    // Like runc: a container whose process cannot start is stopped.
    phase_ = Phase::kStopped;
    init_wait_status_ = (127 & 0xff) << 8;
    init_exited_at_ns_ = RealtimeNs();
    return absl::FailedPreconditionError(absl::StrCat("starting container \"", cfg_.id,
                                                      "\": ", tg.status().message()));
  }
  init_ = *tg;
  procs_[(*tg)->tgid()] = *tg;
  phase_ = Phase::kRunning;
  WatchInit(*tg);
  v1::StartResponse resp;
  resp.set_pid((*tg)->tgid());
  return resp;
}

absl::StatusOr<v1::ExecResponse> ControlServer::Exec(const v1::ExecRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  if (req.args().empty()) return absl::InvalidArgumentError("exec: args must not be empty");
  {
    absl::MutexLock l(&mu_);
    if (phase_ != Phase::kRunning) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot exec in container \"", cfg_.id, "\": it is not running"));
    }
  }
  absl::StatusOr<HostStdio> host = OpenStdio(req.stdio(), nullptr);
  if (!host.ok()) return host.status();
  sentry::ProcessSpec spec;
  spec.argv.assign(req.args().begin(), req.args().end());
  spec.envp.assign(req.env().begin(), req.env().end());
  spec.cwd = req.cwd().empty() ? "/" : req.cwd();
  spec.creds = CredsOf(req.user());
  // runc exec gives the new process config.json's capabilities and
  // noNewPrivileges (the request carries only the user).
  const sentry::Credentials& ic = cfg_.init.creds;
  spec.creds.SetCaps(ic.cap_bounding, ic.cap_effective, ic.cap_inheritable, ic.cap_permitted,
                     ic.cap_ambient);
  spec.creds.no_new_privs = ic.no_new_privs;
  spec.rlimits = cfg_.init.rlimits;
  for (int i = 0; i < 3; ++i) spec.stdio[i] = host->fds[i];
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = kernel_.StartProcess(spec);
  if (!tg.ok()) return tg.status();
  absl::MutexLock l(&mu_);
  procs_[(*tg)->tgid()] = *tg;
  exec_ids_[(*tg)->tgid()] = req.exec_id();
  v1::ExecResponse resp;
  resp.set_pid((*tg)->tgid());
  return resp;
}

absl::StatusOr<std::shared_ptr<ThreadGroup>> ControlServer::Find(int pid) {
  if (pid == 0) {
    absl::MutexLock l(&mu_);
    if (!init_) return absl::NotFoundError("the container's process has not been started");
    return init_;
  }
  {
    absl::MutexLock l(&mu_);
    auto it = procs_.find(pid);
    if (it != procs_.end()) return it->second;
  }
  absl::MutexLock l(&kernel_.mu());
  auto tg = kernel_.ThreadGroupByTgid(pid);
  if (!tg) return absl::NotFoundError(absl::StrCat("no process ", pid, " in the sandbox"));
  return tg;
}

absl::StatusOr<v1::SignalResponse> ControlServer::Signal(const v1::SignalRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  int sig = static_cast<int>(req.signal());
  if (sig <= 0 || sig >= 65) return absl::InvalidArgumentError(absl::StrCat("invalid signal ", sig));
  {
    absl::MutexLock l(&mu_);
    if (phase_ == Phase::kCreated && !starting_ && (req.pid() == 0 || req.all())) {
      // Not started yet: the init never runs; it "dies" of the signal, as a
      // runc init waiting on its exec fifo would (SIGKILL, SIGTERM, ...).
      if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
        phase_ = Phase::kStopped;
        init_wait_status_ = sig;
        init_exited_at_ns_ = RealtimeNs();
      }
      return v1::SignalResponse();
    }
    if (phase_ == Phase::kStopped && req.pid() == 0 && !req.all()) {
      return absl::FailedPreconditionError(
          absl::StrCat("container \"", cfg_.id, "\" is not running"));
    }
  }
  // From the host, an ancestor pid namespace (pid_namespaces(7)): the init
  // gets a signal only if it has a handler for it, or SIGKILL and SIGSTOP
  // (SignalSender::kKernel). So `kill ID TERM` does nothing to a `sleep`
  // container, with runc as with us.
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = SI_USER;
  if (req.all()) {
    absl::MutexLock l(&kernel_.mu());
    std::vector<std::shared_ptr<ThreadGroup>> groups;
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() == t->tgid()) groups.push_back(t->shared_tg());
    }
    for (auto& g : groups) {
      kernel_.SendGroupSignal(*g, info).ok();
    }
    return v1::SignalResponse();
  }
  auto tg = Find(req.pid());
  if (!tg.ok()) return tg.status();
  absl::MutexLock l(&kernel_.mu());
  if ((*tg)->state != ThreadGroup::State::kAlive) {
    return absl::NotFoundError(absl::StrCat("process ", req.pid(), " has exited"));
  }
  auto s = kernel_.SendGroupSignal(**tg, info);
  if (!s.ok()) return absl::InternalError(absl::StrCat("kill: ", std::strerror(s.error().value())));
  return v1::SignalResponse();
}

absl::StatusOr<v1::WaitResponse> ControlServer::Wait(const v1::WaitRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  v1::WaitResponse resp;
  if (req.pid() == 0) {
    // The init: wait for the container to stop (also when it never started).
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](ControlServer* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return c->phase_ == Phase::kStopped || c->shutdown_;
        },
        this));
    if (phase_ != Phase::kStopped) return absl::UnavailableError("the sandbox is shutting down");
    resp.set_wait_status(init_wait_status_);
    resp.set_exit_status(ExitStatusOf(init_wait_status_));
    resp.set_exited_at_unix_nanos(init_exited_at_ns_);
    return resp;
  }
  auto tg = Find(req.pid());
  if (!tg.ok()) return tg.status();
  int ws = kernel_.WaitProcess(*tg);
  absl::MutexLock l(&mu_);
  auto [it, fresh] = exited_at_ns_.emplace(req.pid(), RealtimeNs());
  resp.set_wait_status(ws);
  resp.set_exit_status(ExitStatusOf(ws));
  resp.set_exited_at_unix_nanos(it->second);
  return resp;
}

absl::StatusOr<v1::StateResponse> ControlServer::State(const v1::StateRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  v1::StateResponse resp;
  absl::MutexLock l(&mu_);
  resp.set_container_id(cfg_.id);
  resp.set_sandbox_pid(getpid());
  switch (phase_) {
    case Phase::kCreated:
      resp.set_status("created");
      break;
    case Phase::kRunning:
      resp.set_status(paused_ ? "paused" : "running");
      break;
    case Phase::kStopped:
      resp.set_status("stopped");
      resp.set_exit_status(ExitStatusOf(init_wait_status_));
      resp.set_exited_at_unix_nanos(init_exited_at_ns_);
      break;
  }
  if (init_) resp.set_init_pid(init_->tgid());
  return resp;
}

absl::StatusOr<v1::ProcessesResponse> ControlServer::Processes(const v1::ProcessesRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  std::map<int, std::string> exec_ids;
  {
    absl::MutexLock l(&mu_);
    exec_ids = exec_ids_;
  }
  v1::ProcessesResponse resp;
  timespec now_mono, now_real;
  clock_gettime(CLOCK_MONOTONIC, &now_mono);
  clock_gettime(CLOCK_REALTIME, &now_real);
  int64_t mono_to_real = (now_real.tv_sec - now_mono.tv_sec) * 1000000000LL +
                         (now_real.tv_nsec - now_mono.tv_nsec);
  absl::MutexLock l(&kernel_.mu());
  for (auto& t : kernel_.Tasks()) {
    if (t->tid() != t->tgid()) continue;
    ThreadGroup& tg = t->tg();
    v1::Process* p = resp.add_processes();
    p->set_pid(tg.tgid());
    auto parent = tg.parent.lock();
    p->set_ppid(parent ? parent->tgid() : 0);
    p->set_uid(t->creds().ruid);
    p->set_cmd(t->comm());
    p->set_state(std::string(1, t->StateChar()));
    p->set_utime_ns(tg.cpu_ns);
    p->set_start_unix_nanos(tg.start_time_ns + mono_to_real);
    auto e = exec_ids.find(tg.tgid());
    if (e != exec_ids.end()) p->set_exec_id(e->second);
  }
  return resp;
}

absl::StatusOr<v1::StatsResponse> ControlServer::Stats(const v1::StatsRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  v1::StatsResponse resp;
  uint64_t cpu = 0, pids = 0;
  {
    absl::MutexLock l(&kernel_.mu());
    // pids.current: tasks, threads and unreaped zombies included.
    pids = static_cast<uint64_t>(kernel_.PidsChargedLocked());
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() != t->tgid()) continue;
      // Time banked by address spaces that are gone (exec, exit) and by
      // reaped children; the running images' time is not sampled here.
      cpu += t->tg().cpu_ns + t->tg().children_cpu_ns;
    }
  }
  resp.set_cpu_usage_ns(cpu);
  resp.set_cpu_user_ns(cpu);
  resp.set_pids_current(pids);
  resp.set_pids_limit(static_cast<uint64_t>(kernel_.pids_limit()));
  std::string mem = MemoryCgroupDir();
  if (!mem.empty()) {
    resp.set_memory_usage_bytes(ReadU64(mem + "/memory.usage_in_bytes"));
    uint64_t limit = ReadU64(mem + "/memory.limit_in_bytes");
    // v1 reports "no limit" as a huge page-aligned number.
    resp.set_memory_limit_bytes(limit >= (1ULL << 62) ? 0 : limit);
  }
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  resp.set_memory_max_rss_bytes(static_cast<uint64_t>(ru.ru_maxrss) * 1024);
  return resp;
}

absl::StatusOr<v1::UpdateResponse> ControlServer::Update(const v1::UpdateRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  // linux.resources.pids.limit: the guest's tasks are counted here, not by
  // the host cgroup (which also holds the sentry's threads and the stubs).
  if (req.has_pids_limit()) kernel_.SetPidsLimit(req.pids_limit());
  return v1::UpdateResponse();
}

absl::StatusOr<v1::PauseResponse> ControlServer::Pause(const v1::PauseRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  if (phase_ != Phase::kRunning || paused_) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", cfg_.id, "\" is not running"));
  }
  // Every task parks at a syscall boundary (a seed: see sentry/sfork).
  if (absl::Status s = kernel_.Quiesce(absl::Seconds(5)); !s.ok()) return s;
  paused_ = true;
  PrepareForkSpareAsync();
  return v1::PauseResponse();
}

absl::StatusOr<v1::ResumeResponse> ControlServer::Resume(const v1::ResumeRequest& req) {
  if (auto s = CheckId(req.container_id()); !s.ok()) return s;
  ForkWatch::Token w = fork_watch_.Begin("Resume");
  fork_watch_.Step(w, "waiting for the fork lock and for the forks in flight");
  absl::MutexLock fl(&fork_mu_);
  // A fork in flight still copies the seed's data (sentry/sfork).
  fork_mu_.Await(absl::Condition(this, &ControlServer::NoForkInFlight));
  fork_watch_.End(w);
  absl::MutexLock l(&mu_);
  if (!paused_) {
    return absl::FailedPreconditionError(absl::StrCat("container \"", cfg_.id, "\" is not paused"));
  }
  paused_ = false;
  sentry::DropForkSpare(kernel_);  // a copy of the state the guest now changes
  kernel_.Unquiesce();
  return v1::ResumeResponse();
}

absl::StatusOr<v1::ShutdownResponse> ControlServer::Shutdown(const v1::ShutdownRequest&) {
  {
    absl::MutexLock l(&kernel_.mu());
    siginfo_t info{};
    info.si_signo = SIGKILL;
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() == t->tgid()) kernel_.SendGroupSignal(t->tg(), info).ok();
    }
  }
  {
    absl::MutexLock l(&mu_);
    ending_ = true;
  }
  {
    ForkWatch::Token w = fork_watch_.Begin("Shutdown");
    fork_watch_.Step(w, "waiting for the fork lock and for the forks in flight");
    absl::MutexLock fl(&fork_mu_);
    fork_mu_.Await(absl::Condition(this, &ControlServer::NoForkInFlight));
    // The reply says that the sandbox's host processes are gone (spares;
    // a fork's zygote and stubs), so that the caller's next step (delete:
    // the cgroup) finds none of them.
    fork_watch_.Step(w, "ending the sandbox's host processes");
    sentry::EndHostProcesses(kernel_, absl::Now() + kEndHostProcessesTimeout);
    fork_watch_.End(w);
  }
  kernel_.Unquiesce();  // a parked task must run to die
  absl::MutexLock l(&mu_);
  shutdown_ = true;
  return v1::ShutdownResponse();
}

}  // namespace seedvisor::control
