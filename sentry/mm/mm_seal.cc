// mseal(2) (Linux 6.10, mm/mseal.c) and the checks that honour a seal.
#include <sys/mman.h>

#include "sentry/mm/mm.h"
#include "sentry/mm/page_range.h"

namespace seedvisor::sentry {

Status MM::Mseal(UserAddr addr, uint64_t length, uint64_t flags) {
  // do_mseal(): no flags yet; a page-aligned start; a length that rounds
  // up to nothing but was not 0, or a range that wraps, is EINVAL; an empty
  // range is done.
  if (flags != 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(PageRange range, AlignedPageRange(addr, length));
  if (range.empty()) return {};
  const uint64_t start = range.start;
  const uint64_t end = range.end;
  absl::MutexLock l(&mu_);
  // check_mm_seal(): every page mapped, or nothing is sealed.
  if (!MappedLocked(start, end)) return Errno(ENOMEM);
  vmas_.Modify(start, end, [](Vma& v) { v.sealed = true; });
  return {};
}

bool MM::SealedIn(uint64_t start, uint64_t end) const {
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    if (it->second.end > start && it->second.sealed) return true;
  }
  return false;
}

bool MM::SealedAgainstAdvice(uint64_t start, uint64_t end, int advice) const {
  // is_madv_discard()
  switch (advice) {
    case MADV_FREE:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED:
    case MADV_REMOVE:
    case MADV_DONTFORK:
    case MADV_WIPEONFORK:
      break;
    default:
      return false;
  }
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start || !v.sealed) continue;
    // is_ro_anon()
    if (!v.file && !(v.flags & MAP_SHARED) && !(v.prot & PROT_WRITE)) return true;
  }
  return false;
}

}  // namespace seedvisor::sentry
