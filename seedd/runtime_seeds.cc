#include "seedd/runtime_seeds.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <system_error>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fri/status_macros.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {
namespace {

constexpr absl::Duration kBootTimeout = absl::Seconds(60);
// Between the runtime's reply and Pause, so that the pause finds it blocked
// reading its channel (a pause elsewhere is correct too, only slower to fork).
constexpr absl::Duration kSettle = absl::Milliseconds(30);

}  // namespace

fri::v1::Stdio RuntimeSeeds::StdioFor(const Channel& ch, const std::string& log) {
  fri::v1::Stdio s;
  s.set_stdin(Channel::FarPath(ch.req_r));
  s.set_stdout(Channel::FarPath(ch.resp_w));
  s.set_stderr(log);
  return s;
}

RuntimeOptions PythonRuntime(const std::string& python, const std::string& log_path) {
  return {.runtime = "python",
          .args = {python, "-c", kPythonEntrySource},
          .env = {"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"},
          .log_path = log_path,
          .base_id = "",
          .level = 1};
}

RuntimeOptions L0Runtime(const std::string& seedd, const std::string& log_path) {
  return {.runtime = "l0",
          .args = {seedd, "l0-init"},
          .env = {"PATH=/usr/bin:/bin"},
          .log_path = log_path,
          .base_id = "l0",
          .level = 0};
}

RuntimeOptions NodeRuntime(const std::string& node, const std::string& log_path) {
  return {.runtime = "node",
          .args = {node, "-e", kNodeEntrySource},
          .env = {"PATH=/usr/bin:/bin", "NODE_ENV=production"},
          .log_path = log_path,
          .base_id = "",
          .level = 1};
}

RuntimeSeeds::RuntimeSeeds(fri::Sandboxes& sandboxes, RuntimeOptions o, InstanceCgroups* cgroups,
                           ReplicaOptions ro)
    : sb_(sandboxes),
      opts_(std::move(o)),
      base_id_(opts_.base_id.empty() ? opts_.runtime + "-l1" : opts_.base_id),
      cgroups_(cgroups),
      ropts_(ro),
      l1_id_(base_id_) {}

RuntimeSeeds::~RuntimeSeeds() { Stop(); }

std::string RuntimeSeeds::l1_id() {
  absl::MutexLock l(&mu_);
  return l1_id_;
}

