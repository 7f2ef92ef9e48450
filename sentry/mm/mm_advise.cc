// madvise(2) and msync(2) (mm/madvise.c, mm/msync.c): the checks Linux
// makes on the VMAs of the range are made here on the sentry's VMAs, the
// host's mapping of the same range then gets what is left to do (dropping,
// prefetching, writing back pages).
#include <sys/mman.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "sentry/mm/mm.h"
#include "sentry/mm/page_range.h"

namespace seedvisor::sentry {
namespace {

// madvise_behavior_valid() (x86-64, with transparent huge pages, without
// CONFIG_KSM or CONFIG_MEMORY_FAILURE: the sandbox shows no
// /sys/kernel/mm/ksm): an advice not in it is EINVAL before anything else,
// an empty range with one in it succeeds, supported or not.
bool KnownAdvice(int advice) {
  switch (advice) {
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_DONTNEED:
    case MADV_FREE:
    case MADV_REMOVE:
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
    case MADV_COLD:
    case MADV_PAGEOUT:
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
    case MADV_DONTNEED_LOCKED:
      return true;
    default:
      return false;
  }
}

// Whether `advice` fails with EINVAL on VMA `v`: dropping the pages of a
// locked VMA (madvise_dontneed_free_valid_vma(): VM_LOCKED unless
// MADV_DONTNEED_LOCKED), MADV_FREE of anything but private anonymous
// memory (madvise_free_single_vma(): vma_is_anonymous()). The host's
// mapping is never locked (Vma::lock is the sentry's count), so the host
// would not refuse it.
bool RefusedOn(const Vma& v, int advice) {
  switch (advice) {
    case MADV_DONTNEED:
      return (v.lock & Vma::kLocked) != 0;
    case MADV_FREE:
      return (v.lock & Vma::kLocked) != 0 || v.file != nullptr || (v.flags & MAP_SHARED);
    default:
      return false;
  }
}

}  // namespace

Status MM::Madvise(UserAddr addr, uint64_t length, int advice) {
  // do_madvise(): the advice, then the start, then a length that rounds up
  // to nothing (EINVAL) or a range that wraps (EINVAL); an empty range is
  // done.
  if (!KnownAdvice(advice)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(PageRange range, AlignedPageRange(addr, length));
  if (range.empty()) return {};
  const uint64_t start = range.start;
  const uint64_t end = range.end;
  const uint64_t len = end - start;
  {
    absl::ReleasableMutexLock l(&mu_);
    if (SealedAgainstAdvice(start, end, advice)) return Errno(EPERM);
    // madvise_walk_vmas(): VMA by VMA, stopping at the first that refuses
    // the advice (EINVAL, over any hole before it); what came before it
    // was advised.
    auto it = vmas_.upper_bound(start);
    if (it != vmas_.begin()) --it;
    for (; it != vmas_.end() && it->first < end; ++it) {
      const Vma& v = it->second;
      if (v.end <= start || !RefusedOn(v, advice)) continue;
      const uint64_t stop = std::max(start, v.start);
      l.Release();
      if (stop > start) (void)as_->Advise(addr, stop - start, advice);
      return Errno(EINVAL);
    }
  }
  // Nothing at or above UserTop() is the guest's (the platform's stub lives
  // there): pages no VMA covers, ENOMEM, and never the host's to advise.
  if (end > as_->UserTop().value()) return Errno(ENOMEM);
  switch (advice) {
    case MADV_DONTNEED:
    case MADV_FREE:
    case MADV_WILLNEED:
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
      return as_->Advise(addr, len, advice);
    case MADV_DONTNEED_LOCKED:
      // The host's mapping is not locked: its MADV_DONTNEED drops the same
      // pages.
      return as_->Advise(addr, len, MADV_DONTNEED);
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
      return AdviseFork(start, end, advice);
    default:
      return Errno(EINVAL);
  }
}

Status MM::AdviseFork(uint64_t start, uint64_t end, int advice) {
  absl::MutexLock l(&mu_);
  // madvise_vma_behavior(): WIPEONFORK only for private anonymous memory,
  // checked before anything changes.
  bool hole = false;
  uint64_t cur = start;
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start) continue;
    if (v.start > cur) hole = true;
    cur = v.end;
    if (advice == MADV_WIPEONFORK && (v.file != nullptr || (v.flags & MAP_SHARED))) {
      return Errno(EINVAL);
    }
  }
  if (cur < end) hole = true;
  // The mapped parts change, as in Linux; the holes make it ENOMEM.
  vmas_.Modify(start, end, [advice](Vma& v) {
    switch (advice) {
      case MADV_DONTFORK: v.dontfork = true; break;
      case MADV_DOFORK: v.dontfork = false; break;
      case MADV_WIPEONFORK: v.wipeonfork = true; break;
      case MADV_KEEPONFORK: v.wipeonfork = false; break;
    }
  });
  if (hole) return Errno(ENOMEM);
  return {};
}

Status MM::Msync(UserAddr addr, uint64_t length, int flags) {
  // do_msync(): unknown flags, an unaligned start, MS_ASYNC with MS_SYNC
  // (EINVAL); a range that wraps (ENOMEM); an empty range is done.
  if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return Errno(EINVAL);
  const uint64_t start = addr.value();
  if (start % kPageSize != 0) return Errno(EINVAL);
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return Errno(EINVAL);
  const uint64_t end = start + PageRoundUp(length);
  if (end < start) return Errno(ENOMEM);
  if (end == start) return {};
  // The walk: MS_INVALIDATE of a locked VMA is EBUSY; pages no VMA covers
  // are skipped and make it ENOMEM at the end, or at once for a plain
  // MS_ASYNC; only MS_SYNC of a shared file mapping writes anything back
  // (vfs_fsync_range(): the host's msync of the same pages).
  std::vector<std::pair<uint64_t, uint64_t>> writeback;
  Errno err(0);
  bool unmapped = false;
  {
    absl::MutexLock l(&mu_);
    uint64_t cur = start;
    auto it = vmas_.upper_bound(cur);
    if (it != vmas_.begin() && std::prev(it)->second.end > cur) --it;
    for (;;) {
      if (it == vmas_.end()) {
        err = Errno(ENOMEM);
        break;
      }
      const Vma& v = it->second;
      if (cur < v.start) {
        if (flags == MS_ASYNC || v.start >= end) {
          err = Errno(ENOMEM);
          break;
        }
        cur = v.start;
        unmapped = true;
      }
      if ((flags & MS_INVALIDATE) && (v.lock & Vma::kLocked)) {
        err = Errno(EBUSY);
        break;
      }
      if ((flags & MS_SYNC) && v.file != nullptr && (v.flags & MAP_SHARED)) {
        writeback.emplace_back(cur, std::min(end, v.end));
      }
      cur = v.end;
      if (cur >= end) break;
      ++it;
    }
  }
  for (const auto& [s, e] : writeback) SV_TRY(as_->Sync(UserAddr(s), e - s, MS_SYNC));
  if (err.value() != 0) return err;
  if (unmapped) return Errno(ENOMEM);
  return {};
}

}  // namespace seedvisor::sentry
