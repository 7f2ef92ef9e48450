// timerfd_create, timerfd_settime, timerfd_gettime: a host timerfd behind a
// TimerFdFile. The sandbox's clocks are the host's (see sys_time.cc), so
// absolute times and TFD_TIMER_CANCEL_ON_SET mean the same on both sides,
// but for a time namespace's offsets (sentry/kernel/time_namespace.h).
#include <sys/timerfd.h>

#include "sentry/fs/anon/hostfd_file.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr int64_t kNsPerSec = 1000000000LL;

// What the host's timerfd_settime would accept as it_value (EINVAL else).
bool ValidTimespec(const timespec& ts) {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < kNsPerSec;
}

Result<std::shared_ptr<TimerFdFile>> GetTimerFd(Task& t, int fd) {
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
  auto tf = std::dynamic_pointer_cast<TimerFdFile>(f);
  if (!tf) return Errno(EINVAL);
  return tf;
}

}  // namespace

SyscallReturn SysTimerfdCreate(Task& t, const SyscallArgs& a) {
  int clock = a.Int(0);
  int flags = a.Int(1);
  if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK)) return Errno(EINVAL);
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
      break;
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
      return Errno(EPERM);  // needs CAP_WAKE_ALARM, which the sandbox lacks
    default:
      return Errno(EINVAL);
  }
  int hfd = timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC);
  if (hfd < 0) return Errno(errno);
  auto f = std::make_shared<TimerFdFile>(O_RDWR | (flags & TFD_NONBLOCK), hfd, clock);
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, flags & TFD_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysTimerfdSettime(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(auto tf, GetTimerFd(t, a.Int(0)));
  itimerspec nv, ov;
  SV_TRY(t.CopyInObj(a.Addr(2), &nv));
  const int flags = a.Int(1);
  if ((flags & TFD_TIMER_ABSTIME) && ValidTimespec(nv.it_value) &&
      (nv.it_value.tv_sec != 0 || nv.it_value.tv_nsec != 0)) {
    // An absolute time of the caller's time namespace, as the host's
    // clock reads it (timerfd_setup(): timens_ktime_to_host()); one that
    // has passed there is the earliest time (0 would disarm).
    const int64_t want = TimeNamespace::SaturatedNs(nv.it_value);
    int64_t host = TimeNamespace::ToHostNs(t.time_ns().get(), tf->clock(), want);
    if (host <= 0) host = 1;
    if (host != want) {
      nv.it_value = timespec{static_cast<time_t>(host / kNsPerSec),
                             static_cast<long>(host % kNsPerSec)};
    }
  }
  if (timerfd_settime(tf->host_fd(), flags, &nv, &ov) != 0) return Errno(errno);
  if (!a.Addr(3).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(3), ov));
  return 0;
}

SyscallReturn SysTimerfdGettime(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(auto tf, GetTimerFd(t, a.Int(0)));
  itimerspec cur;
  if (timerfd_gettime(tf->host_fd(), &cur) != 0) return Errno(errno);
  SV_TRY(t.CopyOutObj(a.Addr(1), cur));
  return 0;
}

}  // namespace seedvisor::sentry
