// Quiescing the sandbox: every task parked at a syscall boundary, the timer
// service thread gone. The state a seed is kept in (sentry/sfork) and what
// `seedsc pause` does.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sentry/base/mono_clock.h"
#include "sentry/kernel/kernel.h"

#include "sentry/fs/inotify/inotify_limits.h"
#include "sentry/socket/net_service.h"
#include "sentry/vfs/write_access.h"

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
  // A futex word, not Mutex::Await: a host fork of a quiesced sentry must
  // not copy a waiter that no thread of the child will ever be.
  for (;;) {
    const uint32_t word = park_word_.load(std::memory_order_acquire);
    // Work asked of it runs first: RunOnParkedTasks' caller waits for it.
    const bool killed = t.tg_->group_exiting || t.exit_requested_;
    if ((word == 0 || killed) && t.park_work_ == nullptr) break;
    if (t.park_work_ != nullptr) {
      // RunOnParkedTasks; still parked (at the syscall boundary) meanwhile.
      // Run even if the park has just ended, so that its caller never waits
      // for a task that left.
      std::function<void()> work = std::move(t.park_work_);
      t.park_work_ = nullptr;
      mu_.Unlock();
      work();
      mu_.Lock();
      continue;
    }
    mu_.Unlock();
    FutexWait(&park_word_, word);
    mu_.Lock();
  }
  t.parked_ = false;
}

namespace {

// What one RunOnParkedTasks call shares with the tasks doing its work. On
// the heap, held by the call and by each task's work: a task still working
// when the call has given up (kParkedWorkBound) writes into state that
// lives on, never into the caller's stack.
struct ParkedWork {
  ParkedWork(size_t n, std::function<absl::Status(Task&, size_t)> w)
      : work(std::move(w)),
        results(n),
        done(new std::atomic<bool>[n]),
        left(static_cast<uint32_t>(n)) {
    for (size_t i = 0; i < n; ++i) done[i].store(false, std::memory_order_relaxed);
  }
  const std::function<absl::Status(Task&, size_t)> work;
  std::vector<absl::Status> results;          // results[i] is written before done[i]
  std::unique_ptr<std::atomic<bool>[]> done;  // by each task, then read by the caller
  std::atomic<uint32_t> left;                 // a futex word: tasks not done
};

// How long RunOnParkedTasks' caller, a sandbox fork holding the fork lock,
// waits for the work it gave parked tasks to do on their own host threads
// (copying their stubs). Past it the call fails, naming the tasks whose
// work has not finished, instead of holding the fork lock (and so every
// later Fork) for as long as a stub does not answer (a Fork under load once
// held it 23 s). The late work finishes on its own; its result is dropped.
// Generous: the work takes well under a second per task at a load of 20,
// and sandbox fork clients give a Fork 20 s.
constexpr absl::Duration kParkedWorkBound = absl::Seconds(15);
std::atomic<int64_t> g_bound_ns{absl::ToInt64Nanoseconds(kParkedWorkBound)};

// Work handed to parked tasks that has not finished, counted across calls:
// nonzero between two calls only when one gave up on a task still at its
// work (which copies stubs and takes the platform's locks outside
// Kernel::mu()). Until it finishes, no new work and no host fork of the
// sentry (the child would copy that thread's locks and half-made copies).
std::atomic<uint32_t> g_parked_work_running{0};

// SAFETY: as FutexWait, for at most `timeout` (FUTEX_WAIT's is relative,
// on the monotonic clock).
void FutexWaitFor(std::atomic<uint32_t>* w, uint32_t val, absl::Duration timeout) {
  const timespec ts = absl::ToTimespec(timeout);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT_PRIVATE, val, &ts, nullptr, 0);
}

}  // namespace

// Declared by the host forks of a sandbox fork (sentry/sfork): whether
// work a RunOnParkedTasks call gave up on is still running.
bool ParkedWorkStillRunning() {
  return g_parked_work_running.load(std::memory_order_acquire) != 0;
}

// Test hook (//sentry/kernel:parked_work_test declares it): the bound from
// now on; a zero or negative one restores kParkedWorkBound. Not in
// kernel.h, which nearly every sentry file includes.
void SetParkedWorkBoundForTest(absl::Duration bound) {
  if (bound <= absl::ZeroDuration()) bound = kParkedWorkBound;
  g_bound_ns.store(absl::ToInt64Nanoseconds(bound), std::memory_order_relaxed);
}