absl::Status RuntimeSeeds::BootL1() {
  absl::Duration t0 = MonotonicNow();
  std::fprintf(stderr, "seedd: booting the %s level-%d seed (%s, seedsc create)...\n",
               opts_.runtime.c_str(), opts_.level, opts_.args[0].c_str());
  const std::string id = l1_id();
  absl::StatusOr<std::shared_ptr<Copy>> copy = BootSeed(id);
  RETURN_IF_ERROR(copy.status());
  StartMaintenance();
  {
    absl::MutexLock l(&mu_);
    l1_.copies.push_back(std::move(*copy));
  }
  std::fprintf(stderr, "seedd: %s level-%d seed \"%s\" ready in %.0f ms\n", opts_.runtime.c_str(),
               opts_.level, id.c_str(), absl::ToDoubleMilliseconds(MonotonicNow() - t0));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RuntimeSeeds::Copy>> RuntimeSeeds::BootSeed(const std::string& id) {
  absl::Duration t0 = MonotonicNow();
  ASSIGN_OR_RETURN(Channel ch, Channel::Make());
  fri::v1::CreateRequest req;
  req.set_id(id);
  fri::v1::HostRoot* hr = req.mutable_host_root();
  for (const std::string& a : opts_.args) hr->add_args(a);
  for (const std::string& e : opts_.env) hr->add_env(e);
  *req.mutable_stdio() = StdioFor(ch, opts_.log_path);
  (*req.mutable_labels())["runtime"] = opts_.runtime;
  (*req.mutable_labels())["level"] = std::to_string(opts_.level);
  ASSIGN_OR_RETURN(fri::v1::CreateResponse created, sb_.Create(req));
  ch.CloseFarEnds();
  absl::StatusOr<std::string> ready = ReadFrame(ch.resp_r, Deadline::In(kBootTimeout));
  if (!ready.ok()) {
    sb_.Destroy(id).IgnoreError();
    return absl::UnavailableError(absl::StrCat(opts_.runtime, " level-", opts_.level, " seed did not report ready: ",
                                               ready.status().message(), " (see ", opts_.log_path, ")"));
  }
  std::fprintf(stderr, "seedd: %s runtime up after %.0f ms (sandbox pid %d); pausing it\n",
               opts_.runtime.c_str(), absl::ToDoubleMilliseconds(MonotonicNow() - t0), created.pid());
  absl::SleepFor(kSettle);
  if (absl::Status s = sb_.Pause(id); !s.ok()) {
    sb_.Destroy(id).IgnoreError();
    return s;
  }
  return std::make_shared<Copy>(Copy{id, std::make_unique<Channel>(std::move(ch)), 0, MonotonicNow()});
}

void RuntimeSeeds::RebootL1() {
  absl::Duration t0 = MonotonicNow();
  std::string id;
  {
    absl::MutexLock l(&mu_);
    id = absl::StrCat(base_id_, "-g", ++l1_generation_);
  }
  std::fprintf(stderr, "seedd: booting level-%d seed \"%s\" to replace the stuck one...\n", opts_.level,
               id.c_str());
  absl::StatusOr<std::shared_ptr<Copy>> copy = BootSeed(id);
  std::string old;
  {
    absl::MutexLock l(&mu_);
    l1_reboot_ = false;
    changed_.SignalAll();
    if (!copy.ok() || stopping_ || l1_.copies.empty()) {
      if (copy.ok()) old = id;
    } else {
      // The stuck original goes; its replicas (each its own sandbox) serve
      // on until they are idle.
      old = l1_.copies[0]->id;
      l1_.copies[0] = std::move(*copy);
      l1_id_ = id;
    }
  }
  if (!copy.ok()) {
    // It stays marked unhealthy: the next Fork of it that times out tries again.
    std::fprintf(stderr, "seedd: booting level-%d seed \"%s\" failed: %s\n", opts_.level, id.c_str(),
                 std::string(copy.status().message()).c_str());
  } else if (old != id) {
    std::fprintf(stderr, "seedd: level-%d seed \"%s\" replaced \"%s\" in %.0f ms\n", opts_.level, id.c_str(),
                 old.c_str(), absl::ToDoubleMilliseconds(MonotonicNow() - t0));
  }
  if (!old.empty()) sb_.Destroy(old).IgnoreError();
}

std::string RuntimeSeeds::RequestJson(const Function& fn, bool with_files,
                                     const std::string& event_json, absl::Duration timeout,
                                     bool load_only) {
  nlohmann::json j{{"function", fn.name}, {"version", fn.version}, {"handler", fn.handler},
                   {"deadline_ms", absl::ToInt64Milliseconds(timeout)}};
  if (with_files) j["files"] = fn.files;
  if (load_only) j["load_only"] = true;
  std::string s = j.dump();
  if (load_only) return s;
  // The event is spliced in as the client sent it (already checked to be JSON).
  s.pop_back();
  absl::StrAppend(&s, ",\"event\":", event_json, "}");
  return s;
}

bool RuntimeSeeds::UseL0() {
  if (l0_ == nullptr) return false;
  return std::none_of(l1_.copies.begin(), l1_.copies.end(),
                      [](const std::shared_ptr<Copy>& c) { return !c->unhealthy; });
}

CallResult RuntimeSeeds::Call(const Function& fn, const std::string& event_json,
                             absl::Duration timeout) {
  absl::Duration t0 = MonotonicNow();
  if (always_l0_) return CallFromL0(fn, event_json, timeout, t0);
  CallResult r;
  const Deadline deadline = Deadline::In(timeout, t0);
  bool from_l2 = false;
  std::shared_ptr<Copy> copy;
  {
    absl::MutexLock l(&mu_);
    auto it = l2_.find(fn.name);
    if (it != l2_.end() && it->second.version == fn.version) {
      copy = Pick(it->second);
      from_l2 = true;
    } else if (!UseL0() && !l1_.copies.empty()) {
      copy = Pick(l1_);
    }
  }
  if (copy == nullptr) {
    if (l0_ != nullptr) return CallFromL0(fn, event_json, timeout, t0);
    r.status = absl::UnavailableError(absl::StrCat("the ", opts_.runtime, " runtime has no seed to fork"));
    return r;
  }
  r.seed = copy->id;
  std::string id;
  std::string frame;
  size_t sent = 0;
  // Taken before the fork, given back once the instance is gone.
  const std::string cgroup = cgroups_ != nullptr ? cgroups_->Take() : "";
  std::optional<VethPool::Lease> net;  // the same
  if (net_ != nullptr) net.emplace(net_->TakeLease());
  std::unique_ptr<Channel> ch;
  absl::StatusOr<fri::v1::ForkResponse> forked = absl::UnknownError("no fork");
  // A Fork that fails is tried once more on another copy of the seed, then
  // (from L2) on L1 with the code, then on level 0: one stuck seed costs a
  // call its wait, not a 503.
  for (int retries = 0;; ++retries) {
    absl::StatusOr<Channel> made = Channel::Make();
    if (!made.ok()) {
      Release(copy);
      if (cgroups_ != nullptr) cgroups_->Give(cgroup);
      r.status = made.status();
      return r;
    }
    ch = std::make_unique<Channel>(std::move(*made));
    frame = Frame(RequestJson(fn, !from_l2, event_json, timeout, false));
    // The request waits in the pipe: the instance's first read returns it.
    sent = WriteNow(ch->req_w, frame);
    fri::v1::ForkRequest fr;
    fr.set_seed_id(r.seed);
    id = absl::StrCat(opts_.runtime, "-", fn.name, "-", next_instance_++);
    fr.set_new_id(id);
    *fr.mutable_stdio() = StdioFor(*ch, opts_.log_path);
    (*fr.mutable_labels())["function"] = fn.name;
    fr.set_cgroup(cgroup);
    forked = ForkInstance(fr, net ? net->get() : nullptr);
    ch->CloseFarEnds();
    Release(copy);
    if (forked.ok()) {
      absl::MutexLock l(&mu_);
      copy->unhealthy = false;
      break;
    }
    if (retries == 2 && l0_ == nullptr) break;
    ForkFailed(copy, from_l2 ? fn.name : "", forked.status());
    std::shared_ptr<Copy> other;
    {
      absl::MutexLock l(&mu_);
      if (from_l2) {
        auto it = l2_.find(fn.name);
        if (it != l2_.end() && it->second.version == fn.version) other = Pick(it->second, copy->id);
      } else if (retries == 0) {
        other = Pick(l1_, copy->id);
      }
      // An L2 seed (or replica) failed or was dropped meanwhile: L1 serves,
      // with the code (or level 0 when no L1 copy is healthy).
      if (other == nullptr && from_l2) {
        from_l2 = false;
        if (!UseL0() && !l1_.copies.empty()) other = Pick(l1_);
      }
      // The L1 original is stuck with no copy to spare, and a new one boots:
      // with no level-0 seed, the call waits for it (within its deadline)
      // rather than fail.
      if (other == nullptr && l0_ == nullptr && !from_l2 && l1_reboot_) {
        auto rebooted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !l1_reboot_ || stopping_; };
        changed_.Await(&mu_, absl::Condition(&rebooted), deadline);
        if (!l1_reboot_ && !stopping_ && !l1_.copies.empty() && l1_.copies[0] != copy) other = Pick(l1_);
      }
    }
    if (other == nullptr && l0_ != nullptr) {
      // Level 0 serves; the failed tries count in its "fork".
      if (cgroups_ != nullptr) cgroups_->Give(cgroup);
      net.reset();  // level 0's call takes its own
      return CallFromL0(fn, event_json, timeout, t0);
    }
    if (other == nullptr) break;
    copy = std::move(other);
    r.seed = copy->id;
  }
  r.level = from_l2 ? 2 : opts_.level;
  Serve(r, forked, t0, *ch, id, absl::string_view(frame).substr(sent), cgroup, deadline, false);
  return r;
}

