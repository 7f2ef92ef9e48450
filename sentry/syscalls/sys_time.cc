// Time: clocks, sleeps, interval timers, POSIX timers.
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include <optional>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/timers.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

constexpr int64_t kNsPerSec = 1000000000LL;

bool ValidClock(clockid_t c) {
  switch (c) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
    case CLOCK_TAI:
      return true;
    default:
      return false;
  }
}

// The host clock behind a guest clock: an alarm clock is its base clock,
// as its timers are (posix_timers.cc ResolveClock: the sandbox never
// suspends), whether or not the host has an RTC to wake it.
clockid_t HostClock(clockid_t c) {
  if (c == CLOCK_REALTIME_ALARM) return CLOCK_REALTIME;
  if (c == CLOCK_BOOTTIME_ALARM) return CLOCK_BOOTTIME;
  return c;
}

int64_t ToNs(const timespec& ts) { return ts.tv_sec * kNsPerSec + ts.tv_nsec; }
timespec FromNs(int64_t ns) {
  return timespec{static_cast<time_t>(ns / kNsPerSec), static_cast<long>(ns % kNsPerSec)};
}
int64_t ToNs(const timeval& tv) { return tv.tv_sec * kNsPerSec + tv.tv_usec * 1000; }
timeval TvFromNs(int64_t ns) {
  return timeval{static_cast<time_t>(ns / kNsPerSec),
                 static_cast<suseconds_t>((ns % kNsPerSec) / 1000)};
}

// Sleeps until the CLOCK_MONOTONIC deadline; ERESTARTSYS on a signal.
Status SleepUntil(Task& t, int64_t deadline_ns) {
  timespec dl = FromNs(deadline_ns);
  for (;;) {
    Status s = t.Block(&dl);
    if (!s.ok()) return s.error().value() == ETIMEDOUT ? Status() : s;
  }
}

// A relative sleep until `deadline_ns` (CLOCK_MONOTONIC). Interrupted (a
// signal, or a park for a sandbox fork), it writes the time left to `rem`
// and arms the task's restart block: without a handler the sleep goes on
// with the time left through restart_syscall(2), with one it is EINTR
// (hrtimer_nanosleep(), nanosleep_restart()).
SyscallReturn SleepRestartable(Task& t, int64_t deadline_ns, UserAddr rem) {
  Status s = SleepUntil(t, deadline_ns);
  if (s.ok()) return 0;
  if (s.error().value() != kERESTARTSYS) return s.error();
  if (!rem.IsNull()) {
    SV_TRY(t.CopyOutObj(rem, FromNs(std::max<int64_t>(deadline_ns - MonotonicNowNs(), 0))));
  }
  t.restart_block_ = [deadline_ns, rem](Task& t) -> int64_t {
    SyscallReturn r = SleepRestartable(t, deadline_ns, rem);
    return r.ok() ? 0 : -static_cast<int64_t>(r.error().value());
  };
  return Errno(kERESTART_RESTARTBLOCK);
}

// The CPU time the clock `c` (< 0) reads, or EINVAL for a bad id, a gone
// task, or another process's thread (lookup_task(): thread clocks only
// within the caller's process). PROF, VIRT and SCHED read the same guest
// time: the platform does not tell user and system time apart.
Result<int64_t> EncodedCpuClockNs(Task& t, clockid_t c) {
  std::optional<CpuClockId> id = DecodeCpuClock(c);
  if (!id) return Errno(EINVAL);
  int pid = id->pid;
  bool thread = id->thread;
  if (pid == 0) return thread ? t.OwnThreadCpuNs() : t.OwnProcessCpuNs();
  if (pid == t.vtid() && thread) return t.OwnThreadCpuNs();
  if (pid == t.vtgid() && !thread) return t.OwnProcessCpuNs();
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  if (thread) {
    std::shared_ptr<Task> task = k.TaskByVtid(t.pid_ns(), pid);
    if (!task || task->exited() || &task->tg() != &t.tg()) return Errno(EINVAL);
    return task->ThreadCpuNsLocked();
  }
  // clock_gettime accepts any thread of the process (lookup_task()).
  std::shared_ptr<ThreadGroup> tg = k.ThreadGroupByVtgid(t.pid_ns(), pid);
  if (!tg) {
    std::shared_ptr<Task> task = k.TaskByVtid(t.pid_ns(), pid);
    if (!task) return Errno(EINVAL);
    tg = task->shared_tg();
  }
  if (tg->tasks.empty()) return tg->cpu_ns;
  return tg->tasks.front()->ProcessCpuNsLocked();
}

}  // namespace

