// eventfd, eventfd2: an EventFdFile (sentry memory); counter,
// EFD_SEMAPHORE and overflow rules in sentry/fs/eventfd.
#include <sys/eventfd.h>

#include "sentry/fs/eventfd/eventfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

SyscallReturn DoEventfd(Task& t, unsigned initval, int flags) {
  if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return Errno(EINVAL);
  auto f = std::make_shared<EventFdFile>(O_RDWR | (flags & EFD_NONBLOCK), initval,
                                         (flags & EFD_SEMAPHORE) != 0);
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, flags & EFD_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

}  // namespace

SyscallReturn SysEventfd(Task& t, const SyscallArgs& a) { return DoEventfd(t, a.Uint(0), 0); }
SyscallReturn SysEventfd2(Task& t, const SyscallArgs& a) {
  return DoEventfd(t, a.Uint(0), a.Int(1));
}

}  // namespace seedvisor::sentry
