// cachestat(2) (Linux 6.5, mm/filemap.c).
//
// The sentry keeps no page cache of its own that it evicts: a regular
// file's pages below its end are all reported cached, none dirty, under
// writeback or evicted. That is what Linux says of a tmpfs file whose
// pages are all there, and for a host file it is what the guest could
// not tell apart from a cache that holds the file. The host's own cache
// is never asked: what it holds of a file shared with other sandboxes
// (a read-only image layer) would tell one sandbox what another reads.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>

#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/vfs/inode.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

struct CachestatRange {  // struct cachestat_range
  uint64_t off;
  uint64_t len;
};

struct Cachestat {  // struct cachestat
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

}  // namespace

SyscallReturn SysCachestat(Task& t, const SyscallArgs& a) {
  // fdget(): an O_PATH fd is no file here.
  auto f = t.fds().Get(a.Int(0));
  if (!f.ok() || ((*f)->flags() & O_PATH) != 0) return Errno(EBADF);
  CachestatRange range;
  SV_TRY(t.CopyInObj(a.Addr(1), &range));
  SV_ASSIGN_OR_RETURN(struct stat st, (*f)->Stat());
  // can_do_cachestat() (Linux 6.14): only a file the caller may write, or
  // owns, since what is cached tells what others read.
  if (!(*f)->writable()) {
    const FsCreds c = Vfs::CredsOf(t);
    if (c.uid != st.st_uid && !c.fowner && !CheckAccess(c, st, W_OK).ok()) {
      return Errno(EPERM);
    }
  }
  if (a.Uint(3) != 0) return Errno(EINVAL);
  Cachestat cs{};
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    // The pages [off >> PAGE_SHIFT, (off + len - 1) >> PAGE_SHIFT], to the
    // end of the file when len is 0.
    const uint64_t pages = (static_cast<uint64_t>(st.st_size) + kPageSize - 1) / kPageSize;
    const uint64_t first = range.off / kPageSize;
    const uint64_t last = range.len == 0 ? UINT64_MAX : (range.off + range.len - 1) / kPageSize;
    if (first < pages && first <= last) cs.nr_cache = std::min(last, pages - 1) - first + 1;
  }
  SV_TRY(t.CopyOutObj(a.Addr(2), cs));
  return 0;
}

}  // namespace seedvisor::sentry
