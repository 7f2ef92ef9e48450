// The Fork RPC: sandbox fork of a paused container (a seed) into a new
// container with its own control socket. The mechanics are sentry/sfork's;
// this file gives the child its identity (id, stdio, control server).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/base/mono_clock.h"
#include "sentry/control/fork_cgroup.h"
#include "sentry/control/net_device.h"
#include "sentry/control/server.h"
#include "sentry/control/stdio.h"
#include "sentry/sfork/sfork.h"
#include "sentry/socket/net_service.h"
#include "shim/ttrpc/socket.h"

namespace seedvisor::control {
namespace {

// How long after a fork the seed starts making the next fork's spare.
constexpr absl::Duration kSpareDelayAfterFork = absl::Milliseconds(10);
// A Fork (or a holder of the fork lock) in one step this long is logged.
constexpr absl::Duration kForkStall = absl::Seconds(5);
// A Fork with a caller's timeout answers this long before it (at most a
// tenth of the timeout): the reply's way back.
constexpr absl::Duration kAnswerMargin = absl::Milliseconds(200);

// Ends its ForkWatch entry however the scope is left.
class Watched {
 public:
  Watched(ForkWatch& w, std::string who) : w_(w), t_(w.Begin(std::move(who))) {}
  ~Watched() { w_.End(t_); }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;
  void Step(const char* step) { w_.Step(t_, step); }
  void Locked() { w_.Locked(t_); }
  void Unlocked() { w_.Unlocked(); }
  sentry::ForkProgress Progress() {
    return [this](const char* step) { Step(step); };
  }

 private:
  ForkWatch& w_;
  const ForkWatch::Token t_;
};

}  // namespace

namespace {

// An annotation's count: a one-line error naming it unless from lo to hi.
absl::StatusOr<int> ParseCount(const char* annotation, const std::string& value, int lo, int hi) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < lo || n > hi) {
    return absl::InvalidArgumentError(absl::StrCat("annotation ", annotation, ": \"", value,
                                                   "\" is not a number from ", lo, " to ", hi));
  }
  return n;
}

}  // namespace

absl::StatusOr<int> ParseForkSpares(const std::string& value) {
  return ParseCount(kForkSparesAnnotation, value, 1, ContainerConfig::kMaxForkSpares);
}

absl::StatusOr<int> ParseForkAhead(const std::string& value) {
  return ParseCount(kForkAheadAnnotation, value, 0, ContainerConfig::kMaxForkSpares);
}

ControlServer::SeedChange::~SeedChange() {
  s_.seed_version_.fetch_add(1);
  bool paused;
  {
    absl::MutexLock l(&s_.mu_);
    paused = s_.paused_ && !s_.ending_;
  }
  // Forks made ahead of the old state are killed and made anew.
  if (paused) s_.PrepareForkSpareAsync();
}

ControlServer::ControlServer(const ControlServer& seed, std::string new_id)
    : kernel_(seed.kernel_),
      cfg_([&] {
        ContainerConfig c = seed.cfg_;
        c.id = std::move(new_id);
        return c;
      }()),
      first_(std::make_shared<Container>(*seed.first_)) {
  // The seed's fields, read without its lock: this runs in the forked
  // sentry, whose only thread is the one that forked (holding that lock).
  first_->cfg.id = cfg_.id;
  paused_ = true;
  containers_[cfg_.id] = first_;
  // A pod's application containers, each started (CheckPodForkLocked),
  // under their ids. Their host threads (HostAnchor) are the seed's: none
  // was copied, and nothing here may wait for one to end. Their host
  // cgroups are the seed's until TakeMemberCgroupsInForkChild.
  for (const auto& [id, c] : seed.containers_) {
    if (c == seed.first_) continue;
    auto copy = std::make_shared<Container>(*c);
    copy->anchor = nullptr;
    copy->host_cgroup.clear();
    containers_[id] = std::move(copy);
  }
}

