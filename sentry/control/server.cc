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
#include "sentry/control/server_internal.h"
#include "sentry/sfork/sfork.h"

namespace seedvisor::control {
namespace {

using sentry::ThreadGroup;

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
  // A Fork brings its network device's packet socket (ForkRequest.net_device).
  s.set_max_request_fds(1);
  s.RegisterMethod<v1::ForkRequest, v1::ForkResponse>(
      kService, "Fork",
      [this](const ttrpc::CallContext& ctx,
             const v1::ForkRequest& req) -> absl::StatusOr<v1::ForkResponse> {
        return Fork(req, absl::Nanoseconds(ctx.timeout_nano), &ctx.fds);
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

}  // namespace seedvisor::control
