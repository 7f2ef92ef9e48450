#include "seedd/runtime_seeds.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fri/status_macros.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {
namespace {

constexpr absl::Duration kBootTimeout = absl::Seconds(60);
// Between the runtime's reply and Pause, so that the pause finds it blocked
// reading its channel (a pause elsewhere is correct too, only slower to fork).
constexpr absl::Duration kSettle = absl::Milliseconds(30);

fri::v1::Stdio StdioFor(const Channel& ch, const std::string& log) {
  fri::v1::Stdio s;
  s.set_stdin(Channel::FarPath(ch.req_r));
  s.set_stdout(Channel::FarPath(ch.resp_w));
  s.set_stderr(log);
  return s;
}

}  // namespace

RuntimeOptions PythonRuntime(const std::string& python, const std::string& log_path) {
  return {.runtime = "python",
          .args = {python, "-c", kPythonEntrySource},
          .env = {"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"},
          .log_path = log_path};
}

RuntimeOptions NodeRuntime(const std::string& node, const std::string& log_path) {
  return {.runtime = "node",
          .args = {node, "-e", kNodeEntrySource},
          .env = {"PATH=/usr/bin:/bin", "NODE_ENV=production"},
          .log_path = log_path};
}

RuntimeSeeds::RuntimeSeeds(fri::Sandboxes& sandboxes, RuntimeOptions o, InstanceCgroups* cgroups)
    : sb_(sandboxes), opts_(std::move(o)), l1_id_(opts_.runtime + "-l1"), cgroups_(cgroups) {}

RuntimeSeeds::~RuntimeSeeds() { Stop(); }