void ControlServer::ServeForkChild(ControlServer* child, ttrpc::Server* server,
                                   sentry::HostThread serve, bool paused) {
  std::shared_ptr<sentry::ThreadGroup> init;
  // A pod's other running containers, whose inits' exits the seed's
  // watchers (threads of the seed's) no longer see here.
  std::vector<std::pair<std::shared_ptr<Container>, std::shared_ptr<sentry::ThreadGroup>>> members;
  {
    absl::MutexLock l(&child->mu_);
    if (child->first_->phase == Phase::kRunning) init = child->first_->init;
    for (const auto& [id, c] : child->containers_) {
      if (c != child->first_ && c->phase == Phase::kRunning && c->init != nullptr) {
        members.emplace_back(c, c->init);
      }
    }
    if (!paused) child->paused_ = false;
  }
  // The guest first: what follows (two threads starting) is not on the way
  // to its first instruction. A running fork serves no Fork before its
  // accept loop exists, so no Fork of this sentry overlaps that thread's
  // start; a paused one (a new seed) is resumed only through it.
  if (!paused) child->kernel_.Unquiesce();
  // A new seed is one once every task's new host thread has attached and
  // parked: no Fork of it is accepted before (its caller's connection
  // waits in the listen backlog meanwhile).
  if (paused && !child->kernel_.AwaitAllParked(absl::Seconds(10))) {
    Log::Warning("container %s: its tasks did not park within 10 s after the fork; its Forks "
                 "fail until they do", child->cfg_.id);
  }
  // The accept loop's own thread: it starts before anything is served.
  std::move(serve).Run([server] { server->Serve(); });
  child->RunInBackground([child] { child->EndWithAnchor(); });
  if (init != nullptr) child->WatchInit(child->first_, init);  // also if the init has exited by now
  for (auto& [c, tg] : members) child->WatchInit(c, tg);
  if (paused) child->PrepareForkSpareAsync();   // a new seed
  child->WaitShutdown();
  usleep(20000);  // let the Shutdown reply reach the caller (as boot does)
  _exit(0);
}

void ControlServer::EndWithAnchor() {
  if (!sentry::WatchOwnAnchor()) return;
  {
    absl::MutexLock l(&mu_);
    if (ending_) return;  // our Shutdown ended the anchor's group
  }
  Log::Warning("container %s: the sandbox's anchor process died before it (the OOM killer? a "
               "kill?): its host processes were killed, and the sandbox ends", cfg_.id);
  if (absl::StatusOr<v1::ShutdownResponse> r = Shutdown(v1::ShutdownRequest()); !r.ok()) {
    Log::Warning("container %s: ending the sandbox: %s", cfg_.id, r.status().ToString());
  }
}

void ControlServer::PrepareForkSpareAsync(absl::Duration delay) {
  absl::MutexLock l(&spare_mu_);
  spare_wanted_ = true;
  spare_delay_ = delay;
  if (spare_thread_started_) return;
  spare_thread_started_ = true;
  // One loop for the server's life, never a thread per fork, and on the
  // pool (RunInBackground): a thread that starts or exits takes
  // process-wide locks of the C++ runtime and abseil for a moment, and a
  // host fork of the sentry at that moment would leave them held forever
  // in the forked sentry. The same for the watchdog.
  loops_running_ = 2;
  RunInBackground([this] {
    SpareLoop();
    LoopEnded();
  });
  RunInBackground([this] {
    WatchForks();
    LoopEnded();
  });
}

ControlServer::~ControlServer() {
  {
    absl::MutexLock l(&spare_mu_);
    loops_stop_ = true;
  }
  loops_cv_.SignalAll();
  absl::MutexLock l(&spare_mu_);
  while (loops_running_ > 0) loops_cv_.Wait(&spare_mu_);
}

bool ControlServer::LoopsStopping() {
  absl::MutexLock l(&spare_mu_);
  return loops_stop_;
}

