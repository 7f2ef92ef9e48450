#include "seedd/seed_budget.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>

#include "sentry/base/deadline.h"

namespace seedvisor::seedd {

std::vector<size_t> EvictionOrder(const std::vector<absl::Duration>& last_used) {
  std::vector<size_t> order(last_used.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return last_used[a] < last_used[b]; });
  return order;
}

void SeedBudget::Start() {
  if (opts_.budget <= 0) return;
  thread_ = std::thread([this] {
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
        stop_cv_.Await(&mu_, absl::Condition(&stop), sentry::Deadline::In(opts_.period));
        if (stopping_) return;
      }
      Check();
    }
  });
}

int64_t SeedBudget::SeedsPss() {
  std::set<std::string> seeds;
  const fri::v1::ListResponse list = sb_.List();  // outlives the loop
  for (const auto& info : list.sandboxes()) {
    // Instances run; a containerd container forked paused is not a seed.
    if (info.status() == "paused" && !info.labels().contains("owner")) seeds.insert(info.id());
  }
  int64_t total = 0;
  if (absl::StatusOr<fri::v1::StatsResponse> st = sb_.Stats(""); st.ok()) {
    for (const auto& s : st->sandboxes()) {
      if (seeds.contains(s.id())) total += s.pss_bytes();
    }
  }
  return total;
}

void SeedBudget::Check() {
  if (opts_.budget <= 0) return;
  struct Owned {
    RuntimeSeeds* rt;
    L2Usage u;
  };
  std::vector<Owned> l2;
  std::vector<absl::Duration> last_used;
  for (RuntimeSeeds* rt : runtimes_) {
    for (L2Usage& u : rt->L2Usages()) {
      last_used.push_back(u.last_used);
      l2.push_back({rt, std::move(u)});
    }
  }
  int64_t total = SeedsPss();
  uint64_t evicted = 0;
  // One eviction per check: a destroyed seed's host processes take a moment
  // to exit and free their pages, and measuring before they have would
  // evict more than needed. The next check, a period later, measures again.
  for (size_t i : EvictionOrder(last_used)) {
    if (total <= opts_.budget) break;
    const Owned& o = l2[i];
    if (!o.rt->Evict(o.u.function, o.u.seed)) continue;  // redeployed or promoted meanwhile
    ++evicted;
    std::fprintf(stderr,
                 "seedd: seeds' PSS %.1f MiB over --seed-memory=%.0f MiB: evicted \"%s\", the least "
                 "recently used level-2 seed\n",
                 total / 1048576.0, opts_.budget / 1048576.0, o.u.seed.c_str());
    break;
  }
  absl::MutexLock l(&mu_);
  stats_.seeds_pss_bytes = total;
  stats_.evictions += evicted;
}

SeedBudgetStats SeedBudget::Stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

void SeedBudget::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace seedvisor::seedd
