#include "sentry/sfork/spare_warming.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <new>
#include <set>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "platform/seed_copies.h"
#include "sentry/mm/mm.h"
#include "sentry/sfork/dirty_pages.h"

namespace seedvisor::sentry {
namespace {

// Spares made but not yet in the pool, by anchor: their copies are having
// pages written ahead. The caller's fork lock guards it.
std::map<pid_t, WarmedSpare> warming_;
// The warming spares whose processes KillWarmingSpares killed: their pids
// may go to other processes, so WarmForkSpare writes into them no more.
// Held by WarmForkSpare while it writes, and by that kill.
absl::Mutex warm_mu_;
std::set<pid_t> killed_warming_ ABSL_GUARDED_BY(warm_mu_);

// Guest memory whose copy-on-write pages are learned and written ahead
// (dirty_pages.h): private anonymous writable memory (heap, stacks,
// allocator arenas). Not a file's private pages (written ahead, a page not
// yet written would stop following the file), nor what a fork wipes.
bool Prebreakable(const Vma& v) {
  return v.file == nullptr && (v.flags & MAP_PRIVATE) != 0 && (v.prot & PROT_WRITE) != 0 &&
         !v.wipeonfork;
}

bool InRanges(const std::vector<std::pair<uint64_t, uint64_t>>& ranges, uint64_t page) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(),
                             std::pair<uint64_t, uint64_t>(page, ~uint64_t{0}));
  return it != ranges.begin() && page < std::prev(it)->second;
}

}  // namespace

void PlanSpareDirtyPages(Kernel& k, const TasksByMm& by_mm, const Spare& spare,
                         SpareWarmup* warm) {
  auto* copies = dynamic_cast<platform::SeedCopies*>(&k.platform());
  if (copies == nullptr) return;  // a platform with no such copies: nothing to learn
  DirtyPageLog& log = DirtyPageLog::Get();
  log.Drain();
  std::set<uint64_t> live;
  for (const auto& [mm, tasks] : by_mm) live.insert(mm->id());
  log.Prune(live);
  std::vector<ScanTarget> targets;
  for (const auto& [mm, tasks] : by_mm) {
    std::shared_ptr<platform::AddressSpace> as = mm->shared_address_space();
    const pid_t pid = as != nullptr ? copies->SeedCopyProcess(*as, spare.anchor) : -1;
    if (pid <= 0) continue;
    ScanTarget t{.tag = mm->id(), .pid = pid, .ranges = {}};
    for (const Vma& v : mm->Vmas()) {
      if (Prebreakable(v)) t.ranges.emplace_back(v.start, v.end);
    }
    const std::vector<uint64_t>* learned = warm != nullptr ? log.Pages(t.tag) : nullptr;
    if (learned != nullptr) {
      std::vector<uint64_t> pages;
      for (uint64_t p : *learned) {
        if (InRanges(t.ranges, p)) pages.push_back(p);
      }
      if (!pages.empty()) warm->jobs.emplace_back(pid, std::move(pages));
    }
    targets.push_back(std::move(t));
  }
  const std::string plan = EncodeScanPlan(targets);
  for (size_t at = 0; at < plan.size();) {
    const ssize_t n = write(spare.life_fd, plan.data() + at, plan.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the anchor is gone: the spare fails later
    at += static_cast<size_t>(n);
  }
}

void HoldForWarming(Spare spare, SpareWarmup& warm) {
  warm.anchor = spare.anchor;
  warming_[warm.anchor] = WarmedSpare{std::move(spare), false};
}

void WarmForkSpare(SpareWarmup& warm) {
  absl::MutexLock l(&warm_mu_);
  if (killed_warming_.contains(warm.anchor)) return;
  for (const auto& [pid, pages] : warm.jobs) warm.pages_written += PrebreakPages(pid, pages);
}

std::optional<WarmedSpare> TakeWarmedSpare(pid_t anchor) {
  auto it = warming_.find(anchor);
  if (it == warming_.end()) return std::nullopt;
  WarmedSpare w = std::move(it->second);
  warming_.erase(it);
  absl::MutexLock l(&warm_mu_);
  killed_warming_.erase(anchor);
  return w;
}

void DropWarmingSpares() {
  for (auto& [anchor, w] : warming_) w.dropped = true;
}

void KillWarmingSpares(std::vector<pid_t>* groups) {
  absl::MutexLock l(&warm_mu_);
  for (const auto& [anchor, w] : warming_) {
    killed_warming_.insert(anchor);
    kill(-anchor, SIGKILL);
    groups->push_back(anchor);
  }
}

void LetGoOfWarmingInForkChild() {
  for (auto& [other, w] : warming_) close(w.spare.life_fd);
  warming_.clear();
  // SAFETY: this process has one thread; the seed's WarmForkSpare may have
  // held the lock at the fork.
  new (&warm_mu_) absl::Mutex;
  {
    absl::MutexLock l(&warm_mu_);
    killed_warming_.clear();
  }
  DirtyPageLog::Get().ResetInForkChild();
}

}  // namespace seedvisor::sentry
