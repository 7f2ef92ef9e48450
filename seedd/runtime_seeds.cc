// RuntimeSeeds' runtimes and life: booting (and rebooting) the level-1
// seed, the maintenance thread, Stop. The call path is in
// runtime_seeds_call.cc, level-2 seeds in runtime_seeds_l2.cc, copies and
// replicas in runtime_seeds_replicas.cc (see runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include <cstdio>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fri/status_macros.h"

namespace seedvisor::seedd {
namespace {

constexpr absl::Duration kBootTimeout = absl::Seconds(60);

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

void RuntimeSeeds::StartMaintenance() {
  if (!maintenance_.joinable()) maintenance_ = std::thread([this] { DropIdle(); });
}

void RuntimeSeeds::FallBackToL0(RuntimeSeeds* l0) {
  l0_ = l0;
  StartMaintenance();  // the L2 seeds made from level 0 want replicas too
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