void RuntimeSeeds::Serve(CallResult& r, const absl::StatusOr<fri::v1::ForkResponse>& forked, absl::Duration t0,
                         Channel& ch, const std::string& id, absl::string_view unsent,
                         const std::string& cgroup, Deadline deadline, bool starts_runtime) {
  absl::Duration t_fork = MonotonicNow();
  // "queue": the successful fork's wait inside its seed for earlier forks of
  // it (the seed's "request" phase: its fork lock); "fork": the rest, from
  // the call's start (pool cgroup, channel, failed tries included).
  // "setup", a part of "fork": the new sandbox's own setup in the seed's
  // child (its control socket and cgroup join, sentry/control/server_fork.cc).
  // "rpc", a part of "queue" + "fork": the FRI Fork of the successful try
  // (fri/sandboxes.cc: its state files and the seed's Fork RPC, queue
  // included); the rest of "fork" is seedd's before it (pool cgroup,
  // channel, request written, failed tries).
  absl::Duration queued = absl::ZeroDuration();
  std::optional<absl::Duration> setup, rpc;
  if (forked.ok()) {
    for (const auto& p : forked->phases()) {
      if (p.name() == "request") queued = std::min(absl::Nanoseconds(p.ns()), t_fork - t0);
      if (p.name() == "setup") setup = absl::Nanoseconds(p.ns());
      if (p.name() == "rpc") rpc = absl::Nanoseconds(p.ns());
    }
  }
  r.phases.emplace_back("queue", queued);
  r.phases.emplace_back("fork", t_fork - t0 - queued);
  if (setup) r.phases.emplace_back("setup", *setup);
  if (rpc) r.phases.emplace_back("rpc", *rpc);
  if (!forked.ok()) {
    if (cgroups_ != nullptr) cgroups_->Give(cgroup);
    r.status = absl::UnavailableError(
        absl::StrCat("forking seed \"", r.seed, "\": ", forked.status().message()));
    return;
  }
  r.forked = true;
  r.status = WriteAll(ch.req_w, unsent, deadline);
  absl::Duration t_start = t_fork;
  if (r.status.ok() && starts_runtime) {
    // A runtime started in a level-0 fork says it is ready (or the init
    // says why it could not start it) before it answers the request.
    absl::StatusOr<std::string> ready = ReadFrame(ch.resp_r, deadline);
    if (!ready.ok()) {
      r.status = ready.status();
    } else if (!absl::StrContains(*ready, "\"ready\"")) {
      r.status = absl::UnavailableError(absl::StrCat("starting the ", opts_.runtime, " runtime in a fork of seed \"",
                                                     r.seed, "\": ", *ready));
    }
    t_start = MonotonicNow();
    r.phases.emplace_back("start", t_start - t_fork);
  }
  if (r.status.ok()) {
    absl::StatusOr<std::string> reply = ReadFrame(ch.resp_r, deadline);
    if (reply.ok()) {
      r.reply = std::move(*reply);
    } else {
      r.status = reply.status();
    }
  }
  absl::Duration t_run = MonotonicNow();
  r.phases.emplace_back("run", t_run - t_start);
  sb_.Destroy(id).IgnoreError();
  // An instance that died, or whose handler failed (Python's MemoryError),
  // may have hit its cgroup's memory limit: then that is the answer.
  if (cgroups_ != nullptr && (!r.status.ok() || !absl::StartsWith(r.reply, "{\"result\""))) {
    if (std::string why = cgroups_->LimitHit(cgroup); !why.empty()) {
      r.status = absl::ResourceExhaustedError(why);
    }
  }
  if (cgroups_ != nullptr) cgroups_->Give(cgroup);
  r.phases.emplace_back("destroy", MonotonicNow() - t_run);
}

