// ControlServer: a container's processes: its init started (Start), more
// added (Exec), signalled, waited for, and what State and Processes say.
#include <signal.h>
#include <sys/wait.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/control/server.h"
#include "sentry/control/server_internal.h"
#include "sentry/control/start_hooks.h"
#include "sentry/control/stdio.h"

namespace seedvisor::control {
namespace {

using sentry::ThreadGroup;

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
  absl::StatusOr<std::shared_ptr<ThreadGroup>> tg;
  if (!req.all()) {
    tg = Find(c, req.pid());
    if (!tg.ok()) return tg.status();
  }
  std::vector<std::shared_ptr<ThreadGroup>> groups;
  {
    absl::MutexLock l(&kernel_.mu());
    if (req.all()) {
      for (auto& t : kernel_.Tasks()) {
        if (t->tid() == t->tgid() && InContainer(t->tg(), c)) groups.push_back(t->shared_tg());
      }
    } else if ((*tg)->state != ThreadGroup::State::kAlive) {
      return absl::NotFoundError(absl::StrCat("process ", req.pid(), " has exited"));
    } else {
      groups.push_back(*tg);
    }
    std::erase_if(groups, [&](const auto& g) { return InitIgnores(*g, g == init, sig); });
  }
  // A SIGKILL ends its tasks also in a paused sandbox (as in a frozen
  // cgroup v2); the others stay paused.
  if (sig == SIGKILL) {
    if (absl::Status s = KillBesideForks(groups); !s.ok()) return s;
    return v1::SignalResponse();
  }
  absl::MutexLock l(&kernel_.mu());
  for (auto& g : groups) {
    auto s = kernel_.SendGroupSignal(*g, info);
    if (!s.ok() && !req.all()) {
      return absl::InternalError(absl::StrCat("kill: ", std::strerror(s.error().value())));
    }
  }
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

}  // namespace seedvisor::control
