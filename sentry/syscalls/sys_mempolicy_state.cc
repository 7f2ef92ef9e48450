// The memory policies the sentry keeps (sys_mempolicy.h): per thread and
// per mm address range, in two tables outside Task and MM.
//
// Keys: a task by its address, checked against a weak reference (a task
// that is gone no longer matches, though a new one may reuse its
// address); an mm by MM::id(), which no other mm ever has. Entries of
// owners that are gone are swept when a table has doubled since the last
// sweep, so they cost O(1) amortized.
//
// A sandbox fork copies the sentry's memory, these tables and every Task
// and MM with it (ids kept), so a fork's guest keeps its policies. The lock
// is held only inside these functions, never across a wait, so no parked
// thread holds it at a fork.
#include <linux/mempolicy.h>

#include <algorithm>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/sweep_schedule.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_mempolicy.h"

namespace seedvisor::sentry {

// ---- RangePolicies ----

const MemPolicy* RangePolicies::At(uint64_t addr) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  return addr < it->second.end ? &it->second.policy : nullptr;
}

void RangePolicies::SplitAt(uint64_t addr) {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return;
  --it;
  if (it->first < addr && addr < it->second.end) {
    Range tail = it->second;
    it->second.end = addr;
    ranges_.emplace(addr, std::move(tail));
  }
}

void RangePolicies::Set(uint64_t start, uint64_t end, const std::optional<MemPolicy>& p) {
  if (start >= end) return;
  SplitAt(start);
  SplitAt(end);
  ranges_.erase(ranges_.lower_bound(start), ranges_.lower_bound(end));
  if (!p) return;
  auto it = ranges_.emplace(start, Range{end, *p}).first;
  // Neighbours with the same policy become one range, as vma_merge() joins
  // VMAs whose policies are equal (mpol_equal()).
  if (auto next = std::next(it); next != ranges_.end() && next->first == end &&
                                 next->second.policy == *p) {
    it->second.end = next->second.end;
    ranges_.erase(next);
  }
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end == start && prev->second.policy == *p) {
      prev->second.end = it->second.end;
      ranges_.erase(it);
    }
  }
}

namespace {

struct TaskEntry {
  std::weak_ptr<const Task> owner;
  MemPolicy policy;
};

struct MmEntry {
  std::weak_ptr<MM> owner;
  RangePolicies ranges;
};

class Tables {
 public:
  static Tables& Get() {
    static Tables* tables = new Tables();  // never destroyed: tasks may outlive statics
    return *tables;
  }

  std::optional<MemPolicy> TaskPolicy(const Task& t) {
    absl::MutexLock l(&mu_);
    auto it = tasks_.find(&t);
    if (it == tasks_.end() || it->second.owner.lock().get() != &t) return std::nullopt;
    return it->second.policy;
  }

  void SetTaskPolicy(const Task& t, const std::optional<MemPolicy>& p) {
    absl::MutexLock l(&mu_);
    if (!p) {
      tasks_.erase(&t);
      return;
    }
    tasks_[&t] = TaskEntry{t.weak_from_this(), *p};
    task_sweeps_.SweepIfDue(tasks_, [](const auto& e) { return e.second.owner.expired(); });
  }

  // `create`: false for a change that leaves an mm without policies as it
  // is (every mmap and munmap asks; most mms never have one).
  void WithRanges(const std::shared_ptr<MM>& mm, bool create,
                  const std::function<void(RangePolicies&)>& f) {
    absl::MutexLock l(&mu_);
    if (!create) {
      auto it = mms_.find(mm->id());
      if (it != mms_.end()) f(it->second.ranges);
      return;
    }
    f(EntryLocked(mm).ranges);
  }

  // Copies the ranges of `from` to `to` (a fork's new mm).
  void CopyRanges(const std::shared_ptr<MM>& from, const std::shared_ptr<MM>& to) {
    absl::MutexLock l(&mu_);
    auto it = mms_.find(from->id());
    if (it == mms_.end() || it->second.ranges.empty()) return;
    RangePolicies copy = it->second.ranges;
    EntryLocked(to).ranges = std::move(copy);
  }

 private:
  MmEntry& EntryLocked(const std::shared_ptr<MM>& mm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [it, added] = mms_.try_emplace(mm->id());
    if (added) {
      it->second.owner = mm;
      if (mm_sweeps_.SweepIfDue(mms_, [](const auto& e) { return e.second.owner.expired(); })) {
        it = mms_.find(mm->id());
      }
    }
    return it->second;
  }

  absl::Mutex mu_;
  std::map<const Task*, TaskEntry> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, MmEntry> mms_ ABSL_GUARDED_BY(mu_);
  SweepSchedule task_sweeps_ ABSL_GUARDED_BY(mu_){64};
  SweepSchedule mm_sweeps_ ABSL_GUARDED_BY(mu_){64};
};

}  // namespace

namespace mempolicy {

std::optional<MemPolicy> TaskPolicy(const Task& t) { return Tables::Get().TaskPolicy(t); }

void SetTaskPolicy(const Task& t, const std::optional<MemPolicy>& p) {
  Tables::Get().SetTaskPolicy(t, p);
}

void WithRanges(const Task& t, const std::function<void(RangePolicies&)>& f) {
  Tables::Get().WithRanges(t.shared_mm(), /*create=*/true, f);
}

}  // namespace mempolicy

void MemPolicyOnClone(const Task& parent, const Task& child) {
  Tables& tables = Tables::Get();
  if (std::optional<MemPolicy> p = tables.TaskPolicy(parent)) tables.SetTaskPolicy(child, p);
  std::shared_ptr<MM> from = parent.shared_mm(), to = child.shared_mm();
  if (from != nullptr && to != nullptr && from != to) tables.CopyRanges(from, to);
}

void MemPolicyRemapped(const Task& t, uint64_t from, uint64_t from_len, uint64_t to,
                       uint64_t to_len) {
  Tables::Get().WithRanges(t.shared_mm(), /*create=*/false, [&](RangePolicies& r) {
    std::optional<MemPolicy> moved;
    if (from_len != 0) {
      if (const MemPolicy* p = r.At(from)) moved = *p;
      r.Set(from, from + from_len, std::nullopt);
    }
    r.Set(to, to + to_len, to_len != 0 && from_len != 0 ? moved : std::nullopt);
  });
}

}  // namespace seedvisor::sentry