void RuntimeSeeds::PromoteAsync(std::shared_ptr<const Function> fn) {
  absl::MutexLock l(&mu_);
  if (stopping_) return;
  if (auto it = l2_.find(fn->name); it != l2_.end() && it->second.version == fn->version) return;
  if (auto it = promoting_.find(fn->name); it != promoting_.end() && it->second >= fn->version) return;
  promoting_[fn->name] = fn->version;
  try {
    threads_.emplace_back([this, fn] { Promote(fn); });
  } catch (const std::system_error& e) {
    // The host refused a thread (a full pids cgroup, pid_max reached): the
    // promotion waits for a later call; seedd goes on.
    promoting_.erase(fn->name);
    std::fprintf(stderr, "seedd: level-2 seed of \"%s\" not made now: the host refused a thread (%s)\n",
                 fn->name.c_str(), e.what());
  }
}

void RuntimeSeeds::Promote(std::shared_ptr<const Function> fn) {
  absl::Duration t0 = MonotonicNow();
  std::string id = absl::StrCat(opts_.runtime, "-l2-", fn->name, "-v", fn->version);
  auto fail = [&](const absl::Status& s) {
    std::fprintf(stderr, "seedd: promoting %s to a level-2 seed failed: %s\n", fn->name.c_str(),
                 std::string(s.message()).c_str());
    sb_.Destroy(id).IgnoreError();
  };
  absl::StatusOr<Channel> ch = ForkL2(*fn, id);
  if (!ch.ok()) return fail(ch.status());
  absl::SleepFor(kSettle);
  if (absl::Status s = sb_.Pause(id); !s.ok()) return fail(s);
  std::vector<std::string> old;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      old = {id};
    } else {
      auto it = l2_.find(fn->name);
      if (it != l2_.end() && it->second.version > fn->version) {
        old = {id};  // redeployed meanwhile
      } else {
        if (it != l2_.end()) old = Ids(it->second);
        Seed seed;
        seed.version = fn->version;
        seed.copies.push_back(std::make_shared<Copy>(
            Copy{id, std::make_unique<Channel>(std::move(*ch)), 0, MonotonicNow()}));
        l2_[fn->name] = std::move(seed);
      }
    }
  }
  for (const std::string& o : old) sb_.Destroy(o).IgnoreError();
  if (old.empty() || old.back() != id) {
    std::fprintf(stderr, "seedd: function %s v%llu promoted to level-2 seed \"%s\" in %.0f ms\n",
                 fn->name.c_str(), static_cast<unsigned long long>(fn->version), id.c_str(),
                 absl::ToDoubleMilliseconds(MonotonicNow() - t0));
  }
}

