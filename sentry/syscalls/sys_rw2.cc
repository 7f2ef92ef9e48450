// preadv2 and pwritev2 on top of readv/preadv and writev/pwritev.
//
// RWF_HIPRI is a hint and RWF_DSYNC/RWF_SYNC ask for a sync after the write;
// RWF_NOWAIT and RWF_APPEND are refused with EOPNOTSUPP, what Linux returns
// for a file that does not support them (preadv2(2)), so callers fall back.
#include <linux/fs.h>
#include <sys/uio.h>

#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_rw2.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr int kKnown = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

// x86-64 passes the offset whole in arg 3 (pos_h in arg 4 is unused).
SyscallArgs AsV1(const SyscallArgs& a) {
  SyscallArgs b = a;
  b.raw[4] = b.raw[5] = 0;
  return b;
}

}  // namespace

SyscallReturn SysPreadv2(Task& t, const SyscallArgs& a) {
  int flags = a.Int(5);
  if (flags & ~kKnown) return Errno(EOPNOTSUPP);
  if (flags & (RWF_NOWAIT | RWF_APPEND)) return Errno(EOPNOTSUPP);
  if (a.Long(3) == -1) return SysReadv(t, AsV1(a));  // the file offset
  return SysPreadv(t, AsV1(a));
}

SyscallReturn SysPwritev2(Task& t, const SyscallArgs& a) {
  int flags = a.Int(5);
  if (flags & ~kKnown) return Errno(EOPNOTSUPP);
  if (flags & (RWF_NOWAIT | RWF_APPEND)) return Errno(EOPNOTSUPP);
  SyscallReturn r = a.Long(3) == -1 ? SysWritev(t, AsV1(a)) : SysPwritev(t, AsV1(a));
  if (r.ok() && (flags & (RWF_DSYNC | RWF_SYNC))) {
    SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
    // A file without ->fsync (a device, a terminal) has nothing to sync:
    // its ->write_iter never calls generic_write_sync().
    if (Status s = f->Sync(); !s.ok() && s.error() != Errno(EINVAL)) return s.error();
  }
  return r;
}

}  // namespace seedvisor::sentry
