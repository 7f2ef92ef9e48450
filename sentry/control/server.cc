#include "sentry/control/server.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/base/mono_clock.h"
#include "sentry/control/mounts.h"
#include "sentry/control/start_hooks.h"
#include "sentry/control/stdio.h"
#include "sentry/sfork/sfork.h"
#include "sentry/vfs/vfs.h"

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

// pid_namespaces(7): a signal from an ancestor namespace (the runtime is
// one) reaches the namespace's init only if init has a handler for it;
// SIGKILL and SIGSTOP are forced. So `kill ID TERM` does nothing to a
// `sleep` container, with runc as with us. Each container's init counts
// as one (runsc gives each container of a pod its own pid namespace).
// Caller holds Kernel::mu().
bool InitIgnores(ThreadGroup& tg, bool is_init, int sig) {
  if (!is_init || sig == SIGKILL || sig == SIGSTOP) return false;
  return tg.handlers == nullptr || tg.handlers->actions[sig].handler == 0;  // SIG_DFL
}

}  // namespace

uint32_t ExitStatusOf(int ws) {
  if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
  return WEXITSTATUS(ws);
}

ControlServer::ControlServer(sentry::Kernel& kernel, ContainerConfig cfg)
    : kernel_(kernel), cfg_(std::move(cfg)), first_(std::make_shared<Container>()) {
  first_->cfg = cfg_;
  first_->init_stdio_owner = cfg_.init_stdio_owner;
  first_->cfg.init_stdio_owner.reset();
  containers_[cfg_.id] = first_;
}

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
  SV_REGISTER(CreateContainer);
  SV_REGISTER(DeleteContainer);
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

absl::StatusOr<std::shared_ptr<ControlServer::Container>> ControlServer::Lookup(
    const std::string& id) {
  // An empty id means the sandbox's first container.
  if (id.empty()) return first_;
  absl::MutexLock l(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found in this sandbox"));
  }
  return it->second;
}

absl::Status ControlServer::SandboxWide(const Container& c, const char* what) const {
  if (IsFirst(c)) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(
      what, " of container \"", c.cfg.id, "\": it shares its sandbox with container \"", cfg_.id,
      "\"; only that one's ", what, " (the whole sandbox's) is supported"));
}

bool ControlServer::InContainer(const ThreadGroup& tg, const Container& c) {
  return tg.container_id == c.cfg.init.container_id;
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

void ControlServer::WatchInit(std::shared_ptr<Container> c, std::shared_ptr<ThreadGroup> tg) {
  RunInBackground([this, c, tg] {
    int ws = kernel_.WaitProcess(tg);
    absl::MutexLock l(&mu_);
    if (c->phase != Phase::kStopped) {
      c->phase = Phase::kStopped;
      c->init_wait_status = ws;
      c->init_exited_at_ns = RealtimeNs();
    }
    Log::Debug("container %s: init exited, wait status %#x", c->cfg.id, ws);
  });
}

absl::StatusOr<v1::StartResponse> ControlServer::Start(const v1::StartRequest& req) {
  SeedChange change(*this);
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  {
    absl::MutexLock l(&mu_);
    if (absl::Status s = RefuseIfEnding("it cannot be started"); !s.ok()) return s;
    if (c.phase != Phase::kCreated || c.starting) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", c.cfg.id, "\" cannot be started: it is not in the created state"));
    }
    // The sandbox's init (pid 1) is the first container's.
    if (!IsFirst(c) && first_->phase != Phase::kRunning) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container \"", c.cfg.id, "\" cannot be started: the sandbox's first container \"",
          cfg_.id, "\" is not running"));
    }
    c.starting = true;
  }
  if (absl::Status s = RunStartHooks(kernel_, c.cfg.init, req); !s.ok()) {
    // runtime-spec: a failing startContainer hook stops the container.
    absl::MutexLock l(&mu_);
    c.starting = false;
    c.phase = Phase::kStopped;
    c.init_wait_status = (127 & 0xff) << 8;
    c.init_exited_at_ns = RealtimeNs();
    return s;
  }
  v1::Stdio io = req.stdio();
  if (c.cfg.terminal && !req.has_stdio()) {
    io.set_terminal(true);
    io.set_console_socket(c.cfg.console_socket);
  }
  absl::StatusOr<HostStdio> host = OpenStdio(io, c.cfg.init.stdio);
  sentry::ProcessSpec spec = c.cfg.init;
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = absl::UnknownError("not started");
  if (host.ok()) {
    for (int i = 0; i < 3; ++i) spec.stdio[i] = host->fds[i];
    tg = kernel_.StartProcess(spec);
  } else {
    tg = host.status();
  }
  absl::MutexLock l(&mu_);
  c.starting = false;
  c.init_stdio_owner.reset();
  if (!tg.ok()) {
    // Like runc: a container whose process cannot start is stopped.
    c.phase = Phase::kStopped;
    c.init_wait_status = (127 & 0xff) << 8;
    c.init_exited_at_ns = RealtimeNs();
    return absl::FailedPreconditionError(absl::StrCat("starting container \"", c.cfg.id,
                                                      "\": ", tg.status().message()));
  }
  c.init = *tg;
  c.procs[(*tg)->tgid()] = *tg;
  c.phase = Phase::kRunning;
  WatchInit(*found, *tg);
  v1::StartResponse resp;
  resp.set_pid((*tg)->tgid());
  return resp;
}