SyscallReturn SysClockGettime(Task& t, const SyscallArgs& a) {
  clockid_t c = a.Int(0);
  timespec ts;
  if (c < 0) {
    SV_ASSIGN_OR_RETURN(int64_t ns, EncodedCpuClockNs(t, c));
    ts = FromNs(ns);
  } else if (!ValidClock(c)) {
    return Errno(EINVAL);
  } else if (c == CLOCK_PROCESS_CPUTIME_ID || c == CLOCK_THREAD_CPUTIME_ID) {
    // Guest CPU time, as the platform measures it.
    int64_t ns = c == CLOCK_PROCESS_CPUTIME_ID ? t.OwnProcessCpuNs() : t.OwnThreadCpuNs();
    ts = FromNs(ns);
  } else if (clock_gettime(HostClock(c), &ts) != 0) {  // the host's clocks are the sandbox's
    return Errno(errno);
  } else if (const int64_t off = TimeNamespace::OffsetOf(t.time_ns().get(), c); off != 0) {
    ts = FromNs(ToNs(ts) + off);  // timens_add_monotonic(), timens_add_boottime()
  }
  SV_TRY(t.CopyOutObj(a.Addr(1), ts));
  return 0;
}

SyscallReturn SysClockGetres(Task& t, const SyscallArgs& a) {
  clockid_t c = a.Int(0);
  timespec ts;
  if (c < 0) {
    SV_TRY(EncodedCpuClockNs(t, c));  // validates the id
    ts = timespec{0, 1};  // posix_cpu_clock_getres() for CPUCLOCK_SCHED
  } else if (!ValidClock(c)) {
    return Errno(EINVAL);
  } else if (clock_getres(HostClock(c), &ts) != 0) {
    return Errno(errno);
  }
  if (!a.Addr(1).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(1), ts));
  return 0;
}

SyscallReturn SysGettimeofday(Task& t, const SyscallArgs& a) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  if (!a.Addr(0).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(0), tv));
  if (!a.Addr(1).IsNull()) {
    struct timezone tz {};
    SV_TRY(t.CopyOutObj(a.Addr(1), tz));
  }
  return 0;
}

SyscallReturn SysTime(Task& t, const SyscallArgs& a) {
  time_t now = time(nullptr);
  if (!a.Addr(0).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(0), now));
  return static_cast<uint64_t>(now);
}

SyscallReturn SysSettimeofday(Task&, const SyscallArgs&) { return Errno(EPERM); }
SyscallReturn SysClockSettime(Task&, const SyscallArgs& a) {
  // Only CLOCK_REALTIME is settable at all (clock_settime(2)); the sandbox
  // may not set the host's clock.
  if (a.Int(0) != CLOCK_REALTIME) return Errno(EINVAL);
  return Errno(EPERM);
}

SyscallReturn SysNanosleep(Task& t, const SyscallArgs& a) {
  timespec req;
  SV_TRY(t.CopyInObj(a.Addr(0), &req));
  if (req.tv_nsec < 0 || req.tv_nsec >= kNsPerSec || req.tv_sec < 0) return Errno(EINVAL);
  int64_t deadline = MonotonicNowNs() + ToNs(req);
  return SleepRestartable(t, deadline, a.Addr(1));
}

SyscallReturn SysClockNanosleep(Task& t, const SyscallArgs& a) {
  clockid_t c = a.Int(0);
  int flags = a.Int(1);
  // clock_nanosleep(2): the thread CPU clock has no nsleep (EOPNOTSUPP
  // since Linux 2.6.x's posix-timers kclock table).
  if (c == CLOCK_THREAD_CPUTIME_ID) return Errno(EOPNOTSUPP);
  if (!ValidClock(c)) return Errno(EINVAL);
  timespec req;
  SV_TRY(t.CopyInObj(a.Addr(2), &req));
  if (req.tv_nsec < 0 || req.tv_nsec >= kNsPerSec || req.tv_sec < 0) return Errno(EINVAL);
  int64_t deadline;
  if (flags & TIMER_ABSTIME) {
    // The time is the caller's time namespace's (timens_ktime_to_host()).
    timespec now;
    clock_gettime(HostClock(c), &now);
    const int64_t host =
        TimeNamespace::ToHostNs(t.time_ns().get(), c, TimeNamespace::SaturatedNs(req));
    const int64_t wait = host - ToNs(now), mono = MonotonicNowNs();
    deadline = wait > INT64_MAX - mono ? INT64_MAX : mono + wait;
  } else {
    deadline = MonotonicNowNs() + ToNs(req);
  }
  if (!(flags & TIMER_ABSTIME)) return SleepRestartable(t, deadline, a.Addr(3));
  Status s = SleepUntil(t, deadline);
  if (!s.ok() && s.error().value() == kERESTARTSYS) {
    // An absolute sleep restarts as it was called unless a handler ran
    // (common_nsleep(): ERESTARTNOHAND).
    return Errno(kERESTARTNOHAND);
  }
  if (!s.ok()) return s.error();
  return 0;
}

SyscallReturn SysRestartSyscall(Task& t, const SyscallArgs&) {
  std::function<int64_t(Task&)> fn = std::move(t.restart_block_);
  t.restart_block_ = nullptr;
  if (!fn) return Errno(EINTR);  // nothing to restart (do_no_restart_syscall())
  int64_t r = fn(t);
  if (r < 0) return Errno(static_cast<int>(-r));
  return static_cast<uint64_t>(r);
}

