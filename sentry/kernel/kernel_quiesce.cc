// Quiescing the sandbox: every task parked at a syscall boundary, the timer
// service thread gone. The state a seed is kept in (sentry/sfork) and what
// `seedsc pause` does.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <new>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {
namespace {

// SAFETY: a 4-byte atomic word; the futex calls only compare and sleep.
long FutexWait(std::atomic<uint32_t>* w, uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT_PRIVATE, val, nullptr,
                 nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* w) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

}  // namespace

void Kernel::ParkTask(Task& t) {
  t.parked_ = true;
  mu_.Unlock();
  // A futex word, not Mutex::Await: a host fork of a quiesced sentry must
  // not copy a waiter that no thread of the child will ever be.
  while (park_word_.load(std::memory_order_acquire) != 0) FutexWait(&park_word_, 1);
  mu_.Lock();
  t.parked_ = false;
}

bool Kernel::AllParked() {
  for (auto& [tid, t] : tasks_) {
    if (!t->parked_ && !t->exited()) return false;
  }
  return true;
}

void Kernel::ReinitInForkChild() {
  // SAFETY: no other thread exists in this process; the old lock words are
  // only overwritten (their waiter lists name threads of the seed).
  new (&mu_) absl::Mutex;
  new (&futex_.mu_) absl::Mutex;
  futex_.waiters_.clear();
}

void Kernel::BumpForkGeneration() {
  fork_generation_.fetch_add(1);
  std::vector<std::shared_ptr<ForkGenerationWatcher>> live;
  {
    absl::MutexLock l(&mu_);
    auto& ws = generation_watchers_;
    for (auto it = ws.begin(); it != ws.end();) {
      if (auto w = it->lock()) {
        live.push_back(std::move(w));
        ++it;
      } else {
        it = ws.erase(it);
      }
    }
  }
  for (auto& w : live) w->ForkGenerationChanged();
}

void Kernel::WatchForkGeneration(std::weak_ptr<ForkGenerationWatcher> w) {
  absl::MutexLock l(&mu_);
  generation_watchers_.push_back(std::move(w));
}

absl::Status Kernel::Quiesce(absl::Duration timeout) {
  {
    absl::MutexLock l(&mu_);
    park_word_.store(1, std::memory_order_release);
    for (auto& [tid, t] : tasks_) t->Interrupt();
  }
  const absl::Time deadline = absl::Now() + timeout;
  std::string busy;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (AllParked()) break;
      if (absl::Now() >= deadline) {
        for (auto& [tid, t] : tasks_) {
          if (!t->parked_ && !t->exited()) absl::StrAppend(&busy, busy.empty() ? "" : ", ", tid);
        }
        break;
      }
      // Tasks that were between the check and their block: kick again.
      for (auto& [tid, t] : tasks_) {
        if (!t->parked_) t->Interrupt();
      }
    }
    usleep(200);
  }
  if (!busy.empty()) {
    Unquiesce();
    return absl::DeadlineExceededError(absl::StrCat(
        "quiescing the sandbox: task(s) ", busy, " did not reach a syscall boundary within ",
        absl::FormatDuration(timeout), " (a vfork parent waiting for its child, say)"));
  }
  timers_->Park();
  return absl::OkStatus();
}

void Kernel::Unquiesce() {
  absl::MutexLock l(&mu_);
  if (park_word_.load(std::memory_order_acquire) == 0) return;
  park_word_.store(0, std::memory_order_release);
  FutexWakeAll(&park_word_);
  timers_->Unpark();
}


}  // namespace seedvisor::sentry
