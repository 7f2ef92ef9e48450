// epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
// epoll_pwait2 over EpollFile (sentry/fs/epoll).
#include <sys/epoll.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "sentry/fs/epoll/epoll.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

// EP_MAX_EVENTS in fs/eventpoll.c.
constexpr int kMaxEvents = INT32_MAX / sizeof(epoll_event);

SyscallReturn CreateEpoll(Task& t, int flags) {
  if (flags & ~EPOLL_CLOEXEC) return Errno(EINVAL);
  int hfd = epoll_create1(EPOLL_CLOEXEC);
  if (hfd < 0) return Errno(errno);
  auto f = std::make_shared<EpollFile>(O_RDWR, hfd);
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, flags & EPOLL_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

// fdget(): an O_PATH file is EBADF, as the epoll fd and as the target.
Result<std::shared_ptr<EpollFile>> GetEpoll(Task& t, int fd) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, fd));
  auto ep = std::dynamic_pointer_cast<EpollFile>(f);
  if (!ep) return Errno(EINVAL);
  return ep;
}

// The common part of the epoll_wait family; `deadline` null = forever.
SyscallReturn DoWait(Task& t, int epfd, UserAddr events, int max, const timespec* deadline,
                     bool poll_only) {
  if (max <= 0 || max > kMaxEvents) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(auto ep, GetEpoll(t, epfd));
  std::vector<epoll_event> out(static_cast<size_t>(std::min(max, 1024)));
  SV_ASSIGN_OR_RETURN(int n, ep->Wait(t, out.data(), static_cast<int>(out.size()), deadline,
                                      poll_only));
  // struct epoll_event is packed on x86-64: the host's layout is the guest's.
  SV_TRY(t.CopyOut(events, out.data(), static_cast<size_t>(n) * sizeof(epoll_event)));
  return static_cast<uint64_t>(n);
}

SyscallReturn WaitMs(Task& t, int epfd, UserAddr events, int max, int timeout_ms) {
  if (timeout_ms < 0) return DoWait(t, epfd, events, max, nullptr, false);
  timespec rel{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  timespec deadline = AddTimespec(MonotonicNowTimespec(), rel);
  return DoWait(t, epfd, events, max, &deadline, timeout_ms == 0);
}

}  // namespace

SyscallReturn SysEpollCreate(Task& t, const SyscallArgs& a) {
  if (a.Int(0) <= 0) return Errno(EINVAL);  // the size hint must be positive
  return CreateEpoll(t, 0);
}

SyscallReturn SysEpollCreate1(Task& t, const SyscallArgs& a) { return CreateEpoll(t, a.Int(0)); }

SyscallReturn SysEpollCtl(Task& t, const SyscallArgs& a) {
  int op = a.Int(1);
  SV_ASSIGN_OR_RETURN(auto ep, GetEpoll(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(FileRef target, GetIoFile(t, a.Int(2)));
  epoll_event ev{};
  if (op != EPOLL_CTL_DEL) SV_TRY(t.CopyInObj(a.Addr(3), &ev));
  SV_TRY(ep->Ctl(op, target, a.Int(2), ev));
  return 0;
}

SyscallReturn SysEpollWait(Task& t, const SyscallArgs& a) {
  return WaitMs(t, a.Int(0), a.Addr(1), a.Int(2), a.Int(3));
}

SyscallReturn SysEpollPwait(Task& t, const SyscallArgs& a) {
  SV_TRY(SwapSigmask(t, a.Addr(4), a.Size(5)));
  return WaitMs(t, a.Int(0), a.Addr(1), a.Int(2), a.Int(3));
}

SyscallReturn SysEpollPwait2(Task& t, const SyscallArgs& a) {
  timespec rel{};
  bool forever = a.Addr(3).IsNull();
  if (!forever) {
    SV_TRY(t.CopyInObj(a.Addr(3), &rel));
    if (rel.tv_sec < 0 || rel.tv_nsec < 0 || rel.tv_nsec >= 1000000000) return Errno(EINVAL);
  }
  SV_TRY(SwapSigmask(t, a.Addr(4), a.Size(5)));
  if (forever) return DoWait(t, a.Int(0), a.Addr(1), a.Int(2), nullptr, false);
  timespec deadline = AddTimespec(MonotonicNowTimespec(), rel);
  return DoWait(t, a.Int(0), a.Addr(1), a.Int(2), &deadline,
                rel.tv_sec == 0 && rel.tv_nsec == 0);
}

}  // namespace seedvisor::sentry