absl::StatusOr<v1::ExecResponse> ControlServer::Exec(const v1::ExecRequest& req) {
  SeedChange change(*this);
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  if (req.args().empty()) return absl::InvalidArgumentError("exec: args must not be empty");
  {
    absl::MutexLock l(&mu_);
    if (absl::Status s = RefuseIfEnding("nothing can be exec'd in it"); !s.ok()) return s;
    if (c.phase != Phase::kRunning) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot exec in container \"", c.cfg.id, "\": it is not running"));
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
  const sentry::Credentials& ic = c.cfg.init.creds;
  spec.creds.SetCaps(ic.cap_bounding, ic.cap_effective, ic.cap_inheritable, ic.cap_permitted,
                     ic.cap_ambient);
  spec.creds.no_new_privs = ic.no_new_privs;
  spec.rlimits = c.cfg.init.rlimits;
  spec.root = c.cfg.init.root;
  spec.container_id = c.cfg.init.container_id;
  spec.pid_ns = c.cfg.init.pid_ns;  // it joins the container's (setns + fork)
  for (int i = 0; i < 3; ++i) spec.stdio[i] = host->fds[i];
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg = kernel_.StartProcess(spec);
  if (!tg.ok()) return tg.status();
  absl::MutexLock l(&mu_);
  c.procs[(*tg)->tgid()] = *tg;
  c.exec_ids[(*tg)->tgid()] = req.exec_id();
  v1::ExecResponse resp;
  resp.set_pid((*tg)->tgid());
  return resp;
}

absl::StatusOr<std::shared_ptr<ThreadGroup>> ControlServer::Find(Container& c, int pid) {
  if (pid == 0) {
    absl::MutexLock l(&mu_);
    if (!c.init) return absl::NotFoundError("the container's process has not been started");
    return c.init;
  }
  {
    absl::MutexLock l(&mu_);
    auto it = c.procs.find(pid);
    if (it != c.procs.end()) return it->second;
  }
  absl::MutexLock l(&kernel_.mu());
  auto tg = kernel_.ThreadGroupByTgid(pid);
  if (!tg || !InContainer(*tg, c)) {
    return absl::NotFoundError(absl::StrCat("no process ", pid, " in container \"", c.cfg.id, "\""));
  }
  return tg;
}