void ControlServer::LoopEnded() {
  {
    absl::MutexLock l(&spare_mu_);
    --loops_running_;
  }
  loops_cv_.SignalAll();
}

void ControlServer::WatchForks() {
  for (;;) {
    {
      absl::MutexLock l(&spare_mu_);
      if (loops_cv_.Await(&spare_mu_, absl::Condition(&loops_stop_),
                          sentry::Deadline::In(absl::Seconds(1)))) {
        return;
      }
    }
    for (const std::string& line : fork_watch_.Stalled(kForkStall)) {
      Log::Warning("container %s: sandbox fork watchdog: %s", cfg_.id, line);
    }
    // The forks that ended since the last fork, so that an idle seed keeps
    // no zombies; never waits for a fork (it reaps too).
    if (fork_mu_.TryLock()) {
      sentry::ReapEndedForks();
      fork_mu_.Unlock();
    }
  }
}

void ControlServer::SpareLoop() {
  for (;;) {
    absl::Duration delay;
    {
      absl::MutexLock l(&spare_mu_);
      spare_mu_.Await(absl::Condition(this, &ControlServer::SpareLoopWoken));
      if (loops_stop_) return;
      spare_wanted_ = false;
      delay = spare_delay_;
      // After a fork, not at once: the fork's own start (its guest
      // resuming) must not share the CPUs with making the next spare. A
      // fork that comes meanwhile takes a spare left in the pool, or makes
      // its own.
      if (loops_cv_.Await(&spare_mu_, absl::Condition(&loops_stop_), sentry::Deadline::In(delay))) {
        return;
      }
    }
    // One spare per hold of the fork lock; a fork that waits for the lock
    // goes first (it asks for the pool to be topped up once it is done).
    for (bool full = false; !full && forks_waiting_.load() == 0 && !LoopsStopping();) {
      Watched w(fork_watch_, "the spare loop");
      sentry::SpareWarmup warm;
      {
        w.Step("waiting for the fork lock");
        absl::MutexLock fl(&fork_mu_);
        w.Locked();
        w.Step("waiting for the container lock");
        {
          absl::MutexLock l(&mu_);
          if (!paused_ || first_->phase != Phase::kRunning || ending_) break;
          // A pod keeps no spares: its copies of a member's stubs would
          // wait in that member's host cgroup, charged to it, for a fork
          // that has not even named its own (server_fork_pod.cc). Its Fork
          // makes one then.
          if (containers_.size() > 1) break;
        }
        const uint64_t version = seed_version_.load();
        absl::StatusOr<bool> r =
            sentry::PrepareForkSpare(kernel_, cfg_.fork_spares, &version, w.Progress(), &warm);
        if (!r.ok()) {
          // Not the fork's failure: the fork makes its spare itself then, and
          // reports what fails.
          Log::Debug("container %s: preparing the next fork: %s", cfg_.id, r.status().ToString());
          break;
        }
        full = *r;
        w.Unlocked();
      }
      if (warm.anchor > 0) {
        // Without the fork lock: a fork meanwhile takes another spare or
        // makes its own, and never waits for this.
        w.Step("writing ahead the pages earlier forks wrote, in the spare's stub copies");
        sentry::WarmForkSpare(warm);
        w.Step("waiting for the fork lock to publish the spare");
        absl::MutexLock fl(&fork_mu_);
        w.Locked();
        full = sentry::PublishForkSpare(kernel_, warm, cfg_.fork_spares);
        w.Unlocked();
        Log::Debug("container %s: a spare with %zu pages written ahead", cfg_.id,
                   warm.pages_written);
      }
    }
    ForkSparesAhead();
  }
}

