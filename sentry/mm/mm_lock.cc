// MM (mm.h): memory locking, as Linux's mm/mlock.c keeps it. The lock is
// a VMA flag (Vma::lock) and mm->locked_vm is the sum of the locked VMAs
// (VmaMap::locked_bytes()); the pages are faulted in on the host when
// locked, but the host is never asked to lock them: the guest's locked
// memory is only counted (VmLck, smaps' Locked) and bounded by its
// RLIMIT_MEMLOCK, and the host may still reclaim it.
#include <sys/mman.h>

#include <algorithm>

#include "sentry/mm/mm.h"

namespace seedvisor::sentry {

Status MM::SetLock(uint64_t start, uint64_t end, uint8_t lock, uint64_t limit) {
  if (end < start) return Errno(EINVAL);
  if (end == start) return {};
  absl::MutexLock l(&mu_);
  // do_mlock(): the pages locked after the call, without counting twice
  // those of the range that are locked already (count_mm_mlocked_page_nr()).
  if ((lock & Vma::kLocked) && limit != UINT64_MAX) {
    uint64_t locked = vmas_.locked_bytes() + (end - start);
    auto it = vmas_.upper_bound(start);
    if (it != vmas_.begin()) --it;
    for (; it != vmas_.end() && it->first < end; ++it) {
      const Vma& v = it->second;
      if (v.end <= start || !(v.lock & Vma::kLocked)) continue;
      locked -= std::min(v.end, end) - std::max(v.start, start);
    }
    if (locked / kPageSize > limit / kPageSize) return Errno(ENOMEM);
  }
  // apply_vma_lock_flags(): the VMAs from `start` on, until a hole.
  uint64_t covered = start;
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start) continue;
    if (v.start > covered) break;
    covered = std::min(v.end, end);
  }
  if (covered > start) {
    vmas_.Modify(start, covered, [lock](Vma& v) { v.lock = lock; });
  }
  if (covered < end) return Errno(ENOMEM);
  return {};
}

Status MM::SetLockAll(int flags, uint64_t limit) {
  absl::MutexLock l(&mu_);
  if ((flags & MCL_CURRENT) && limit != UINT64_MAX) {
    // mlockall(): all of the address space (total_vm) within the limit.
    uint64_t total = 0;
    for (const auto& [start, v] : vmas_) total += v.end - v.start;
    if (total / kPageSize > limit / kPageSize) return Errno(ENOMEM);
  }
  const uint8_t lock = flags & (MCL_CURRENT | MCL_FUTURE)
                           ? Vma::kLocked | ((flags & MCL_ONFAULT) ? Vma::kLockOnFault : 0)
                           : 0;
  def_lock_ = (flags & MCL_FUTURE) ? lock : 0;
  if ((flags & MCL_FUTURE) && !(flags & MCL_CURRENT)) return {};
  if (vmas_.size() == 0) return {};
  const uint64_t lo = vmas_.begin()->first, hi = std::prev(vmas_.end())->second.end;
  vmas_.Modify(lo, hi, [lock](Vma& v) { v.lock = lock; });
  return {};
}

uint64_t MM::LockedBytes() const {
  absl::MutexLock l(&mu_);
  return vmas_.locked_bytes();
}

std::vector<MM::PopulateRange> MM::RangesToPopulate(uint64_t start, uint64_t end) const {
  absl::MutexLock l(&mu_);
  std::vector<PopulateRange> out;
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start || v.lock != Vma::kLocked) continue;
    // populate_vma_page_range(): PROT_NONE memory is locked, not faulted.
    if (!(v.prot & (PROT_READ | PROT_WRITE | PROT_EXEC))) continue;
    // Linux faults a shared mapping for reading. Here shared anonymous
    // memory and write-only mappings are faulted for writing: the host's
    // MADV_POPULATE_READ refuses a mapping without PROT_READ, and a shmem
    // page written is the same page (a file's would be made dirty).
    const bool shared = (v.flags & MAP_SHARED) != 0;
    const bool write = (v.prot & PROT_WRITE) &&
                       (!shared || v.anon_shared || !(v.prot & PROT_READ));
    out.push_back({std::max(v.start, start), std::min(v.end, end), write});
  }
  return out;
}

Status MM::Populate(const PopulateRange& r) {
  return as_->Advise(UserAddr(r.start), r.end - r.start,
                     r.write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
}

}  // namespace seedvisor::sentry