absl::StatusOr<v1::SignalResponse> ControlServer::Signal(const v1::SignalRequest& req) {
  SeedChange change(*this);
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  int sig = static_cast<int>(req.signal());
  if (sig <= 0 || sig >= 65) return absl::InvalidArgumentError(absl::StrCat("invalid signal ", sig));
  std::shared_ptr<ThreadGroup> init;
  {
    absl::MutexLock l(&mu_);
    if (c.phase == Phase::kCreated && !c.starting && (req.pid() == 0 || req.all())) {
      // Not started yet: the init never runs; it "dies" of the signal, as a
      // runc init waiting on its exec fifo would (SIGKILL, SIGTERM, ...).
      if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
        c.phase = Phase::kStopped;
        c.init_wait_status = sig;
        c.init_exited_at_ns = RealtimeNs();
      }
      return v1::SignalResponse();
    }
    if (c.phase == Phase::kStopped && req.pid() == 0 && !req.all()) {
      return absl::FailedPreconditionError(
          absl::StrCat("container \"", c.cfg.id, "\" is not running"));
    }
    init = c.init;
  }
  // From the host, an ancestor pid namespace (pid_namespaces(7)): the init
  // gets a signal only if it has a handler for it, or SIGKILL and SIGSTOP.
  // The kernel drops the rest for the sandbox's pid 1 (SignalSender::kKernel);
  // InitIgnores does it for the init of every other container of a pod. So
  // `kill ID TERM` does nothing to a `sleep` container, with runc as with us.
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = SI_USER;
  if (req.all()) {
    absl::MutexLock l(&kernel_.mu());
    std::vector<std::shared_ptr<ThreadGroup>> groups;
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() == t->tgid() && InContainer(t->tg(), c)) groups.push_back(t->shared_tg());
    }
    for (auto& g : groups) {
      if (!InitIgnores(*g, g == init, sig)) kernel_.SendGroupSignal(*g, info).ok();
    }
    return v1::SignalResponse();
  }
  auto tg = Find(c, req.pid());
  if (!tg.ok()) return tg.status();
  absl::MutexLock l(&kernel_.mu());
  if ((*tg)->state != ThreadGroup::State::kAlive) {
    return absl::NotFoundError(absl::StrCat("process ", req.pid(), " has exited"));
  }
  if (InitIgnores(**tg, *tg == init, sig)) return v1::SignalResponse();
  auto s = kernel_.SendGroupSignal(**tg, info);
  if (!s.ok()) return absl::InternalError(absl::StrCat("kill: ", std::strerror(s.error().value())));
  return v1::SignalResponse();
}

absl::StatusOr<v1::WaitResponse> ControlServer::Wait(const v1::WaitRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  v1::WaitResponse resp;
  if (req.pid() == 0) {
    // The init: wait for the container to stop (also when it never started).
    struct Arg {
      ControlServer* s;
      Container* c;
    } arg{this, &c};
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return a->c->phase == Phase::kStopped || a->s->shutdown_;
        },
        &arg));
    if (c.phase != Phase::kStopped) return absl::UnavailableError("the sandbox is shutting down");
    resp.set_wait_status(c.init_wait_status);
    resp.set_exit_status(ExitStatusOf(c.init_wait_status));
    resp.set_exited_at_unix_nanos(c.init_exited_at_ns);
    return resp;
  }
  auto tg = Find(c, req.pid());
  if (!tg.ok()) return tg.status();
  int ws = kernel_.WaitProcess(*tg);
  absl::MutexLock l(&mu_);
  auto [it, fresh] = c.exited_at_ns.emplace(req.pid(), RealtimeNs());
  resp.set_wait_status(ws);
  resp.set_exit_status(ExitStatusOf(ws));
  resp.set_exited_at_unix_nanos(it->second);
  return resp;
}

absl::StatusOr<v1::StateResponse> ControlServer::State(const v1::StateRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  v1::StateResponse resp;
  absl::MutexLock l(&mu_);
  resp.set_container_id(c.cfg.id);
  resp.set_sandbox_pid(getpid());
  switch (c.phase) {
    case Phase::kCreated:
      resp.set_status("created");
      break;
    case Phase::kRunning:
      resp.set_status(paused_ ? "paused" : "running");
      break;
    case Phase::kStopped:
      resp.set_status("stopped");
      resp.set_exit_status(ExitStatusOf(c.init_wait_status));
      resp.set_exited_at_unix_nanos(c.init_exited_at_ns);
      break;
  }
  if (c.init) resp.set_init_pid(c.init->tgid());
  return resp;
}

