// RLIMIT_CPU on the timer service's thread (timers.h: WatchCpuLimit).
#include <signal.h>
#include <sys/resource.h>

#include <cstdint>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/timers.h"

namespace seedvisor::sentry {
namespace {

// A limit in seconds as CPU nanoseconds, saturating.
int64_t LimitNs(rlim_t seconds) {
  constexpr rlim_t kMax = INT64_MAX / 1000000000LL;
  return seconds >= kMax ? INT64_MAX : static_cast<int64_t>(seconds) * 1000000000LL;
}

}  // namespace

Status TimerService::WatchCpuLimit(const std::shared_ptr<ThreadGroup>& tg) {
  // Read without Kernel::mu(): a racing setrlimit calls us again.
  if (tg->rlimits[RLIMIT_CPU].rlim_cur == RLIM_INFINITY) return {};
  absl::MutexLock l(&mu_);
  SV_TRY(StartThread());
  cpu_limited_[tg.get()] = tg;
  RearmLocked();
  return {};
}

void TimerService::CheckCpuLimits() {
  if (cpu_limited_.empty()) return;
  auto watched = cpu_limited_;
  mu_.Unlock();
  std::vector<std::pair<const ThreadGroup*, std::weak_ptr<ThreadGroup>>> gone;
  {
    absl::MutexLock kl(&kernel_.mu());
    for (auto& [key, weak] : watched) {
      std::shared_ptr<ThreadGroup> tg = weak.lock();
      if (!tg || tg->state != ThreadGroup::State::kAlive || tg->tasks.empty()) {
        gone.push_back({key, weak});
        continue;
      }
      struct rlimit& lim = tg->rlimits[RLIMIT_CPU];
      if (lim.rlim_cur == RLIM_INFINITY) continue;  // raised again meanwhile
      const int64_t cpu = tg->tasks.front()->ProcessCpuNsLocked();
      siginfo_t info{};
      info.si_code = SI_KERNEL;  // SEND_SIG_PRIV
      // check_process_timers(): at the hard limit SIGKILL and nothing more;
      // at the soft limit SIGXCPU, and the soft limit one second on.
      if (lim.rlim_max != RLIM_INFINITY && cpu >= LimitNs(lim.rlim_max)) {
        info.si_signo = SIGKILL;
        kernel_.SendGroupSignal(*tg, info).ok();
        continue;
      }
      if (cpu >= LimitNs(lim.rlim_cur)) {
        lim.rlim_cur += 1;
        info.si_signo = SIGXCPU;
        kernel_.SendGroupSignal(*tg, info).ok();
      }
    }
  }
  mu_.Lock();
  // Dead processes are never watched again; a new one at the same address,
  // watched meanwhile, stays.
  for (auto& [key, weak] : gone) {
    auto it = cpu_limited_.find(key);
    if (it != cpu_limited_.end() && !it->second.owner_before(weak) &&
        !weak.owner_before(it->second)) {
      cpu_limited_.erase(it);
    }
  }
}

}  // namespace seedvisor::sentry
