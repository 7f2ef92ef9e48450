// signalfd, signalfd4 over SignalFdFile (sentry/fs/signalfd).
#include <sys/signalfd.h>

#include "sentry/fs/signalfd/signalfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

SyscallReturn DoSignalfd(Task& t, int fd, UserAddr mask_addr, size_t size, int flags) {
  if (flags & ~(SFD_CLOEXEC | SFD_NONBLOCK)) return Errno(EINVAL);
  if (size != sizeof(SigSet)) return Errno(EINVAL);
  SigSet mask;
  SV_TRY(t.CopyInObj(mask_addr, &mask));
  if (fd != -1) {
    // An existing signalfd gets the new mask (signalfd(2)); flags are ignored.
    SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
    auto sf = std::dynamic_pointer_cast<SignalFdFile>(f);
    if (!sf) return Errno(EINVAL);
    sf->SetMask(t, mask);
    return static_cast<uint64_t>(fd);
  }
  SV_ASSIGN_OR_RETURN(auto sf, SignalFdFile::Create(t, O_RDONLY | (flags & SFD_NONBLOCK), mask));
  SV_ASSIGN_OR_RETURN(int nfd, t.fds().Install(sf, flags & SFD_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(nfd);
}

}  // namespace

SyscallReturn SysSignalfd(Task& t, const SyscallArgs& a) {
  return DoSignalfd(t, a.Int(0), a.Addr(1), a.Size(2), 0);
}
SyscallReturn SysSignalfd4(Task& t, const SyscallArgs& a) {
  return DoSignalfd(t, a.Int(0), a.Addr(1), a.Size(2), a.Int(3));
}

}  // namespace seedvisor::sentry