void RuntimeSeeds::DropOldL2(const std::string& name, uint64_t version) {
  std::vector<std::string> ids;
  {
    absl::MutexLock l(&mu_);
    auto it = l2_.find(name);
    if (it == l2_.end() || it->second.version >= version) return;
    ids = Ids(it->second);
    l2_.erase(it);
  }
  // Forks of it in flight already hold their own copy; the seed can go.
  for (const std::string& id : ids) sb_.Destroy(id).IgnoreError();
}

std::map<std::string, std::pair<std::string, uint64_t>> RuntimeSeeds::L2Seeds() {
  absl::MutexLock l(&mu_);
  std::map<std::string, std::pair<std::string, uint64_t>> out;
  for (const auto& [name, s] : l2_) out[s.id()] = {name, s.version};
  return out;
}

std::vector<std::string> RuntimeSeeds::Ids(const Seed& s) {
  std::vector<std::string> out;  // replicas first, then the original they were forked from
  for (auto it = s.copies.rbegin(); it != s.copies.rend(); ++it) out.push_back((*it)->id);
  return out;
}

RuntimeSeeds::Seed* RuntimeSeeds::Find(const std::string& function) {
  if (function.empty()) return l1_.copies.empty() ? nullptr : &l1_;
  auto it = l2_.find(function);
  return it == l2_.end() ? nullptr : &it->second;
}

std::shared_ptr<RuntimeSeeds::Copy> RuntimeSeeds::Pick(Seed& seed, const std::string& exclude) {
  std::shared_ptr<Copy> best;
  auto better = [&](const std::shared_ptr<Copy>& c) {
    if (best == nullptr) return true;
    if (c->unhealthy != best->unhealthy) return !c->unhealthy;
    return c->forking < best->forking;
  };
  for (const std::shared_ptr<Copy>& c : seed.copies) {
    if (!exclude.empty() && (c->id == exclude || c->unhealthy)) continue;
    if (better(c)) best = c;
  }
  if (best == nullptr) return nullptr;
  if (best->forking > 0) {  // every copy is forking: this fork queues
    ++seed.queued;
    const int room = ropts_.max_replicas - static_cast<int>(seed.copies.size()) - seed.replicating;
    if (seed.want_replicas < room) {
      ++seed.want_replicas;
      wake_ = true;
      changed_.SignalAll();
    }
  }
  ++best->forking;
  best->last_used = MonotonicNow();
  return best;
}

