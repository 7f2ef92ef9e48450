// POSIX timers (timer_create(2) and friends) on the TimerService thread.
//
// A timer on a wall clock (REALTIME, MONOTONIC, BOOTTIME, TAI) keeps its
// deadline on CLOCK_MONOTONIC: an absolute time on its own clock is turned
// into a monotonic one when it is set (the sandbox cannot set the clock,
// so only host clock steps could make them differ). A CPU-clock timer keeps
// a deadline in guest CPU time and is checked every kCpuTick.
//
// Overruns follow kernel/time/posix-timers.c: a timer whose signal is still
// queued is not re-armed; when the signal is taken (SignalSource::Dequeued)
// the missed periods become si_overrun (posixtimer_rearm()), and that
// count is what timer_getoverrun(2) reports until the next delivery.
#include <limits.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <map>

#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/timers.h"

namespace seedvisor::sentry {

namespace {
constexpr int kDelayTimerMax = INT_MAX;  // DELAYTIMER_MAX
constexpr int64_t kDroppedRearmNs = 1000000;
enum class Base { kMonotonic, kProcessCpu, kThreadCpu };

int SatAdd(int a, int64_t b) { return static_cast<int>(std::min<int64_t>(int64_t{a} + b, kDelayTimerMax)); }
}  // namespace

// All fields are guarded by Kernel::mu().
struct PosixTimer : SignalSource, std::enable_shared_from_this<PosixTimer> {
  TimerService* svc = nullptr;
  int id = 0;
  Base base = Base::kMonotonic;
  clockid_t host_clock = CLOCK_MONOTONIC;  // for kMonotonic: the clock abs times are on
  std::weak_ptr<ThreadGroup> cpu_tg;       // kProcessCpu
  std::weak_ptr<Task> cpu_task;            // kThreadCpu
  int notify = SIGEV_SIGNAL;
  int signo = SIGALRM;
  sigval value{};
  std::weak_ptr<Task> target;  // SIGEV_THREAD_ID
  bool armed = false;
  int64_t deadline = 0;  // next expiry; with `requeue`, the last one signalled
  int64_t interval = 0;
  bool queued = false;   // its signal is pending
  bool requeue = false;  // periodic, waiting for its signal to be taken
  int overrun = 0;
  int overrun_last = 0;

  Result<int64_t> Now() const {
    switch (base) {
      case Base::kMonotonic:
        return MonotonicNowNs();
      case Base::kProcessCpu: {
        std::shared_ptr<ThreadGroup> tg = cpu_tg.lock();
        if (!tg || tg->state != ThreadGroup::State::kAlive) return Errno(EINVAL);
        return tg->tasks.empty() ? tg->cpu_ns : tg->tasks.front()->ProcessCpuNsLocked();
      }
      case Base::kThreadCpu: {
        std::shared_ptr<Task> task = cpu_task.lock();
        if (!task || task->exited()) return Errno(EINVAL);
        return task->ThreadCpuNsLocked();
      }
    }
    return Errno(EINVAL);
  }

  // Counts the periods after `deadline` that have passed by `now` as
  // overruns (the timer's signal is pending: it is not re-armed meanwhile).
  void ForwardPending(int64_t now) {
    if (now < deadline + interval) return;
    int64_t m = (now - deadline) / interval;
    overrun = SatAdd(overrun, m);
    deadline += m * interval;
  }

  // Moves a periodic deadline to its first period after `t`.
  void ForwardPast(int64_t t) { deadline += ((t - deadline) / interval + 1) * interval; }

  // An expiry at `now` >= deadline.
  void Expire(Kernel& k, ThreadGroup& tg, int64_t now) {
    if (queued) {
      overrun = SatAdd(overrun, 1);  // send_sigqueue() on a queued sigqueue
    } else {
      siginfo_t info{};
      info.si_signo = signo;
      info.si_code = SI_TIMER;
      info.si_timerid = id;
      info.si_value = value;
      std::shared_ptr<Task> task = notify == (SIGEV_SIGNAL | SIGEV_THREAD_ID) ? target.lock() : nullptr;
      // send_sigqueue() never forces: a timer's SIGKILL spares the init.
      if (task && !task->exited() && &task->tg() == &tg) {
        k.SendTaskSignal(*task, info, shared_from_this(), SignalSender::kSandboxTask).ok();
      } else {
        k.SendGroupSignal(tg, info, shared_from_this(), SignalSender::kSandboxTask).ok();
      }
    }
    if (interval <= 0) {
      armed = false;
    } else if (queued) {
      requeue = true;  // re-armed when the signal is taken
    } else {
      // Not queued (ignored, or a standard signal already pending): on to
      // the first period at least kDroppedRearmNs away, so that a tiny
      // period cannot make the service thread spin (Linux 6.13+ parks such
      // timers until the signal is no longer ignored).
      ForwardPast(std::max(now, now + kDroppedRearmNs - interval));
    }
  }

