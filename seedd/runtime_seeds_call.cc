// RuntimeSeeds' call path: a call forks the deepest seed that serves it
// (level 2, else level 1 with the code, else level 0), then Serve answers
// it and destroys the instance (see runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include <cstdio>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fri/status_macros.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {

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

}  // namespace seedvisor::seedd