absl::Status RuntimeSeeds::BootL1() {
  absl::Time t0 = absl::Now();
  std::fprintf(stderr, "seedd: booting the %s level-1 seed (%s, seedsc create)...\n",
               opts_.runtime.c_str(), opts_.args[0].c_str());
  ASSIGN_OR_RETURN(Channel ch, Channel::Make());
  fri::v1::CreateRequest req;
  req.set_id(l1_id_);
  fri::v1::HostRoot* hr = req.mutable_host_root();
  for (const std::string& a : opts_.args) hr->add_args(a);
  for (const std::string& e : opts_.env) hr->add_env(e);
  *req.mutable_stdio() = StdioFor(ch, opts_.log_path);
  (*req.mutable_labels())["runtime"] = opts_.runtime;
  (*req.mutable_labels())["level"] = "1";
  ASSIGN_OR_RETURN(fri::v1::CreateResponse created, sb_.Create(req));
  ch.CloseFarEnds();
  absl::StatusOr<std::string> ready = ReadFrame(ch.resp_r, absl::Now() + kBootTimeout);
  if (!ready.ok()) {
    sb_.Destroy(l1_id_).IgnoreError();
    return absl::UnavailableError(absl::StrCat(opts_.runtime, " level-1 seed did not report ready: ",
                                               ready.status().message(), " (see ", opts_.log_path, ")"));
  }
  std::fprintf(stderr, "seedd: %s runtime up after %.0f ms (sandbox pid %d); pausing it\n",
               opts_.runtime.c_str(), absl::ToDoubleMilliseconds(absl::Now() - t0), created.pid());
  absl::SleepFor(kSettle);
  if (absl::Status s = sb_.Pause(l1_id_); !s.ok()) {
    sb_.Destroy(l1_id_).IgnoreError();
    return s;
  }
  l1_channel_ = std::make_unique<Channel>(std::move(ch));
  std::fprintf(stderr, "seedd: %s level-1 seed \"%s\" ready in %.0f ms\n", opts_.runtime.c_str(),
               l1_id_.c_str(), absl::ToDoubleMilliseconds(absl::Now() - t0));
  return absl::OkStatus();
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

CallResult RuntimeSeeds::Call(const Function& fn, const std::string& event_json,
                             absl::Duration timeout) {
  CallResult r;
  absl::Time t0 = absl::Now();
  absl::Time deadline = t0 + timeout;
  bool from_l2 = false;
  {
    absl::MutexLock l(&mu_);
    auto it = l2_.find(fn.name);
    if (it != l2_.end() && it->second.version == fn.version) {
      r.seed = it->second.id;
      from_l2 = true;
    } else {
      r.seed = l1_id_;
    }
  }
  std::string id;
  std::string frame;
  size_t sent = 0;
  // Taken before the fork, given back once the instance is gone.
  const std::string cgroup = cgroups_ != nullptr ? cgroups_->Take() : "";
  std::unique_ptr<Channel> ch;
  absl::StatusOr<fri::v1::ForkResponse> forked = absl::UnknownError("no fork");
  for (;;) {
    absl::StatusOr<Channel> made = Channel::Make();
    if (!made.ok()) {
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
    forked = sb_.Fork(fr);
    ch->CloseFarEnds();
    // An L2 seed dropped by a redeploy meanwhile: L1 serves, with the code.
    if (forked.ok() || !from_l2) break;
    from_l2 = false;
    r.seed = l1_id_;
  }
  absl::Time t_fork = absl::Now();
  r.phases.emplace_back("fork", t_fork - t0);
  if (!forked.ok()) {
    if (cgroups_ != nullptr) cgroups_->Give(cgroup);
    r.status = absl::UnavailableError(
        absl::StrCat("forking seed \"", r.seed, "\": ", forked.status().message()));
    return r;
  }
  r.forked = true;
  r.status = WriteAll(ch->req_w, absl::string_view(frame).substr(sent), deadline);
  if (r.status.ok()) {
    absl::StatusOr<std::string> reply = ReadFrame(ch->resp_r, deadline);
    if (reply.ok()) {
      r.reply = std::move(*reply);
    } else {
      r.status = reply.status();
    }
  }
  absl::Time t_run = absl::Now();
  r.phases.emplace_back("run", t_run - t_fork);
  sb_.Destroy(id).IgnoreError();
  // An instance that died, or whose handler failed (Python's MemoryError),
  // may have hit its cgroup's memory limit: then that is the answer.
  if (cgroups_ != nullptr && (!r.status.ok() || !absl::StartsWith(r.reply, "{\"result\""))) {
    if (std::string why = cgroups_->LimitHit(cgroup); !why.empty()) {
      r.status = absl::ResourceExhaustedError(why);
    }
  }
  if (cgroups_ != nullptr) cgroups_->Give(cgroup);
  r.phases.emplace_back("destroy", absl::Now() - t_run);
  return r;
}

void RuntimeSeeds::PromoteAsync(std::shared_ptr<const Function> fn) {
  absl::MutexLock l(&mu_);
  if (stopping_) return;
  if (auto it = l2_.find(fn->name); it != l2_.end() && it->second.version == fn->version) return;
  if (auto it = promoting_.find(fn->name); it != promoting_.end() && it->second >= fn->version) return;
  promoting_[fn->name] = fn->version;
  threads_.emplace_back([this, fn] { Promote(fn); });
}

void RuntimeSeeds::Promote(std::shared_ptr<const Function> fn) {
  absl::Time t0 = absl::Now();
  std::string id = absl::StrCat(opts_.runtime, "-l2-", fn->name, "-v", fn->version);
  auto fail = [&](const absl::Status& s) {
    std::fprintf(stderr, "seedd: promoting %s to a level-2 seed failed: %s\n", fn->name.c_str(),
                 std::string(s.message()).c_str());
    sb_.Destroy(id).IgnoreError();
  };
  absl::StatusOr<Channel> ch = Channel::Make();
  if (!ch.ok()) return fail(ch.status());
  std::string frame = Frame(RequestJson(*fn, true, "", absl::ZeroDuration(), true));
  size_t sent = WriteNow(ch->req_w, frame);
  fri::v1::ForkRequest fr;
  fr.set_seed_id(l1_id_);
  fr.set_new_id(id);
  *fr.mutable_stdio() = StdioFor(*ch, opts_.log_path);
  (*fr.mutable_labels())["runtime"] = opts_.runtime;
  (*fr.mutable_labels())["level"] = "2";
  (*fr.mutable_labels())["function"] = fn->name;
  absl::StatusOr<fri::v1::ForkResponse> forked = sb_.Fork(fr);
  ch->CloseFarEnds();
  if (!forked.ok()) return fail(forked.status());
  absl::Time deadline = absl::Now() + kBootTimeout;
  if (absl::Status s = WriteAll(ch->req_w, absl::string_view(frame).substr(sent), deadline); !s.ok()) {
    return fail(s);
  }
  absl::StatusOr<std::string> reply = ReadFrame(ch->resp_r, deadline);
  if (!reply.ok()) return fail(reply.status());
  nlohmann::json j = nlohmann::json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.contains("loaded")) {
    return fail(absl::InternalError(absl::StrCat("loading the code answered ", *reply)));
  }
  absl::SleepFor(kSettle);
  if (absl::Status s = sb_.Pause(id); !s.ok()) return fail(s);
  std::string old;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) {
      old = id;
    } else {
      auto it = l2_.find(fn->name);
      if (it != l2_.end() && it->second.version > fn->version) {
        old = id;  // redeployed meanwhile
      } else {
        if (it != l2_.end()) old = it->second.id;
        l2_[fn->name] = Seed{id, fn->version, std::make_unique<Channel>(std::move(*ch))};
      }
    }
  }
  if (!old.empty()) sb_.Destroy(old).IgnoreError();
  if (old != id) {
    std::fprintf(stderr, "seedd: function %s v%llu promoted to level-2 seed \"%s\" in %.0f ms\n",
                 fn->name.c_str(), static_cast<unsigned long long>(fn->version), id.c_str(),
                 absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
}

void RuntimeSeeds::DropOldL2(const std::string& name, uint64_t version) {
  std::string id;
  {
    absl::MutexLock l(&mu_);
    auto it = l2_.find(name);
    if (it == l2_.end() || it->second.version >= version) return;
    id = it->second.id;
    l2_.erase(it);
  }
  // Forks of it in flight already hold their own copy; the seed can go.
  sb_.Destroy(id).IgnoreError();
}

std::map<std::string, std::pair<std::string, uint64_t>> RuntimeSeeds::L2Seeds() {
  absl::MutexLock l(&mu_);
  std::map<std::string, std::pair<std::string, uint64_t>> out;
  for (const auto& [name, s] : l2_) out[s.id] = {name, s.version};
  return out;
}

void RuntimeSeeds::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace seedvisor::seedd