  void Queued() override { queued = true; }

  // posixtimer_rearm(): its signal is off the queue; a periodic timer that
  // waited for that goes on from the first period after now.
  void Rearm() {
    queued = false;
    if (!requeue || !armed) return;
    Result<int64_t> now = Now();
    if (now.ok()) ForwardPending(*now);
    deadline += interval;
    requeue = false;
    svc->Kick();
  }

  // Thrown away (SIGCONT flushing a pending stop signal): Linux (6.18
  // measured) does not re-arm a periodic timer then; it stays waiting for
  // a delivery until timer_settime.
  void Discarded() override { queued = false; }

  void Dequeued(siginfo_t* info) override {
    Rearm();
    info->si_overrun = overrun;
    overrun_last = overrun;
    overrun = 0;
  }

  // Drops its queued signal (timer_delete, timer_settime).
  void Unqueue(ThreadGroup& tg) {
    if (!queued) return;
    tg.shared_pending.DiscardFrom(this);
    for (Task* t : tg.tasks) t->pending().DiscardFrom(this);
    queued = false;
  }
};

struct PosixTimerTable {
  struct Process {
    std::weak_ptr<ThreadGroup> tg;
    std::map<int, std::shared_ptr<PosixTimer>> timers;
    int next_id = 0;
  };
  std::map<const ThreadGroup*, Process> procs;

  // The caller's timers; a stale entry of a freed group at the same
  // address is dropped first.
  Process& Of(const std::shared_ptr<ThreadGroup>& tg) {
    auto it = procs.find(tg.get());
    if (it != procs.end() && it->second.tg.lock() != tg) procs.erase(it);
    Process& p = procs[tg.get()];
    p.tg = tg;
    return p;
  }
};

namespace {

Result<std::shared_ptr<PosixTimer>> Find(PosixTimerTable* table, Task& t, int id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  if (!table) return Errno(EINVAL);
  auto pit = table->procs.find(&t.tg());
  if (pit == table->procs.end() || pit->second.tg.lock() != t.shared_tg()) return Errno(EINVAL);
  auto it = pit->second.timers.find(id);
  if (it == pit->second.timers.end()) return Errno(EINVAL);
  return it->second;
}

// Which clock a timer runs on (do_timer_create(), posix_cpu_timer_create()).
Status ResolveClock(Task& t, int clock, PosixTimer& pt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
    case CLOCK_TAI:
      pt.host_clock = clock;
      return {};
    case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM:
      // alarm_timer_create(): CAP_WAKE_ALARM; the sandbox never suspends,
      // so an alarm timer is its base clock's timer.
      if (!t.creds().HasCap(CAP_WAKE_ALARM)) return Errno(EPERM);
      pt.host_clock = clock == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : CLOCK_BOOTTIME;
      return {};
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
      return Errno(EOPNOTSUPP);  // their k_clock has no timer_create
    case CLOCK_PROCESS_CPUTIME_ID:
      pt.base = Base::kProcessCpu;
      pt.cpu_tg = t.shared_tg();
      return {};
    case CLOCK_THREAD_CPUTIME_ID:
      pt.base = Base::kThreadCpu;
      pt.cpu_task = t.shared_from_this();
      return {};
  }
  std::optional<CpuClockId> id = DecodeCpuClock(clock);
  if (!id) return Errno(EINVAL);
  Kernel& k = t.kernel();
  if (id->thread) {
    std::shared_ptr<Task> task = id->pid == 0 ? t.shared_from_this() : k.TaskByVtid(t.pid_ns(), id->pid);
    if (!task || task->exited() || &task->tg() != &t.tg()) return Errno(EINVAL);
    pt.base = Base::kThreadCpu;
    pt.cpu_task = task;
    return {};
  }
  // lookup_task(): a process clock names a thread-group leader's pid.
  std::shared_ptr<ThreadGroup> tg = id->pid == 0 ? t.shared_tg() : k.ThreadGroupByVtgid(t.pid_ns(), id->pid);
  if (!tg || tg->state != ThreadGroup::State::kAlive) return Errno(EINVAL);
  pt.base = Base::kProcessCpu;
  pt.cpu_tg = tg;
  return {};
}

}  // namespace