absl::Status Kernel::RunOnParkedTasks(const std::vector<std::shared_ptr<Task>>& tasks,
                                      const std::function<absl::Status(Task&, size_t)>& work) {
  const absl::Duration bound = absl::Nanoseconds(g_bound_ns.load(std::memory_order_relaxed));
  auto state = std::make_shared<ParkedWork>(tasks.size(), work);
  if (ParkedWorkStillRunning()) {
    return absl::UnavailableError(
        "a parked task is still at work an earlier sandbox fork gave up on (a stub that did not "
        "answer): no new work until it ends");
  }
  {
    absl::MutexLock l(&mu_);
    if (!park_requested()) {
      return absl::FailedPreconditionError("the sandbox is not paused: pause it first (a seed)");
    }
    for (const auto& t : tasks) {
      if (!t->parked_ || t->exited() || t->park_work_ != nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("task ", t->tid(), " is not parked at a syscall boundary"));
      }
    }
    g_parked_work_running.fetch_add(static_cast<uint32_t>(tasks.size()),
                                    std::memory_order_acq_rel);
    for (size_t i = 0; i < tasks.size(); ++i) {
      Task* t = tasks[i].get();
      t->park_work_ = [state, t, i] {
        state->results[i] = state->work(*t, i);
        state->done[i].store(true, std::memory_order_release);
        g_parked_work_running.fetch_sub(1, std::memory_order_acq_rel);
        if (state->left.fetch_sub(1, std::memory_order_acq_rel) == 1) FutexWakeAll(&state->left);
      };
    }
    // A new value wakes every parked task (and a task on its way into
    // FutexWait finds the word changed); each looks for its work.
    uint32_t next = park_word_.load(std::memory_order_relaxed) + 1;
    park_word_.store(next == 0 ? 1 : next, std::memory_order_release);
    FutexWakeAll(&park_word_);
  }
  const absl::Duration deadline = MonotonicNow() + bound;
  for (;;) {
    const uint32_t left = state->left.load(std::memory_order_acquire);
    if (left == 0) break;
    const absl::Duration now = MonotonicNow();
    if (now >= deadline) {
      // The last task may have finished since `left` was read.
      if (state->left.load(std::memory_order_acquire) == 0) break;
      std::string stuck;
      size_t n = 0;
      for (size_t i = 0; i < tasks.size(); ++i) {
        if (state->done[i].load(std::memory_order_acquire)) continue;
        absl::StrAppend(&stuck, n++ == 0 ? "" : ", ", tasks[i]->tid());
      }
      return absl::DeadlineExceededError(absl::StrCat(
          n == 1 ? "task " : "tasks ", stuck, " did not finish ", n == 1 ? "its" : "their",
          " work on ", n == 1 ? "its own host thread" : "their own host threads", " within ",
          absl::FormatDuration(bound), " (a stub that does not answer?): given up"));
    }
    FutexWaitFor(&state->left, left, deadline - now);
  }
  for (absl::Status& s : state->results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void Kernel::WakeParkedToDieLocked() {
  const uint32_t word = park_word_.load(std::memory_order_acquire);
  if (word == 0) return;
  // A new nonzero value: every parked task wakes and looks (ParkTask).
  park_word_.store(word + 1 == 0 ? 1 : word + 1, std::memory_order_release);
  quiesce_epoch_.fetch_add(1, std::memory_order_acq_rel);
  FutexWakeAll(&park_word_);
}

bool Kernel::AllParked() {
  for (auto& [tid, t] : tasks_) {
    if (!t->parked_ && !t->exited()) return false;
  }
  return true;
}

bool Kernel::AwaitAllParked(absl::Duration timeout) {
  const absl::Duration deadline = MonotonicNow() + timeout;  // mono_clock.h: beside host forks
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (AllParked()) return true;
    }
    if (MonotonicNow() >= deadline) return false;
    usleep(200);
  }
}

// sentry/fs/pipe/pipe_account.cc: its lock anew (callers of the pipe
// accounting declare what they use; pipe.h is seen by every kernel file).
void ReinitPipeAccountLockInForkChild();

void Kernel::ReinitInForkChild() {
  // SAFETY: no other thread exists in this process; the old lock words are
  // only overwritten (their waiter lists name threads of the seed).
  new (&mu_) absl::Mutex;
  new (&exit_cv_) MonoCondVar;
  new (&futex_.mu_) absl::Mutex;
  ReinitQueuedSignalLockInForkChild();
  ReinitWriteAccessLockInForkChild();
  ReinitInotifyLimitsLockInForkChild();
  ReinitPipeAccountLockInForkChild();
  futex_.queues_.clear();  // the seed's waiters: parked, they restart
  futex_.pi_.clear();
  // The sandbox's own stack came along (connections and all): it needs its
  // own wakeup fd and new secrets (ISNs, ports) before the guest runs.
  if (net_) net_->ResetInForkChild();
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
  const absl::Duration deadline = MonotonicNow() + timeout;  // mono_clock.h: beside host forks
  std::string busy;
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (AllParked()) break;
      if (MonotonicNow() >= deadline) {
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
  if (net_) net_->Park();
  quiesce_epoch_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

void Kernel::Unquiesce() {
  absl::MutexLock l(&mu_);
  if (park_word_.load(std::memory_order_acquire) == 0) return;
  park_word_.store(0, std::memory_order_release);
  FutexWakeAll(&park_word_);
  timers_->Unpark();
  if (net_) net_->Unpark();
}


}  // namespace seedvisor::sentry