void ControlServer::ForkSparesAhead() {
  // One per hold of the fork lock, as the spares; a fork waiting goes first.
  for (bool full = cfg_.fork_ahead == 0; !full && forks_waiting_.load() == 0 && !LoopsStopping();) {
    Watched w(fork_watch_, "the spare loop (forks made ahead)");
    w.Step("waiting for the fork lock");
    absl::MutexLock fl(&fork_mu_);
    w.Locked();
    absl::StatusOr<bool> r;
    {
      // What a Fork holds across its host fork (see Fork).
      w.Step("waiting for the container lock");
      absl::MutexLock l(&mu_);
      if (!paused_ || first_->phase != Phase::kRunning || ending_ || containers_.size() > 1) {
        w.Unlocked();
        break;
      }
      w.Step("waiting for the host fork lock (a container's host thread starting or ending)");
      absl::MutexLock hf(&host_fork_mu_);
      std::optional<ttrpc::Server::ForkHold> hold;
      w.Step("waiting for the control server's fork hold (a fork made ahead)");
      if (server_ != nullptr) hold.emplace(*server_);
      r = sentry::StartForkAhead(kernel_, static_cast<size_t>(cfg_.fork_ahead),
                                 seed_version_.load(), first_->init, AheadChildOf(),
                                 w.Progress());
    }
    if (r.ok() && !*r) {
      // Its wait without the fork lock: a slow child (a large MAP_SHARED
      // copy, a VM made under load) must not stall the seed's Forks for up
      // to its deadline. It counts as a fork in flight meanwhile, which
      // Resume and Shutdown wait for, as for a Fork's child.
      const sentry::AheadWait wait = sentry::StartingForkAhead();
      ++forks_in_flight_;
      w.Unlocked();
      fork_mu_.Unlock();
      w.Step("waiting for the fork made ahead to say it is ready");
      sentry::WaitForkAheadReady(wait);
      w.Step("waiting for the fork lock to take the fork made ahead");
      fork_mu_.Lock();
      w.Locked();
      --forks_in_flight_;
      if (absl::Status s = sentry::AwaitForkAhead(kernel_); !s.ok()) {
        r = s;
      } else {
        r = sentry::ForksAheadReady() >= static_cast<size_t>(cfg_.fork_ahead);
      }
    }
    w.Unlocked();
    if (!r.ok()) {
      // Not a fork's failure: forks then run as forks made now, and say
      // what fails.
      Log::Debug("container %s: a fork made ahead: %s", cfg_.id, r.status().ToString());
      break;
    }
    full = *r;
  }
}

sentry::AheadChild ControlServer::AheadChildOf() {
  sentry::AheadChild c;
  // The seed's listener and connections: ours to close, never to serve.
  c.prepare = [this] {
    if (server_ != nullptr) server_->AbandonInForkChild();
  };
  c.setup = [this](const std::string& payload, std::vector<int>* fds,
                   const std::vector<pid_t>& pids, pid_t* report,
                   std::function<void()>* main) -> absl::Status {
    v1::ForkRequest req;
    if (!req.ParseFromString(payload)) return absl::InternalError("a fork made ahead: a bad request");
    std::optional<sentry::TakenInterface> net;
    if (req.has_net_device()) {
      absl::StatusOr<sentry::HostInterface> info = NetDeviceFromProto(req.net_device());
      if (!info.ok()) return info.status();
      if (fds->size() < 4) return absl::InternalError("a fork made ahead: no network device came");
      net = sentry::TakenInterface{*info, (*fds)[3]};
      (*fds)[3] = -1;  // ours now
    }
    const int stdio[3] = {(*fds)[0], (*fds)[1], (*fds)[2]};
    return SetUpForkChild(req, stdio, &net, pids, report, main);
  };
  return c;
}