std::optional<CpuClockId> DecodeCpuClock(int clock) {
  // include/linux/posix-timers.h: ~pid << 3 | CPUCLOCK_PERTHREAD_MASK (4)
  // for a thread | the clock (0 PROF, 1 VIRT, 2 SCHED; 3 is invalid).
  if (clock >= 0 || (clock & 3) == 3) return std::nullopt;
  return CpuClockId{~(clock >> 3), (clock & 4) != 0};
}

Result<int> TimerService::CreatePosixTimer(Task& t, int clock, const struct sigevent* ev) {
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  auto pt = std::make_shared<PosixTimer>();
  pt->svc = this;
  SV_TRY(ResolveClock(t, clock, *pt));
  if (ev) {
    pt->notify = ev->sigev_notify;
    pt->signo = ev->sigev_signo;
    pt->value = ev->sigev_value;
    // good_sigevent(): SIGEV_THREAD_ID names a thread of the caller's
    // process; SIGEV_THREAD is glibc's and the kernel takes it as SIGNAL.
    switch (ev->sigev_notify) {
      case SIGEV_SIGNAL | SIGEV_THREAD_ID: {
        std::shared_ptr<Task> task = k.TaskByVtid(t.pid_ns(), ev->_sigev_un._tid);
        if (!task || task->exited() || &task->tg() != &t.tg()) return Errno(EINVAL);
        pt->target = task;
        [[fallthrough]];
      }
      case SIGEV_SIGNAL:
      case SIGEV_THREAD:
        if (ev->sigev_signo <= 0 || ev->sigev_signo > kNumSignals) return Errno(EINVAL);
        break;
      case SIGEV_NONE:
        break;
      default:
        return Errno(EINVAL);
    }
  }
  if (!posix_) posix_ = std::make_shared<PosixTimerTable>();
  PosixTimerTable::Process& p = posix_->Of(t.shared_tg());
  // Each timer holds a preallocated signal, counted against
  // RLIMIT_SIGPENDING (sigqueue_alloc() without override).
  if (p.timers.size() >= t.tg().rlimits[RLIMIT_SIGPENDING].rlim_cur) return Errno(EAGAIN);
  // posix_timer_add(): ids count up per process and wrap, skipping used ones.
  while (p.timers.count(p.next_id)) p.next_id = p.next_id == INT_MAX ? 0 : p.next_id + 1;
  pt->id = p.next_id;
  p.next_id = p.next_id == INT_MAX ? 0 : p.next_id + 1;
  if (!ev) {  // the default sigevent: SIGALRM with the id as its value
    pt->value = sigval{};
    pt->value.sival_int = pt->id;
  }
  p.timers[pt->id] = pt;
  return pt->id;
}

namespace {
// common_timer_get().
TimerService::Setting Current(PosixTimer& pt) {
  TimerService::Setting r{0, pt.interval};
  if (!pt.armed) return r;
  Result<int64_t> now = pt.Now();
  if (!now.ok()) return r;
  int64_t next = pt.deadline;
  if (pt.interval > 0 && pt.requeue) {
    pt.ForwardPending(*now);
    next = pt.deadline + pt.interval;
  } else if (pt.interval > 0 && pt.notify == SIGEV_NONE && *now >= pt.deadline) {
    pt.ForwardPast(*now);
    next = pt.deadline;
  }
  // An expired SIGEV_NONE one-shot reads 0; any other armed timer at least 1 ns.
  r.value_ns = next > *now ? next - *now : (pt.notify == SIGEV_NONE ? 0 : 1);
  return r;
}
}  // namespace