void RuntimeSeeds::ForkFailed(const std::shared_ptr<Copy>& copy, const std::string& function,
                              const absl::Status& why) {
  const bool timed_out = absl::IsDeadlineExceeded(why);
  std::vector<std::string> destroy;
  std::string did = "kept";
  {
    absl::MutexLock l(&mu_);
    Seed* s = Find(function);
    auto in = [&](const Seed& seed) {
      return std::find(seed.copies.begin(), seed.copies.end(), copy) != seed.copies.end();
    };
    if (s != nullptr && in(*s)) {
      if (copy != s->copies[0]) {
        std::erase(s->copies, copy);
        ++s->dropped;
        destroy.push_back(copy->id);
        did = "destroyed (a replica)";
      } else if (timed_out && !function.empty()) {
        destroy = Ids(*s);
        l2_.erase(function);
        did = "evicted with its replicas: its function forks from level 1 until it is promoted again";
      } else if (function.empty()) {
        // Stuck, or gone (its sandbox killed): either way a new one.
        copy->unhealthy = true;
        if (!l1_reboot_) {
          l1_reboot_ = true;
          wake_ = true;
          changed_.SignalAll();
        }
        did = absl::StrCat(timed_out ? "stuck" : "failing", ": a new level-", opts_.level,
                           " seed is booted to replace it; its replicas",
                           l0_ != nullptr ? " (or the level-0 seed)" : "", " serve meanwhile");
      } else {
        copy->unhealthy = true;  // an L2 original: its replicas serve first
        did = "marked unhealthy: its replicas serve first";
      }
    }
  }
  std::fprintf(stderr, "seedd: a fork of seed \"%s\" failed (%s); the seed is %s\n", copy->id.c_str(),
               std::string(why.message()).c_str(), did.c_str());
  for (const std::string& id : destroy) sb_.Destroy(id).IgnoreError();
}

void RuntimeSeeds::Release(const std::shared_ptr<Copy>& c) {
  absl::MutexLock l(&mu_);
  --c->forking;
  c->last_used = MonotonicNow();
}

void RuntimeSeeds::StartMaintenance() {
  if (!maintenance_.joinable()) maintenance_ = std::thread([this] { DropIdle(); });
}

void RuntimeSeeds::FallBackToL0(RuntimeSeeds* l0) {
  l0_ = l0;
  StartMaintenance();  // the L2 seeds made from level 0 want replicas too
}

void RuntimeSeeds::MakeReplica(std::string function, std::string original, std::string id) {
  absl::Duration t0 = MonotonicNow();
  absl::StatusOr<Channel> ch = Channel::Make();
  absl::Status st = ch.status();
  if (ch.ok()) {
    fri::v1::ForkRequest fr;
    fr.set_seed_id(original);
    fr.set_new_id(id);
    fr.set_paused(true);  // a child seed: its guest never runs but to be forked
    *fr.mutable_stdio() = StdioFor(*ch, opts_.log_path);
    absl::StatusOr<fri::v1::SandboxInfo> info = absl::NotFoundError("");
    const fri::v1::ListResponse list = sb_.List();  // outlives the loop
    for (const auto& s : list.sandboxes()) {
      if (s.id() == original) info = s;
    }
    if (info.ok()) *fr.mutable_labels() = info->labels();
    (*fr.mutable_labels())["replica_of"] = original;
    st = sb_.Fork(fr).status();
    ch->CloseFarEnds();
  }
  bool keep = false;
  {
    absl::MutexLock l(&mu_);
    Seed* s = Find(function);
    if (s != nullptr && s->id() == original) {
      --s->replicating;
      if (st.ok() && !stopping_) {
        s->copies.push_back(
            std::make_shared<Copy>(Copy{id, std::make_unique<Channel>(std::move(*ch)), 0, MonotonicNow()}));
        ++s->made;
        keep = true;
      }
    }
  }
  if (!st.ok()) {
    std::fprintf(stderr, "seedd: a replica of seed \"%s\" failed: %s\n", original.c_str(),
                 std::string(st.message()).c_str());
  } else if (!keep) {
    sb_.Destroy(id).IgnoreError();  // its seed was dropped meanwhile
  } else {
    std::fprintf(stderr, "seedd: forks of \"%s\" queue up: replica \"%s\" made in %.0f ms\n",
                 original.c_str(), id.c_str(), absl::ToDoubleMilliseconds(MonotonicNow() - t0));
  }
}