absl::Status ControlServer::SetUpForkChild(const v1::ForkRequest& req, const int stdio[3],
                                           std::optional<sentry::TakenInterface>* net,
                                           const std::vector<pid_t>& pids, pid_t* report,
                                           std::function<void()>* main) {
  ControlServer* child = new ControlServer(*this, req.new_id());
  auto* child_server = new ttrpc::Server;
  child->Register(*child_server);
  if (absl::Status s = child_server->Listen(req.control_address()); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("control socket ", req.control_address(), ": ",
                                               s.message()));
  }
  if (!req.cgroup().empty()) {
    if (absl::Status s = JoinCgroup(req.cgroup(), pids); !s.ok()) return s;
  }
  // A pod's members' stubs on into their own (memory, cpu, cpuacct,
  // cpuset; their pids stay the fork's above), before the guest runs.
  if (absl::Status s = child->TakeMemberCgroupsInForkChild(req); !s.ok()) return s;
  // In the cgroup, before the report: a host that has no thread for the
  // fork (its cgroup's pids.max) fails the Fork instead of the fork
  // dying after it.
  Result<sentry::HostThread> t = sentry::HostThread::Spawn();
  if (!t.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the host refused the fork a thread (", std::strerror(t.error().value()), ")",
        req.cgroup().empty() ? ""
                             : absl::StrCat("; cgroup \"", req.cgroup(), "\" may be full")));
  }
  // The accept loop's thread, for ServeForkChild (a std::function is copied).
  auto serve = std::make_shared<sentry::HostThread>(std::move(*t));
  if (!req.cgroup().empty()) {
    // The cgroup's pids.max, as the fork's guest task limit (a tighter
    // one it has already stays).
    int64_t guest_tasks = 0;
    {
      absl::MutexLock l(&kernel_.mu());
      guest_tasks = kernel_.PidsChargedLocked();
    }
    absl::StatusOr<int64_t> limit = GuestPidsLimitFromCgroup(req.cgroup(), guest_tasks);
    if (!limit.ok()) return limit.status();
    if (*limit > 0 && (kernel_.pids_limit() == 0 || *limit < kernel_.pids_limit())) {
      kernel_.SetPidsLimit(*limit);
    }
  }
  *report = HostPid();
  // The sentry's own stdio (its log on stderr) becomes the child's.
  for (int i = 0; i < 3; ++i) {
    if (stdio[i] >= 0 && stdio[i] != i) dup2(stdio[i], i);
  }
  // The seed's devices are the seed's: the child serves its own or none
  // (after the stdio above: what it says goes to the fork's stderr).
  if (sentry::NetService* ns = kernel_.net()) {
    if (net->has_value()) {
      sentry::TakenInterface d = **net;
      net->reset();  // the stack owns the socket now
      if (absl::Status s = ns->ReplaceDevicesInForkChild(&d); !s.ok()) return s;
    } else {
      // Only a seed with a device has something the fork lacks (the OCI
      // default --network=sandbox without a namespace in the spec is
      // loopback only: nothing to say then).
      const bool seed_had_device = ns->has_devices();
      if (absl::Status s = ns->ReplaceDevicesInForkChild(nullptr); !s.ok()) return s;
      if (seed_had_device) {
        Log::Warning("container %s: no network device for this fork (seedsc fork --netns): it "
                     "keeps only loopback",
                     req.new_id());
      }
    }
  }
  const bool paused = req.paused();
  *main = [child, child_server, serve, paused] {
    ServeForkChild(child, child_server, std::move(*serve), paused);
  };
  return absl::OkStatus();
}


namespace {

constexpr absl::string_view kNoSeed = "it is no seed any more";

}  // namespace