Result<TimerService::Setting> TimerService::SetPosixTimer(Task& t, int id, int flags, Setting s) {
  Kernel& k = t.kernel();
  // The thread before the timer changes (Kernel::mu() comes before mu_):
  // a host refusal leaves the timer as it was.
  if (s.value_ns > 0) SV_TRY(EnsureThread());
  Setting old;
  {
    absl::MutexLock l(&k.mu());
    SV_ASSIGN_OR_RETURN(std::shared_ptr<PosixTimer> pt, Find(posix_.get(), t, id));
    old = Current(*pt);
    // A re-armed timer's pending signal is dropped (Linux 6.13+ drops it at
    // delivery as stale); the overrun counts start again.
    pt->Unqueue(t.tg());
    pt->requeue = false;
    pt->overrun = 0;
    pt->overrun_last = 0;
    pt->armed = false;
    pt->interval = 0;
    if (s.value_ns > 0) {
      SV_ASSIGN_OR_RETURN(int64_t now, pt->Now());
      int64_t deadline = now + s.value_ns;
      if (flags & TIMER_ABSTIME) {
        if (pt->base == Base::kMonotonic) {
          // In the caller's time namespace (common_timer_set():
          // timens_ktime_to_host()).
          timespec c;
          clock_gettime(pt->host_clock, &c);
          const int64_t host = TimeNamespace::ToHostNs(t.time_ns().get(), pt->host_clock, s.value_ns);
          const int64_t wait = host - (c.tv_sec * 1000000000LL + c.tv_nsec);
          deadline = wait > INT64_MAX - now ? INT64_MAX : now + wait;
        } else {
          deadline = s.value_ns;
        }
      }
      pt->armed = true;
      pt->deadline = deadline;
      pt->interval = s.interval_ns;
      // Already due (an absolute time in the past): it fires now.
      if (deadline <= now && pt->notify != SIGEV_NONE) pt->Expire(k, t.tg(), now);
    }
    if (!pt->armed || pt->notify == SIGEV_NONE) return old;
  }
  Kick();
  return old;
}

Result<TimerService::Setting> TimerService::GetPosixTimer(Task& t, int id) {
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::shared_ptr<PosixTimer> pt, Find(posix_.get(), t, id));
  return Current(*pt);
}

Result<int> TimerService::PosixTimerOverrun(Task& t, int id) {
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::shared_ptr<PosixTimer> pt, Find(posix_.get(), t, id));
  return pt->overrun_last;
}

Status TimerService::DeletePosixTimer(Task& t, int id) {
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::shared_ptr<PosixTimer> pt, Find(posix_.get(), t, id));
  // A deleted timer's pending signal goes with it (Linux 6.13+,
  // posixtimer_deliver_signal() drops signals of deleted timers).
  pt->armed = false;
  pt->Unqueue(t.tg());
  posix_->procs[&t.tg()].timers.erase(id);
  return {};
}

void TimerService::DeletePosixTimers(const ThreadGroup* tg) {
  if (!posix_) return;
  auto it = posix_->procs.find(tg);
  if (it == posix_->procs.end()) return;
  std::shared_ptr<ThreadGroup> g = it->second.tg.lock();
  for (auto& [id, pt] : it->second.timers) {
    pt->armed = false;
    if (g.get() == tg) pt->Unqueue(*g);
  }
  posix_->procs.erase(it);
}

void TimerService::Kick() {
  absl::MutexLock l(&mu_);
  RearmLocked();
  // Normally running already; a refusal here leaves the timer to the next
  // call that arms one.
  StartThread().ok();
}

int64_t TimerService::CheckPosixTimers(bool* cpu) {
  int64_t next = INT64_MAX;
  mu_.Unlock();
  {
    absl::MutexLock kl(&kernel_.mu());
    if (posix_) {
      for (auto pit = posix_->procs.begin(); pit != posix_->procs.end();) {
        std::shared_ptr<ThreadGroup> tg = pit->second.tg.lock();
        if (!tg || tg->state != ThreadGroup::State::kAlive || tg->group_exiting) {
          // exit_itimers(): a process's timers end with it.
          for (auto& [id, pt] : pit->second.timers) pt->armed = false;
          pit = posix_->procs.erase(pit);
          continue;
        }
        for (auto& [id, pt] : pit->second.timers) {
          if (!pt->armed || pt->requeue || pt->notify == SIGEV_NONE) continue;
          Result<int64_t> now = pt->Now();
          if (!now.ok()) {  // its clock's thread or process is gone
            pt->armed = false;
            continue;
          }
          bool on_cpu = pt->base != Base::kMonotonic;
          if (*now >= pt->deadline) pt->Expire(kernel_, *tg, *now);
          if (!pt->armed || pt->requeue) continue;
          if (on_cpu) {
            *cpu = true;
          } else {
            next = std::min(next, pt->deadline);
          }
        }
        ++pit;
      }
    }
  }
  mu_.Lock();
  return next;
}

}  // namespace seedvisor::sentry
