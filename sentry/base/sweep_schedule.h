// When to sweep a table whose entries outlive what they stand for (weak
// pointers to pipes, FIFOs, tasks, address spaces): when it has grown to
// twice its size after the last sweep, so that adding an entry costs O(1)
// amortised instead of a walk of the whole table.
//
//   SweepSchedule schedule_{/*floor=*/64};          // guarded by the table's lock
//   table_[key] = entry;
//   schedule_.SweepIfDue(table_, [](const auto& e) { return e.second.expired(); });
//
// Not thread safe: the caller holds the table's lock.
#ifndef SEEDVISOR_SENTRY_BASE_SWEEP_SCHEDULE_H_
#define SEEDVISOR_SENTRY_BASE_SWEEP_SCHEDULE_H_

#include <algorithm>
#include <cstddef>
#include <iterator>

namespace seedvisor {

class SweepSchedule {
 public:
  // `floor`: no sweep is due below 2 * floor entries (a small table is
  // cheaper to keep than to walk).
  explicit constexpr SweepSchedule(size_t floor) : floor_(floor) {}

  // Whether a table of `size` entries is due a sweep.
  bool Due(size_t size) const { return size >= 2 * std::max(swept_at_, floor_); }

  // Records a sweep (due or not) that left `size` entries.
  void Swept(size_t size) { swept_at_ = size; }

  // Erases the entries (of a map or an unordered_map) of `table` for which `gone(entry)` holds, if a sweep
  // is due; whether it swept (iterators into `table` are then invalid).
  template <typename Table, typename Gone>
  bool SweepIfDue(Table& table, Gone gone) {
    if (!Due(table.size())) return false;
    for (auto it = table.begin(); it != table.end();) {
      it = gone(*it) ? table.erase(it) : std::next(it);
    }
    Swept(table.size());
    return true;
  }

 private:
  size_t floor_;
  size_t swept_at_ = 0;
};

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_SWEEP_SCHEDULE_H_