SyscallReturn SysAlarm(Task& t, const SyscallArgs& a) {
  TimerService::Setting s{static_cast<int64_t>(a.Uint(0)) * kNsPerSec, 0};
  // alarm(2) cannot fail on Linux; here it can only if the host refuses the
  // timer service's thread (EAGAIN), which is better than no alarm.
  SV_ASSIGN_OR_RETURN(TimerService::Setting old, t.kernel().timers().SetReal(t.shared_tg(), s));
  // Seconds left, rounded as alarm(2) does (never 0 for a pending alarm).
  return static_cast<uint64_t>((old.value_ns + kNsPerSec / 2) / kNsPerSec) +
         (old.value_ns > 0 && old.value_ns < kNsPerSec / 2 ? 1 : 0);
}

SyscallReturn SysGetitimer(Task& t, const SyscallArgs& a) {
  struct itimerval v {};
  int which = a.Int(0);
  TimerService::Setting s;
  if (which == ITIMER_REAL) {
    s = t.kernel().timers().GetReal(&t.tg());
  } else if (which == ITIMER_VIRTUAL || which == ITIMER_PROF) {
    s = t.kernel().timers().GetCpu(&t.tg(), which, t.ProcessCpuNs());
  } else {
    return Errno(EINVAL);
  }
  v.it_value = TvFromNs(s.value_ns);
  v.it_interval = TvFromNs(s.interval_ns);
  SV_TRY(t.CopyOutObj(a.Addr(1), v));
  return 0;
}

SyscallReturn SysSetitimer(Task& t, const SyscallArgs& a) {
  int which = a.Int(0);
  if (which != ITIMER_REAL && which != ITIMER_VIRTUAL && which != ITIMER_PROF) {
    return Errno(EINVAL);
  }
  struct itimerval v {};
  if (!a.Addr(1).IsNull()) SV_TRY(t.CopyInObj(a.Addr(1), &v));
  if (v.it_value.tv_usec < 0 || v.it_value.tv_usec >= 1000000 || v.it_interval.tv_usec < 0 ||
      v.it_interval.tv_usec >= 1000000) {
    return Errno(EINVAL);
  }
  struct itimerval old {};
  TimerService::Setting want{ToNs(v.it_value), ToNs(v.it_interval)};
  SV_ASSIGN_OR_RETURN(
      TimerService::Setting o,
      which == ITIMER_REAL
          ? t.kernel().timers().SetReal(t.shared_tg(), want)
          : t.kernel().timers().SetCpu(t.shared_tg(), which, want, t.ProcessCpuNs()));
  old.it_value = TvFromNs(o.value_ns);
  old.it_interval = TvFromNs(o.interval_ns);
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), old));
  return 0;
}

// ---- POSIX timers (the timers themselves: sentry/kernel/posix_timers.cc) ----

SyscallReturn SysTimerCreate(Task& t, const SyscallArgs& a) {
  struct sigevent ev {};
  bool have_ev = !a.Addr(1).IsNull();
  if (have_ev) SV_TRY(t.CopyInObj(a.Addr(1), &ev));
  SV_ASSIGN_OR_RETURN(int id,
                      t.kernel().timers().CreatePosixTimer(t, a.Int(0), have_ev ? &ev : nullptr));
  Status s = t.CopyOutObj(a.Addr(2), id);
  if (!s.ok()) {  // do_timer_create(): the timer goes again on EFAULT
    t.kernel().timers().DeletePosixTimer(t, id).ok();
    return s.error();
  }
  return 0;
}

SyscallReturn SysTimerSettime(Task& t, const SyscallArgs& a) {
  // do_timer_settime(): no new value is EINVAL, before any copy.
  if (a.Addr(2).IsNull()) return Errno(EINVAL);
  struct itimerspec v {};
  SV_TRY(t.CopyInObj(a.Addr(2), &v));
  for (const timespec& ts : {v.it_value, v.it_interval}) {
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= kNsPerSec) return Errno(EINVAL);
  }
  TimerService::Setting want{ToNs(v.it_value), ToNs(v.it_interval)};
  SV_ASSIGN_OR_RETURN(TimerService::Setting old,
                      t.kernel().timers().SetPosixTimer(t, a.Int(0), a.Int(1), want));
  if (!a.Addr(3).IsNull()) {
    SV_TRY(t.CopyOutObj(a.Addr(3), itimerspec{FromNs(old.interval_ns), FromNs(old.value_ns)}));
  }
  return 0;
}

SyscallReturn SysTimerGettime(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(TimerService::Setting s, t.kernel().timers().GetPosixTimer(t, a.Int(0)));
  SV_TRY(t.CopyOutObj(a.Addr(1), itimerspec{FromNs(s.interval_ns), FromNs(s.value_ns)}));
  return 0;
}

SyscallReturn SysTimerGetoverrun(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(int n, t.kernel().timers().PosixTimerOverrun(t, a.Int(0)));
  return static_cast<uint64_t>(n);
}

SyscallReturn SysTimerDelete(Task& t, const SyscallArgs& a) {
  SV_TRY(t.kernel().timers().DeletePosixTimer(t, a.Int(0)));
  return 0;
}

}  // namespace seedvisor::sentry
