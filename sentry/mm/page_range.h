// The page range a madvise(2)- or mseal(2)-like call names (do_madvise(),
// do_mseal()): a page-aligned start, the length rounded up to whole pages.
// Private to sentry/mm.
//
//   SV_ASSIGN_OR_RETURN(PageRange r, AlignedPageRange(addr, length));
//   if (r.empty()) return {};
#ifndef SEEDVISOR_SENTRY_MM_PAGE_RANGE_H_
#define SEEDVISOR_SENTRY_MM_PAGE_RANGE_H_

#include <cerrno>
#include <cstdint>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::sentry {

struct PageRange {
  uint64_t start = 0;
  uint64_t end = 0;
  bool empty() const { return start == end; }
};

// EINVAL for an unaligned start, a length that rounds up to nothing but
// was not 0, or a range that wraps; a length of 0 is an empty range.
inline Result<PageRange> AlignedPageRange(UserAddr addr, uint64_t length) {
  const uint64_t start = addr.value();
  if (start % kPageSize != 0) return Errno(EINVAL);
  const uint64_t len = PageRoundUp(length);
  if (length != 0 && len == 0) return Errno(EINVAL);
  if (start + len < start) return Errno(EINVAL);
  return PageRange{start, start + len};
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_MM_PAGE_RANGE_H_
