// ControlServer: a pod's application containers, made in the running
// sandbox (CreateContainer: a root, mounts, an init and maybe a pid
// namespace of their own) and removed again (DeleteContainer), and the
// host threads that give such a container a host id (StartAnchor).
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/control/mounts.h"
#include "sentry/control/server.h"
#include "sentry/control/server_internal.h"
#include "sentry/control/stdio.h"
#include "sentry/kernel/host_cgroups.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::control {

using sentry::ThreadGroup;

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
  // Its own host cgroups, where its processes' stubs (their guest memory,
  // the CPU time of their guest code) will live. On kvm the guest's memory
  // is the sentry's, so they would limit nothing: the pod's cgroup holds it.
  std::shared_ptr<const sentry::HostCgroups> cgroups;
  if (!req.cgroup().empty() && kernel_.platform().name() != "kvm") {
    absl::StatusOr<std::shared_ptr<const sentry::HostCgroups>> opened =
        sentry::HostCgroups::Open(req.cgroup());
    if (!opened.ok()) {
      vfs.RemoveContainerRoot(id);
      return absl::Status(opened.status().code(),
                          absl::StrCat("CreateContainer ", id, ": ", opened.status().message()));
    }
    cgroups = std::move(*opened);
  }
  {
    absl::MutexLock l(&mu_);
    if (containers_.count(id)) {
      return absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" is already in this sandbox"));
    }
    // Its limits hold before anyone can see it (Start, Exec). The kernel's
    // lock is taken under mu_ here and never the other way round.
    if (req.pids_limit() > 0 || cgroups != nullptr) {
      absl::MutexLock kl(&kernel_.mu());
      if (req.pids_limit() > 0) kernel_.SetContainerPidsLimit(id, req.pids_limit());
      if (cgroups != nullptr) kernel_.SetContainerHostCgroupsLocked(id, cgroups);
    }
    if (cgroups != nullptr) c->host_cgroup = req.cgroup();
    containers_[id] = c;
  }
  Log::Debug("container %s joined the sandbox of %s (root %s)", id, cfg_.id, req.root());
  v1::CreateContainerResponse resp;
  resp.set_host_cgroup(cgroups != nullptr);
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

absl::Status ControlServer::KillBesideForks(
    const std::vector<std::shared_ptr<ThreadGroup>>& groups) {
  if (groups.empty()) return absl::OkStatus();  // no fork waits for nothing
  const auto kill = [&] {
    absl::MutexLock l(&kernel_.mu());
    siginfo_t info{};
    info.si_signo = SIGKILL;
    info.si_code = SI_USER;
    for (auto& g : groups) kernel_.SendGroupSignal(*g, info).ok();
  };
  {
    absl::MutexLock l(&mu_);
    if (!paused_) {
      kill();
      return absl::OkStatus();
    }
  }
  ForkWatch::Token w = fork_watch_.Begin("a kill in the paused sandbox");
  fork_watch_.Step(w, "waiting for the fork lock and for the forks in flight");
  absl::MutexLock fl(&fork_mu_);
  fork_mu_.Await(absl::Condition(this, &ControlServer::NoForkInFlight));
  bool paused;
  {
    absl::MutexLock l(&mu_);  // a Resume meanwhile: it runs no more (it needs the fork lock)
    paused = paused_;
    kill();
  }
  fork_watch_.Step(w, "waiting for the killed tasks to end");
  const bool parked = !paused || kernel_.AwaitAllParked(absl::Seconds(10));
  fork_watch_.End(w);
  if (!parked) {
    return absl::DeadlineExceededError(
        "the sandbox is paused and its killed tasks did not end within 10 s");
  }
  return absl::OkStatus();
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
  // Its processes die first (also in a paused sandbox, whose other
  // containers stay paused); the container is forgotten once they are gone.
  std::vector<std::shared_ptr<ThreadGroup>> groups;
  {
    absl::MutexLock l(&kernel_.mu());
    for (auto& t : kernel_.Tasks()) {
      if (t->tid() == t->tgid() && InContainer(t->tg(), c)) groups.push_back(t->shared_tg());
    }
  }
  absl::Status killed = KillBesideForks(groups);
  if (!killed.ok()) {
    return absl::Status(killed.code(),
                        absl::StrCat("container \"", c.cfg.id, "\": ", killed.message()));
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
