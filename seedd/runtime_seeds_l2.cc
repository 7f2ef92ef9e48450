// RuntimeSeeds' level-2 seeds: a function promoted to a seed of its own,
// dropped when its code changes, listed and evicted under the seeds' memory
// budget (see runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fri/status_macros.h"

namespace seedvisor::seedd {

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

}  // namespace seedvisor::seedd
