// RuntimeSeeds' level-0 paths: a call served by forking the node's level-0
// seed and starting the runtime in the fork, and level-2 seeds made from L1
// or, when no L1 can fork, from level 0 (see runtime_seeds.h).
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fri/status_macros.h"
#include "nlohmann/json.hpp"
#include "seedd/l0_init.h"
#include "seedd/runtime_seeds.h"

namespace seedvisor::seedd {
namespace {

// Loading a function's code (and, from level 0, starting its runtime).
constexpr absl::Duration kLoadTimeout = absl::Seconds(60);

}  // namespace

CallResult RuntimeSeeds::CallFromL0(const Function& fn, const std::string& event_json,
                                    absl::Duration timeout, absl::Duration t0) {
  CallResult r;
  r.level = 0;
  const Deadline deadline = Deadline::In(timeout, t0);
  RuntimeSeeds& l0 = *l0_;
  std::shared_ptr<Copy> copy;
  {
    absl::MutexLock l(&l0.mu_);
    if (!l0.l1_.copies.empty()) copy = l0.Pick(l0.l1_);
  }
  if (copy == nullptr) {
    r.status = absl::UnavailableError("the level-0 seed is not booted");
    return r;
  }
  r.seed = copy->id;
  const std::string cgroup = cgroups_ != nullptr ? cgroups_->Take() : "";
  std::optional<VethPool::Lease> net;  // given back after Serve destroyed the instance
  if (net_ != nullptr) net.emplace(net_->TakeLease());
  absl::StatusOr<Channel> ch = Channel::Make();
  if (!ch.ok()) {
    l0.Release(copy);
    if (cgroups_ != nullptr) cgroups_->Give(cgroup);
    r.status = ch.status();
    return r;
  }
  // The init execs the runtime; the runtime finds the request behind it.
  std::string frame = L0ExecFrame(opts_.args, opts_.env) + Frame(RequestJson(fn, true, event_json, timeout, false));
  size_t sent = WriteNow(ch->req_w, frame);
  fri::v1::ForkRequest fr;
  fr.set_seed_id(r.seed);
  const std::string id = absl::StrCat(opts_.runtime, "-", fn.name, "-", next_instance_++);
  fr.set_new_id(id);
  *fr.mutable_stdio() = StdioFor(*ch, opts_.log_path);
  (*fr.mutable_labels())["function"] = fn.name;
  fr.set_cgroup(cgroup);
  absl::StatusOr<fri::v1::ForkResponse> forked = ForkInstance(fr, net ? net->get() : nullptr);
  ch->CloseFarEnds();
  l0.Release(copy);
  if (!forked.ok()) l0.ForkFailed(copy, "", forked.status());
  Serve(r, forked, t0, *ch, id, absl::string_view(frame).substr(sent), cgroup, deadline, true);
  return r;
}

absl::StatusOr<Channel> RuntimeSeeds::ForkL2(const Function& fn, const std::string& id) {
  bool from_l0 = false;
  {
    absl::MutexLock l(&mu_);
    from_l0 = UseL0() || l1_.copies.empty();
  }
  if (!from_l0) {
    absl::StatusOr<Channel> ch = ForkL2From(fn, id, false);
    if (ch.ok() || l0_ == nullptr) return ch;
    std::fprintf(stderr, "seedd: loading %s into a fork of the level-1 seed failed (%s); trying level 0\n",
                 fn.name.c_str(), std::string(ch.status().message()).c_str());
    sb_.Destroy(id).IgnoreError();
  }
  if (l0_ == nullptr) return absl::UnavailableError(absl::StrCat("the ", opts_.runtime, " runtime has no seed to fork"));
  return ForkL2From(fn, id, true);
}

absl::StatusOr<Channel> RuntimeSeeds::ForkL2From(const Function& fn, const std::string& id, bool from_l0) {
  ASSIGN_OR_RETURN(Channel ch, Channel::Make());
  std::string frame = Frame(RequestJson(fn, true, "", absl::ZeroDuration(), true));
  // From level 0 the init first execs the runtime, which then finds the request.
  if (from_l0) frame = L0ExecFrame(opts_.args, opts_.env) + frame;
  size_t sent = WriteNow(ch.req_w, frame);
  fri::v1::ForkRequest fr;
  fr.set_seed_id(from_l0 ? l0_->l1_id() : l1_id());
  fr.set_new_id(id);
  *fr.mutable_stdio() = StdioFor(ch, opts_.log_path);
  (*fr.mutable_labels())["runtime"] = opts_.runtime;
  (*fr.mutable_labels())["level"] = "2";
  (*fr.mutable_labels())["function"] = fn.name;
  if (from_l0) (*fr.mutable_labels())["from_level"] = "0";
  absl::StatusOr<fri::v1::ForkResponse> forked = sb_.Fork(fr);
  ch.CloseFarEnds();
  RETURN_IF_ERROR(forked.status());
  const Deadline deadline = Deadline::In(kLoadTimeout);
  RETURN_IF_ERROR(WriteAll(ch.req_w, absl::string_view(frame).substr(sent), deadline));
  if (from_l0) {
    ASSIGN_OR_RETURN(std::string ready, ReadFrame(ch.resp_r, deadline));
    if (!absl::StrContains(ready, "\"ready\"")) {
      return absl::UnavailableError(absl::StrCat("starting the ", opts_.runtime, " runtime in a fork of the level-0 seed: ", ready));
    }
  }
  ASSIGN_OR_RETURN(std::string reply, ReadFrame(ch.resp_r, deadline));
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.contains("loaded")) {
    return absl::InternalError(absl::StrCat("loading the code answered ", reply));
  }
  if (from_l0) {
    std::fprintf(stderr, "seedd: %s has no level-1 seed that forks: %s's level-2 seed \"%s\" is made from level 0\n",
                 opts_.runtime.c_str(), fn.name.c_str(), id.c_str());
  }
  return ch;
}

}  // namespace seedvisor::seedd
