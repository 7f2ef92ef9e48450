#include "sentry/kernel/timers.h"

#include <sys/time.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "sentry/base/log.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

TimerService::~TimerService() {
  {
    absl::MutexLock l(&mu_);
    StopLoopLocked();
  }
  thread_.Join();
}

Result<TimerService::Setting> TimerService::SetReal(const std::shared_ptr<ThreadGroup>& tg,
                                                    Setting s) {
  Setting old = GetReal(tg.get());
  absl::MutexLock l(&mu_);
  if (s.value_ns <= 0) {
    timers_.erase(tg.get());
  } else {
    SV_TRY(StartThread());
    timers_[tg.get()] = Timer{tg, MonotonicNowNs() + s.value_ns, s.interval_ns, ++real_settings_};
    RearmLocked();
  }
  return old;
}

TimerService::Setting TimerService::GetReal(const ThreadGroup* tg) {
  absl::MutexLock l(&mu_);
  auto it = timers_.find(tg);
  if (it == timers_.end()) return {};
  return Setting{std::max<int64_t>(it->second.deadline_ns - MonotonicNowNs(), 1),
                 it->second.interval_ns};
}

Status TimerService::StartThread() {
  if (thread_.joinable() || parked_) return {};
  SV_ASSIGN_OR_RETURN(thread_, ServiceThread::Start([this] { Loop(); }));
  return {};
}

Status TimerService::EnsureThread() {
  absl::MutexLock l(&mu_);
  return StartThread();
}

void TimerService::Park() {
  {
    absl::MutexLock l(&mu_);
    parked_ = true;
    StopLoopLocked();
    resume_thread_ = thread_.joinable();
  }
  thread_.Join();
  absl::MutexLock l(&mu_);
  stop_ = false;
}

void TimerService::Unpark() {
  absl::MutexLock l(&mu_);
  parked_ = false;
  // The thread runs from the first armed timer on: bring it back if it ran.
  if (!resume_thread_) return;
  if (Status s = StartThread(); !s.ok()) {
    // No guest call to fail: the armed timers wait for the next one that
    // arms (it tries again, and fails with EAGAIN if the host still says no).
    Log::Warning("timers: the host refused the timer thread (%s); armed timers are late",
                 std::strerror(s.error().value()));
  }
}

Result<TimerService::Setting> TimerService::SetCpu(const std::shared_ptr<ThreadGroup>& tg,
                                                   int which, Setting s, int64_t cpu_ns) {
  Setting old = GetCpu(tg.get(), which, cpu_ns);
  absl::MutexLock l(&mu_);
  if (s.value_ns <= 0) {
    cpu_timers_.erase({tg.get(), which});
  } else {
    SV_TRY(StartThread());
    cpu_timers_[{tg.get(), which}] = CpuTimer{tg, cpu_ns + s.value_ns, s.interval_ns};
    RearmLocked();
  }
  return old;
}

TimerService::Setting TimerService::GetCpu(const ThreadGroup* tg, int which, int64_t cpu_ns) {
  absl::MutexLock l(&mu_);
  auto it = cpu_timers_.find({tg, which});
  if (it == cpu_timers_.end()) return {};
  return Setting{std::max<int64_t>(it->second.deadline_cpu_ns - cpu_ns, 1),
                 it->second.interval_ns};
}

void TimerService::CheckCpuTimers() {
  if (cpu_timers_.empty()) return;
  auto armed = cpu_timers_;
  mu_.Unlock();
  std::vector<std::pair<const ThreadGroup*, int>> gone;
  std::vector<std::pair<std::pair<const ThreadGroup*, int>, int64_t>> fired;  // new deadline
  {
    absl::MutexLock kl(&kernel_.mu());
    for (auto& [key, timer] : armed) {
      std::shared_ptr<ThreadGroup> tg = timer.tg.lock();
      if (!tg || tg->state != ThreadGroup::State::kAlive || tg->tasks.empty()) {
        gone.push_back(key);
        continue;
      }
      int64_t cpu = tg->tasks.front()->ProcessCpuNsLocked();
      if (cpu < timer.deadline_cpu_ns) continue;
      siginfo_t info{};
      info.si_signo = key.second == ITIMER_VIRTUAL ? SIGVTALRM : SIGPROF;
      info.si_code = SI_KERNEL;
      kernel_.SendGroupSignal(*tg, info).ok();
      // check_cpu_itimer(): the next expiry is one interval on; one signal
      // per check even if several intervals passed.
      int64_t next = 0;
      if (timer.interval_ns > 0) {
        next = timer.deadline_cpu_ns + timer.interval_ns;
        if (next <= cpu) next = cpu + timer.interval_ns;
      }
      fired.push_back({key, next});
    }
  }
  mu_.Lock();
  for (auto& key : gone) cpu_timers_.erase(key);
  for (auto& [key, deadline] : fired) {
    auto it = cpu_timers_.find(key);
    // Re-armed or cancelled meanwhile: the new setting wins.
    if (it == cpu_timers_.end() || it->second.deadline_cpu_ns != armed[key].deadline_cpu_ns) {
      continue;
    }
    if (deadline == 0) {
      cpu_timers_.erase(it);
    } else {
      it->second.deadline_cpu_ns = deadline;
    }
  }
}

void TimerService::Loop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    rearmed_ = false;
    CheckCpuTimers();
    CheckCpuLimits();
    int64_t now = MonotonicNowNs();
    int64_t next = now + 1000000000LL;  // re-check at least every second
    bool posix_cpu = false;
    next = std::min(next, CheckPosixTimers(&posix_cpu));
    if (!cpu_timers_.empty() || !cpu_limited_.empty() || posix_cpu) next = std::min(next, now + kCpuTick);
    for (auto it = timers_.begin(); it != timers_.end();) {
      Timer& t = it->second;
      if (t.deadline_ns <= now) {
        std::shared_ptr<ThreadGroup> tg = t.tg.lock();
        if (tg) {
          const uint64_t fired = t.setting;
          siginfo_t info{};
          info.si_signo = SIGALRM;
          info.si_code = SI_KERNEL;  // it_real_fn() sends SEND_SIG_PRIV
          mu_.Unlock();
          {
            absl::MutexLock kl(&kernel_.mu());
            kernel_.SendGroupSignal(*tg, info).ok();
          }
          mu_.Lock();
          // The map may have changed while unlocked: look the timer up again.
          it = timers_.find(tg.get());
          if (it == timers_.end()) {
            it = timers_.begin();
            continue;
          }
          if (it->second.setting != fired) {
            // Set again meanwhile (the handler re-armed it, as the signal
            // woke it): the new setting stands, with its own deadline.
            next = std::min(next, it->second.deadline_ns);
            ++it;
            continue;
          }
        }
        if (tg && it->second.interval_ns > 0) {
          it->second.deadline_ns += it->second.interval_ns;
          if (it->second.deadline_ns <= now) it->second.deadline_ns = now + it->second.interval_ns;
          next = std::min(next, it->second.deadline_ns);
          ++it;
        } else {
          it = timers_.erase(it);
        }
        continue;
      }
      next = std::min(next, t.deadline_ns);
      ++it;
    }
    // On the monotonic clock, as the deadlines are; beside host forks (a
    // Fork racing Shutdown's Unquiesce may find this thread started again)
    // MonoCondVar takes no lock of its own.
    wake_.Await(&mu_, absl::Condition(this, &TimerService::WakeLoop),
                Deadline::At(absl::Nanoseconds(next)));
  }
}

}  // namespace seedvisor::sentry
