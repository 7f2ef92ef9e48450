#include "sentry/kernel/timers.h"

#include <time.h>

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
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

TimerService::Setting TimerService::SetReal(const std::shared_ptr<ThreadGroup>& tg, Setting s) {
  Setting old = GetReal(tg.get());
  absl::MutexLock l(&mu_);
  if (s.value_ns <= 0) {
    timers_.erase(tg.get());
  } else {
    timers_[tg.get()] = Timer{tg, MonotonicNowNs() + s.value_ns, s.interval_ns};
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
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

void TimerService::Loop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    int64_t now = MonotonicNowNs();
    int64_t next = now + 1000000000LL;  // re-check at least every second
    for (auto it = timers_.begin(); it != timers_.end();) {
      Timer& t = it->second;
      if (t.deadline_ns <= now) {
        std::shared_ptr<ThreadGroup> tg = t.tg.lock();
        if (tg) {
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
    mu_.AwaitWithTimeout(absl::Condition(&stop_),
                         absl::Nanoseconds(std::max<int64_t>(next - MonotonicNowNs(), 0)));
  }
}

}  // namespace seedvisor::sentry