void RuntimeSeeds::DropIdle() {
  for (;;) {
    std::vector<std::array<std::string, 3>> make;  // function, original, new id
    std::vector<std::string> drop;
    bool reboot = false;
    {
      absl::MutexLock l(&mu_);
      auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
      changed_.Await(&mu_, absl::Condition(&woken), Deadline::In(absl::Milliseconds(250)));
      if (stopping_) return;
      wake_ = false;
      reboot = l1_reboot_;  // cleared by RebootL1 when it is done
      absl::Duration now = MonotonicNow();
      auto visit = [&](const std::string& function, Seed& s) {
        for (; s.want_replicas > 0; --s.want_replicas) {
          ++s.replicating;
          make.push_back({function, s.id(), absl::StrCat(s.id(), "-r", s.next_replica++)});
        }
        std::erase_if(s.copies, [&](const std::shared_ptr<Copy>& c) {
          if (c->id == s.id() || c->forking > 0 || now - c->last_used < ropts_.replica_idle) return false;
          drop.push_back(c->id);
          ++s.dropped;
          return true;
        });
      };
      if (!l1_.copies.empty()) visit("", l1_);
      for (auto& [name, s] : l2_) visit(name, s);
    }
    if (reboot) RebootL1();
    for (const std::string& id : drop) sb_.Destroy(id).IgnoreError();
    // Forks of one seed overlap: the replicas wanted are made at once, up to
    // the host's CPUs at a time.
    const size_t at_once = std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < make.size(); i += at_once) {
      std::vector<std::thread> makers;
      for (size_t j = i; j < std::min(make.size(), i + at_once); ++j) {
        try {
          makers.emplace_back([this, &m = make[j]] { MakeReplica(m[0], m[1], m[2]); });
        } catch (const std::system_error&) {
          MakeReplica(make[j][0], make[j][1], make[j][2]);  // no thread to spare: here
        }
      }
      for (std::thread& t : makers) t.join();
    }
  }
}

std::vector<L2Usage> RuntimeSeeds::L2Usages() {
  absl::MutexLock l(&mu_);
  std::vector<L2Usage> out;
  for (const auto& [name, s] : l2_) {
    L2Usage u{.function = name, .seed = s.id(), .ids = Ids(s), .last_used = -absl::InfiniteDuration()};
    for (const auto& c : s.copies) u.last_used = std::max(u.last_used, c->last_used);
    out.push_back(std::move(u));
  }
  return out;
}

bool RuntimeSeeds::Evict(const std::string& function, const std::string& seed) {
  std::vector<std::string> ids;
  {
    absl::MutexLock l(&mu_);
    auto it = l2_.find(function);
    if (it == l2_.end() || it->second.id() != seed) return false;
    ids = Ids(it->second);
    l2_.erase(it);
  }
  for (const std::string& id : ids) sb_.Destroy(id).IgnoreError();
  return true;
}

std::vector<SeedLoad> RuntimeSeeds::Loads() {
  absl::MutexLock l(&mu_);
  std::vector<SeedLoad> out;
  auto add = [&](const Seed& s) {
    SeedLoad x{.seed = s.id(), .copies = static_cast<int>(s.copies.size()), .forking = 0,
               .queued_forks = s.queued, .replicas_made = s.made, .replicas_dropped = s.dropped};
    for (const auto& c : s.copies) x.forking += c->forking;
    out.push_back(x);
  };
  if (!l1_.copies.empty()) add(l1_);
  for (const auto& [name, s] : l2_) add(s);
  return out;
}

void RuntimeSeeds::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    changed_.SignalAll();
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  if (maintenance_.joinable()) maintenance_.join();
}

}  // namespace seedvisor::seedd
