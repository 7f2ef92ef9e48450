#include "sentry/fs/overlay/inode_numbers.h"

namespace seedvisor::sentry {

ino_t InodeNumbers::Fold(dev_t dev, ino_t ino) {
  const uint64_t n = ino;
  if (root_dev_ && dev == *root_dev_ && n <= kLowMask) return ino;  // the common case
  absl::MutexLock l(&mu_);
  if (n <= kLowMask) {
    const uint64_t index = IndexLocked(dev);
    if (index != kSpillIndex) return static_cast<ino_t>((index << kShift) | n);
  }
  auto [it, added] = spilled_.try_emplace({dev, ino}, 0);
  if (added) it->second = static_cast<ino_t>((kSpillIndex << kShift) | next_spilled_++);
  return it->second;
}

uint64_t InodeNumbers::IndexLocked(dev_t dev) {
  if (auto it = index_.find(dev); it != index_.end()) return it->second;
  // Indexes 2 .. kSpillIndex - 1 are for other devices.
  constexpr uint64_t kFirst = 2;
  constexpr uint64_t kCount = kSpillIndex - kFirst;
  const uint64_t hash = (static_cast<uint64_t>(dev) * 0x9e3779b97f4a7c15ULL) >> 32;
  uint64_t index = kSpillIndex;
  for (uint64_t probe = 0; probe < kCount; ++probe) {
    const uint64_t candidate = kFirst + (hash + probe) % kCount;
    if (!taken_[candidate]) {
      index = candidate;
      taken_[candidate] = true;
      break;
    }
  }
  index_[dev] = index;
  return index;
}

}  // namespace seedvisor::sentry