absl::StatusOr<v1::ForkResponse> ControlServer::Fork(const v1::ForkRequest& req,
                                                     absl::Duration caller_timeout,
                                                     const ttrpc::RequestFds* fds) {
  // Every clock read here is sentry::MonotonicNow(), never absl::Now():
  // other Forks of this seed host-fork it meanwhile (mono_clock.h).
  const absl::Duration entered = sentry::MonotonicNow();
  // A caller that gives up removes what it made for the fork (its state,
  // the control socket path it chose) and forgets it. A fork answered after
  // that would run on, known to nobody, its control socket made after its
  // caller's cleanup. So the Fork answers by `answer_by`: it forks nothing
  // once that has passed, gives the child only until then to report, and
  // kills a child whose report came too late to be answered in time.
  const absl::Duration answer_by =
      caller_timeout > absl::ZeroDuration()
          ? entered + caller_timeout - std::min(caller_timeout / 10, kAnswerMargin)
          : absl::InfiniteDuration();
  auto too_late = [&](const char* when) {
    return absl::DeadlineExceededError(absl::StrCat(
        "sandbox fork into \"", req.new_id(), "\": its caller's timeout (",
        absl::FormatDuration(caller_timeout), ") ran out after ",
        absl::FormatDuration(absl::Trunc(sentry::MonotonicNow() - entered, absl::Milliseconds(1))), ", ", when));
  };
  Watched w(fork_watch_, absl::StrCat("the Fork into \"", req.new_id(), "\""));
  absl::StatusOr<std::shared_ptr<Container>> found = Lookup(req.container_id());
  if (!found.ok()) return found.status();
  if (absl::Status s = SandboxWide(**found, "sandbox fork"); !s.ok()) return s;
  if (req.new_id().empty()) return absl::InvalidArgumentError("fork: new_id must not be empty");
  if (req.control_address().empty()) {
    return absl::InvalidArgumentError("fork: control_address must not be empty");
  }
  // The child's: its stdio (the seed closes its own copies right after the
  // host fork, or after handing them to a fork made ahead).
  std::optional<HostStdio> io;
  const bool paused = req.paused();
  // The child's own network device (`seedsc fork --netns`); the seed's copy
  // of its socket goes right after the host fork, or when this returns
  // before it (the child never returns here).
  struct Device {
    std::optional<sentry::TakenInterface> dev;
    void Close() {
      if (dev && dev->packet_fd >= 0) close(dev->packet_fd);
      if (dev) dev->packet_fd = -1;
    }
    ~Device() { Close(); }
  } net;
  std::function<void()> child_main;  // SetUpForkChild's
  auto setup = [&](const std::vector<pid_t>& pids, pid_t* report) -> absl::Status {
    // The seed's listener and connections: ours to close, never to serve.
    if (server_ != nullptr) server_->AbandonInForkChild();
    absl::Status s = SetUpForkChild(req, io->fds, &net.dev, pids, report, &child_main);
    // Our copies of the stdio: dup'ed where they are used by now (as a
    // fork made ahead closes the ones it was sent).
    for (int fd : io->fds) {
      if (fd > 2) close(fd);
    }
    return s;
  };
  auto main = [&] { child_main(); };

  int64_t request_ns = 0;   // waiting for the fork lock (earlier forks' host forks, spares)
  int64_t prepare_ns = 0;   // a spare made inline (none was ready)
  absl::StatusOr<sentry::PendingFork> pending;
  forks_waiting_.fetch_add(1);
  w.Step("waiting for the fork lock");
  {
    absl::MutexLock fl(&fork_mu_);
    forks_waiting_.fetch_sub(1);
    w.Locked();
    request_ns = absl::ToInt64Nanoseconds(sentry::MonotonicNow() - entered);
    // Shutdown changes the seed only under the fork lock, after it set
    // ending_ (server.cc): checked here, and again with the container lock
    // just before the host fork.
    {
      absl::MutexLock l(&mu_);
      if (absl::Status s = RefuseIfEnding(kNoSeed, "sandbox fork: "); !s.ok()) return s;
    }
    w.Step("opening its stdio");
    absl::StatusOr<HostStdio> opened = OpenStdio(req.stdio(), nullptr);
    if (!opened.ok()) return opened.status();
    io.emplace(std::move(*opened));
    if (req.has_net_device()) {
      if (kernel_.net() == nullptr) {
        return absl::FailedPreconditionError(
            "fork: a network device (--netns) needs a seed that runs --network=sandbox");
      }
      absl::StatusOr<sentry::HostInterface> info = NetDeviceFromProto(req.net_device());
      if (!info.ok()) return info.status();
      // Its packet socket came with this request on the caller's own
      // connection, never from a socket anyone could connect to. Taken
      // under the fork lock, which every host fork of this sentry holds:
      // only this Fork's child gets a copy (the server closes the copies
      // of what no handler took in any other: AbandonInForkChild).
      const int fd = fds == nullptr ? -1 : fds->Take(0);
      if (fd < 0) {
        return absl::InvalidArgumentError(
            "fork: net_device: its packet socket did not come with the request (SCM_RIGHTS)");
      }
      net.dev = sentry::TakenInterface{*info, fd};
    }
    bool pod = false;
    {
      // After the stdio, whose open may wait: containers come and go
      // meanwhile (they never wait for a Fork). Checked again below.
      absl::MutexLock l(&mu_);
      if (absl::Status s = CheckPodForkLocked(req); !s.ok()) return s;
      pod = containers_.size() > 1;
    }
    // No spare ready (a burst of forks took them, or a pod, which keeps
    // none): one now, before this object's lock and the server's ForkHold,
    // which would stall other requests meanwhile (a seed that is not
    // paused makes none).
    const absl::Duration prep = sentry::MonotonicNow();
    const uint64_t version = seed_version_.load();
    // A pod makes no forks ahead (ForkSparesAhead): none to take.
    const uint64_t* takes_ahead = cfg_.fork_ahead > 0 && !pod ? &version : nullptr;
    if (absl::StatusOr<bool> r = sentry::PrepareForkSpare(kernel_, 1, takes_ahead, w.Progress());
        !r.ok()) {
      return absl::Status(r.status().code(), absl::StrCat("sandbox fork: ", r.status().message()));
    }
    prepare_ns = absl::ToInt64Nanoseconds(sentry::MonotonicNow() - prep);
    if (sentry::MonotonicNow() >= answer_by) {
      return too_late("before the fork could start (earlier forks, its stdio): nothing was forked");
    }
    {
      // Held across the host fork: the child copies a consistent state,
      // and it may read this object's fields without the lock (see the
      // constructor).
      w.Step("waiting for the container lock");
      absl::MutexLock l(&mu_);
      if (absl::Status s = RefuseIfEnding(kNoSeed, "sandbox fork: "); !s.ok()) return s;
      if (!paused_ || first_->phase != Phase::kRunning) {
        return absl::FailedPreconditionError(absl::StrCat(
            "container \"", cfg_.id, "\" is not a seed: it must be running and paused (seedsc pause)"));
      }
      if (absl::Status s = CheckPodForkLocked(req); !s.ok()) return s;
      sentry::ForkOptions opts;
      for (int i = 0; i < 3; ++i) opts.stdio[i] = io->fds[i];
      opts.init = first_->init;
      if (req.report_deadline_ms() > 0) opts.report_deadline = absl::Milliseconds(req.report_deadline_ms());
      opts.report_deadline = std::min(opts.report_deadline, answer_by - sentry::MonotonicNow());
      opts.test_stall_child = req.test_stall_child();
      opts.learn_dirty_pages = !paused;
      opts.progress = w.Progress();
      // A fork made ahead takes it if one of this seed's state is ready.
      opts.ahead = cfg_.fork_ahead > 0 && containers_.size() == 1;
      opts.version = seed_version_.load();
      if (opts.ahead) {
        req.SerializeToString(&opts.ahead_payload);
        if (net.dev) opts.ahead_fds.push_back(net.dev->packet_fd);
      }
      // No thread of this sentry starts or ends across the host fork (see
      // RunInBackground), and no control connection is accepted or closed
      // (the child closes exactly the seed's); the service threads are
      // parked, the tasks quiesced, no container's host thread starting or
      // ending (host_fork_mu_).
      w.Step("waiting for the host fork lock (a container's host thread starting or ending)");
      absl::MutexLock hf(&host_fork_mu_);
      std::optional<ttrpc::Server::ForkHold> hold;
      w.Step("waiting for the control server's fork hold (no thread starting, no connection "
             "accepted or closed)");
      if (server_ != nullptr) hold.emplace(*server_);
      pending = sentry::StartFork(kernel_, opts, setup, main);
    }
    // The child has its own copies: ours go before another fork's child
    // could inherit them (a pipe's write end would stay open there; the
    // device's socket would keep its namespace and veth as long as that
    // child, a replica or a later instance, runs).
    io.reset();
    net.Close();
    w.Unlocked();
    if (!pending.ok()) return pending.status();
    ++forks_in_flight_;
  }
  // The child starts and reports on its own; meanwhile other forks of this
  // seed may start theirs.
  w.Step("waiting for the child's report");
  sentry::AwaitFork(*pending);
  // "finish": from the child's report to the answer (the fork lock again,
  // which the spare loop may hold, and the seed's bookkeeping).
  const absl::Duration reported = sentry::MonotonicNow();
  absl::StatusOr<sentry::ForkResult> r;
  w.Step("waiting for the fork lock to finish");
  forks_waiting_.fetch_add(1);
  {
    absl::MutexLock fl(&fork_mu_);
    forks_waiting_.fetch_sub(1);
    w.Locked();
    w.Step("finishing (the seed's bookkeeping)");
    r = sentry::FinishFork(kernel_, *pending);
    if (r.ok() && sentry::MonotonicNow() >= answer_by) {
      sentry::KillFinishedFork(*pending);
      r = too_late("before the fork could be answered: the fork was killed");
    }
    --forks_in_flight_;
    w.Unlocked();
  }
  const int64_t finish_ns = absl::ToInt64Nanoseconds(sentry::MonotonicNow() - reported);
  PrepareForkSpareAsync(kSpareDelayAfterFork);
  if (!pending->diagnosis.empty()) {
    // A child that never reported: what it was doing when it was killed.
    // (The control socket it may have made is its caller's to remove:
    // seedsc fork, fri. The caller chose the path, and the sentry's seccomp
    // policy allows no unlink.)
    Log::Warning("container %s: the Fork into \"%s\" did not report within %s; its host "
                 "processes before they were killed:\n%s",
                 cfg_.id, req.new_id(), absl::FormatDuration(pending->report_deadline),
                 pending->diagnosis);
  }
  if (!r.ok()) return r.status();
  r->phase_ns[static_cast<int>(sentry::ForkPhase::kPrepare)] += prepare_ns;
  v1::ForkResponse resp;
  resp.set_pid(r->pid);
  v1::ForkPhaseTime* request = resp.add_phases();
  request->set_name("request");
  request->set_ns(request_ns);
  std::string phases = absl::StrCat(" request=", request_ns / 1000, "us");
  for (int i = 0; i < static_cast<int>(sentry::ForkPhase::kCount); ++i) {
    const char* name = sentry::ForkPhaseName(static_cast<sentry::ForkPhase>(i));
    v1::ForkPhaseTime* p = resp.add_phases();
    p->set_name(name);
    p->set_ns(r->phase_ns[i]);
    absl::StrAppend(&phases, " ", name, "=", r->phase_ns[i] / 1000, "us");
  }
  v1::ForkPhaseTime* finish = resp.add_phases();
  finish->set_name("finish");
  finish->set_ns(finish_ns);
  absl::StrAppend(&phases, " finish=", finish_ns / 1000, "us");
  Log::Debug("container %s: forked %s (sandbox process %d):%s", cfg_.id, req.new_id(), r->pid,
             phases);
  return resp;
}

}  // namespace seedvisor::control