absl::StatusOr<v1::ProcessesResponse> ControlServer::Processes(const v1::ProcessesRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  std::map<int, std::string> exec_ids;
  {
    absl::MutexLock l(&mu_);
    exec_ids = c.exec_ids;
  }
  v1::ProcessesResponse resp;
  timespec now_mono, now_real;
  clock_gettime(CLOCK_MONOTONIC, &now_mono);
  clock_gettime(CLOCK_REALTIME, &now_real);
  int64_t mono_to_real = (now_real.tv_sec - now_mono.tv_sec) * 1000000000LL +
                         (now_real.tv_nsec - now_mono.tv_nsec);
  absl::MutexLock l(&kernel_.mu());
  for (auto& t : kernel_.Tasks()) {
    if (t->tid() != t->tgid() || !InContainer(t->tg(), c)) continue;
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
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  v1::StatsResponse resp;
  uint64_t cpu = 0, pids = 0, pids_limit = 0;
  {
    absl::MutexLock l(&kernel_.mu());
    // pids.current (tasks, threads and unreaped zombies) and pids.max: the
    // first container's are the sandbox's; another's its own.
    const std::string& cid = c.cfg.init.container_id;
    pids = static_cast<uint64_t>(IsFirst(c) ? kernel_.PidsChargedLocked()
                                            : kernel_.ContainerPidsChargedLocked(cid));
    pids_limit = static_cast<uint64_t>(IsFirst(c) ? kernel_.pids_limit()
                                                  : kernel_.ContainerPidsLimitLocked(cid));
    for (auto& t : kernel_.Tasks()) {
      if (!InContainer(t->tg(), c)) continue;
      if (t->tid() != t->tgid()) continue;
      // Time banked by address spaces that are gone (exec, exit) and by
      // reaped children; the running images' time is not sampled here.
      cpu += t->tg().cpu_ns + t->tg().children_cpu_ns;
    }
  }
  resp.set_cpu_usage_ns(cpu);
  resp.set_cpu_user_ns(cpu);
  resp.set_pids_current(pids);
  resp.set_pids_limit(pids_limit);
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
  SeedChange change(*this);
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  // linux.resources.pids.limit: the guest's tasks are counted here, not by
  // the host cgroup (which also holds the sentry's threads and the stubs).
  if (req.has_pids_limit()) {
    const Container& c = **found;
    if (IsFirst(c)) {
      kernel_.SetPidsLimit(req.pids_limit());
    } else {
      absl::MutexLock l(&kernel_.mu());
      kernel_.SetContainerPidsLimit(c.cfg.init.container_id, req.pids_limit());
    }
  }
  return v1::UpdateResponse();
}

absl::StatusOr<v1::PauseResponse> ControlServer::Pause(const v1::PauseRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  if (absl::Status s = SandboxWide(**found, "pause"); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  // Shutdown's SIGKILLs need the tasks running to die: parking them now
  // would keep a dying guest parked (and make a seed nothing may fork).
  if (absl::Status s = RefuseIfEnding("it cannot be paused"); !s.ok()) return s;
  if (first_->phase != Phase::kRunning || paused_) {
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
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  if (absl::Status s = SandboxWide(**found, "resume"); !s.ok()) return s;
  ForkWatch::Token w = fork_watch_.Begin("Resume");
  fork_watch_.Step(w, "waiting for the fork lock and for the forks in flight");
  absl::MutexLock fl(&fork_mu_);
  // A fork in flight still copies the seed's data (sentry/sfork).
  fork_mu_.Await(absl::Condition(this, &ControlServer::NoForkInFlight));
  fork_watch_.End(w);
  absl::MutexLock l(&mu_);
  if (absl::Status s = RefuseIfEnding("it cannot be resumed"); !s.ok()) return s;
  if (!paused_) {
    return absl::FailedPreconditionError(absl::StrCat("container \"", cfg_.id, "\" is not paused"));
  }
  paused_ = false;
  sentry::DropForkSpare(kernel_);  // a copy of the state the guest now changes
  kernel_.Unquiesce();
  return v1::ResumeResponse();
}

absl::Status ControlServer::RefuseIfEnding(absl::string_view consequence,
                                           absl::string_view prefix) const {
  if (!ending_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(prefix, "container \"", cfg_.id, "\" is shutting down: ", consequence));
}

absl::StatusOr<v1::ShutdownResponse> ControlServer::Shutdown(const v1::ShutdownRequest&) {
  SeedChange change(*this);
  // First: no Fork starts from here on. Every step that changes the seed
  // follows under the fork lock, so a Fork either host-forked the whole
  // seed before them (it is waited for) or takes the lock after them and
  // refuses (RefuseIfEnding): none copies a seed half ended (its guest
  // killed, its stubs gone or its tasks running again).
  {
    absl::MutexLock l(&mu_);
    ending_ = true;
  }
  if (shutdown_hook_) shutdown_hook_("ending: no fork starts");
  {
    ForkWatch::Token w = fork_watch_.Begin("Shutdown");
    fork_watch_.Step(w, "waiting for the fork lock and for the forks in flight");
    absl::MutexLock fl(&fork_mu_);
    fork_mu_.Await(absl::Condition(this, &ControlServer::NoForkInFlight));
    fork_watch_.Step(w, "killing the guest");
    {
      absl::MutexLock l(&kernel_.mu());
      siginfo_t info{};
      info.si_signo = SIGKILL;
      for (auto& t : kernel_.Tasks()) {
        if (t->tid() == t->tgid()) kernel_.SendGroupSignal(t->tg(), info).ok();
      }
      // A Start or Exec that asked RefuseIfEnding before ending_ was set
      // and starts its process only now is refused by the kernel.
      kernel_.RefuseNewProcessesLocked();
    }
    // The reply says that the sandbox's host processes are gone (spares;
    // a fork's zygote and stubs), so that the caller's next step (delete:
    // the cgroup) finds none of them.
    fork_watch_.Step(w, "ending the sandbox's host processes");
    sentry::EndHostProcesses(kernel_, sentry::MonotonicNow() + kEndHostProcessesTimeout);
    kernel_.Unquiesce();  // a parked task must run to die
    fork_watch_.End(w);
  }
  if (shutdown_hook_) shutdown_hook_("ended: the guest killed, the kernel unquiesced");
  std::vector<std::shared_ptr<HostAnchor>> anchors;
  {
    absl::MutexLock l(&mu_);
    shutdown_ = true;
    for (auto& [id, c] : containers_) {
      if (c->anchor != nullptr) anchors.push_back(std::move(c->anchor));
    }
  }
  EndAnchors(std::move(anchors));
  return v1::ShutdownResponse();
}

absl::StatusOr<v1::CreateContainerResponse> ControlServer::CreateContainer(
    const v1::CreateContainerRequest& req) {
  SeedChange change(*this);
  const std::string& id = req.container_id();
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("CreateContainer: container id \"", id, "\" is not a plain name"));
  }
  if (req.root().empty() || req.root()[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "CreateContainer ", id, ": root \"", req.root(), "\" is not an absolute host path"));
  }
  if (req.args().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("CreateContainer ", id, ": no process args"));
  }
  for (const v1::Mount& m : req.mounts()) {
    // Resolved inside the container's root (Vfs::MountContext), but a ".."
    // in what the caller sent is a mistake worth naming.
    if (m.destination().empty() || m.destination()[0] != '/' ||
        m.destination().find("/../") != std::string::npos ||
        (m.destination().size() >= 3 &&
         m.destination().compare(m.destination().size() - 3, 3, "/..") == 0)) {
      return absl::InvalidArgumentError(absl::StrCat("CreateContainer ", id, ": mount destination \"",
                                                     m.destination(), "\" is not a clean absolute path"));
    }
  }
  {
    absl::MutexLock l(&mu_);
    if (absl::Status s = RefuseIfEnding("no container can be created in it"); !s.ok()) return s;
    if (containers_.count(id)) {
      return absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" is already in this sandbox"));
    }
  }
  if (req.own_pid_namespace() && !req.pid_namespace_of().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CreateContainer ", id, ": a pid namespace of its own and container \"",
        req.pid_namespace_of(), "\"'s at once"));
  }
  // Its own pid namespace (a child of the sandbox's, as runsc makes one
  // per container of a pod), or another container's: its /proc is that
  // namespace's.
  std::shared_ptr<sentry::PidNamespace> pid_ns;
  if (req.own_pid_namespace()) pid_ns = std::make_shared<sentry::PidNamespace>(nullptr);
  if (!req.pid_namespace_of().empty()) {
    absl::StatusOr<std::shared_ptr<Container>> target = Lookup(req.pid_namespace_of());
    if (!target.ok()) {
      return absl::NotFoundError(absl::StrCat("CreateContainer ", id, ": the pid namespace of ",
                                              target.status().message()));
    }
    absl::MutexLock l(&mu_);
    pid_ns = (*target)->cfg.init.pid_ns;
  }
  sentry::Vfs& vfs = kernel_.vfs();
  absl::StatusOr<std::shared_ptr<sentry::Mount>> root =
      vfs.AddContainerRoot(id, HostPathOf(req.caller_pid(), req.root()), pid_ns);
  if (!root.ok()) {
    return absl::Status(root.status().code(),
                        absl::StrCat("CreateContainer ", id, ": ", root.status().message()));
  }
  const std::string under = absl::StrCat(sentry::Vfs::kContainersDir, "/", id);
  std::vector<MountSpec> mounts;
  for (const v1::Mount& m : req.mounts()) {
    MountSpec& spec = mounts.emplace_back(MountSpec{
        m.destination(), m.type(), m.source(), {m.options().begin(), m.options().end()}});
    if (IsBindMount(spec)) spec.source = HostPathOf(req.caller_pid(), spec.source);
  }
  absl::Status s = ApplyMounts(vfs, mounts, under);
  if (s.ok()) {
    s = ApplyPathRules(vfs, {req.readonly_paths().begin(), req.readonly_paths().end()},
                       {req.masked_paths().begin(), req.masked_paths().end()}, under);
  }
  if (!s.ok()) {
    vfs.RemoveContainerRoot(id);
    return absl::InvalidArgumentError(absl::StrCat("CreateContainer ", id, ": ", s.message()));
  }
  if (req.read_only_root()) (*root)->set_read_only();

  auto c = std::make_shared<Container>();
  c->cfg.id = id;
  sentry::ProcessSpec& init = c->cfg.init;
  init.argv.assign(req.args().begin(), req.args().end());
  init.envp.assign(req.env().begin(), req.env().end());
  init.cwd = req.cwd().empty() ? "/" : req.cwd();
  init.creds = CredsOf(req.user());
  init.creds.SetCaps(req.cap_bounding(), req.cap_effective(), req.cap_inheritable(),
                     req.cap_permitted(), req.cap_ambient());
  init.creds.no_new_privs = req.no_new_privileges();
  for (const v1::Rlimit& r : req.rlimits()) {
    init.rlimits.push_back({r.resource(), {r.soft(), r.hard()}});
  }
  init.root = under;
  init.container_id = id;
  init.pid_ns = std::move(pid_ns);
  const bool own_host_id = init.pid_ns != nullptr;
  // The init's stdio, held from now until Start (the pty's master goes to
  // the console socket now, as boot does for the first container).
  if (req.has_stdio()) {
    absl::StatusOr<HostStdio> io = OpenStdio(req.stdio(), nullptr);
    if (!io.ok()) {
      vfs.RemoveContainerRoot(id);
      return absl::Status(io.status().code(),
                          absl::StrCat("CreateContainer ", id, ": stdio: ", io.status().message()));
    }
    auto held = std::make_shared<HostStdio>(std::move(*io));
    for (int i = 0; i < 3; ++i) init.stdio[i] = held->fds[i];
    c->init_stdio_owner = held;
  } else {
    for (int i = 0; i < 3; ++i) init.stdio[i] = first_->cfg.init.stdio[i];
  }
  {
    absl::MutexLock l(&mu_);
    if (containers_.count(id)) {
      return absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" is already in this sandbox"));
    }
    // Its limit holds before anyone can see it (Start, Exec). The kernel's
    // lock is taken under mu_ here and never the other way round.
    if (req.pids_limit() > 0) {
      absl::MutexLock kl(&kernel_.mu());
      kernel_.SetContainerPidsLimit(id, req.pids_limit());
    }
    containers_[id] = c;
  }
  Log::Debug("container %s joined the sandbox of %s (root %s)", id, cfg_.id, req.root());
  v1::CreateContainerResponse resp;
  if (own_host_id) {
    // Outside the sandbox's pid namespace: a host id of its own (a
    // TARGET container names its namespace by it). Without one it
    // reports the sandbox's pid, as every container did before.
    std::shared_ptr<HostAnchor> anchor = StartAnchor();
    {
      absl::MutexLock l(&mu_);
      if (anchor != nullptr && containers_.count(id) && containers_[id] == c && !shutdown_) {
        resp.set_host_thread(anchor->tid());
        c->anchor = std::move(anchor);
      }
    }
    if (anchor != nullptr) EndAnchors({std::move(anchor)});
  }
  return resp;
}

std::shared_ptr<HostAnchor> ControlServer::StartAnchor() {
  // Its own thread, started under the host fork lock: no host fork
  // copies it half started (sentry/base/thread_identity.h).
  absl::MutexLock hf(&host_fork_mu_);
  std::shared_ptr<HostAnchor> anchor = HostAnchor::Start(absl::Seconds(10));
  if (anchor == nullptr) {
    Log::Warning("container of sandbox %s: no host thread of its own (the host refused one, "
                 "or it had no id within 10 s)", cfg_.id);
  }
  return anchor;
}

void ControlServer::EndAnchors(std::vector<std::shared_ptr<HostAnchor>> anchors) {
  if (anchors.empty()) return;
  // Under the host fork lock: no host fork copies one half ended.
  absl::MutexLock hf(&host_fork_mu_);
  for (auto& a : anchors) a->End();
}

absl::StatusOr<v1::DeleteContainerResponse> ControlServer::DeleteContainer(
    const v1::DeleteContainerRequest& req) {
  SeedChange change(*this);
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  Container& c = **found;
  if (IsFirst(c)) {
    // The only FailedPrecondition here: `seedsc delete` reads it as "this
    // container is the sandbox's first" and ends the sandbox instead.
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", c.cfg.id, "\" is the sandbox's first: it ends with the sandbox (Shutdown)"));
  }
  // Its processes die first; the container is forgotten once they are gone.
  std::vector<std::shared_ptr<ThreadGroup>> groups;
  {
    absl::MutexLock l(&kernel_.mu());
    siginfo_t info{};
    info.si_signo = SIGKILL;
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() == t->tgid() && InContainer(t->tg(), c)) groups.push_back(t->shared_tg());
    }
    for (auto& g : groups) kernel_.SendGroupSignal(*g, info).ok();
  }
  for (auto& g : groups) {
    if (!kernel_.WaitProcessFor(g, absl::Seconds(10)).has_value()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "container \"", c.cfg.id, "\": process ", g->tgid(), " did not die within 10 s of SIGKILL"));
    }
  }
  {
    absl::MutexLock l(&kernel_.mu());
    kernel_.ForgetContainerPidsLocked(c.cfg.init.container_id);
  }
  std::shared_ptr<HostAnchor> anchor;
  {
    absl::MutexLock l(&mu_);
    if (c.phase != Phase::kStopped) {
      c.phase = Phase::kStopped;
      c.init_wait_status = SIGKILL;
      c.init_exited_at_ns = RealtimeNs();
    }
    anchor = std::move(c.anchor);
    containers_.erase(c.cfg.id);
    kernel_.vfs().RemoveContainerRoot(c.cfg.id);
  }
  // Its host id names no thread once the reply says it is gone.
  if (anchor != nullptr) EndAnchors({std::move(anchor)});
  return v1::DeleteContainerResponse();
}

}  // namespace seedvisor::control
