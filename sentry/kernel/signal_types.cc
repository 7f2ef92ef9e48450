#include "sentry/kernel/signal_types.h"

#include <algorithm>
#include <new>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace seedvisor::sentry {

namespace {

constexpr int kSigRtMin = 32;  // the kernel's SIGRTMIN

// Queued signals per user (SigQueueLimit). Its own lock: queues are changed
// under Kernel::mu(), but a queue's destructor may run outside it.
absl::Mutex g_queued_mu;
std::unordered_map<uint32_t, int64_t>& QueuedCounts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_queued_mu) {
  static auto* counts = new std::unordered_map<uint32_t, int64_t>();
  return *counts;
}
// All users' together, whatever their limits (a root guest may raise its
// own to infinity, and has any number of uids): the sentry's memory for
// queued siginfo stays bounded (~40 MiB).
constexpr int64_t kSandboxMaxQueued = 1 << 18;
int64_t g_queued_total ABSL_GUARDED_BY(g_queued_mu) = 0;

}  // namespace

void ReinitQueuedSignalLockInForkChild() {
  // SAFETY: only the calling thread exists; the old lock word is only
  // overwritten (its waiters were threads of the seed).
  new (&g_queued_mu) absl::Mutex;
}

int64_t QueuedSignalsOf(uint32_t uid) {
  absl::MutexLock l(&g_queued_mu);
  auto it = QueuedCounts().find(uid);
  return it == QueuedCounts().end() ? 0 : it->second;
}

void PendingSignals::Uncharge(const Entry& e) {
  if (e.charged_uid < 0) return;
  absl::MutexLock l(&g_queued_mu);
  auto it = QueuedCounts().find(static_cast<uint32_t>(e.charged_uid));
  if (it != QueuedCounts().end() && --it->second <= 0) QueuedCounts().erase(it);
  --g_queued_total;
}

PendingSignals::~PendingSignals() {
  for (const Entry& e : queue_) Uncharge(e);
}

Status PendingSignals::Enqueue(const siginfo_t& info, std::shared_ptr<SignalSource> src,
                               const SigQueueLimit* limit) {
  int sig = info.si_signo;
  if (sig < SIGRTMIN && Has(sig)) return {};  // standard signals do not queue
  int64_t charged = -1;
  if (limit != nullptr) {
    // __send_signal_locked(): a standard signal with si_code >= 0 (the
    // kernel's, kill(2)'s) and SIGKILL override the limit.
    const bool override_limit = sig == SIGKILL || (sig < kSigRtMin && info.si_code >= 0);
    absl::MutexLock l(&g_queued_mu);
    int64_t& n = QueuedCounts()[limit->uid];
    const bool full = static_cast<uint64_t>(n) >= limit->max || g_queued_total >= kSandboxMaxQueued;
    if (!override_limit && full) {
      if (n == 0) QueuedCounts().erase(limit->uid);
      if (sig >= kSigRtMin && info.si_code != SI_USER) return Errno(EAGAIN);
      set_ |= SigBit(sig);
      lost_info_ |= SigBit(sig);
      if (auto hook = g_signal_queued_hook.load()) hook(sig);
      return {};
    }
    ++n;
    ++g_queued_total;
    charged = limit->uid;
  }
  set_ |= SigBit(sig);
  queue_.push_back(Entry{info, std::move(src), charged});
  if (queue_.back().src) queue_.back().src->Queued();
  if (auto hook = g_signal_queued_hook.load()) hook(sig);
  return {};
}

int PendingSignals::Dequeue(SigSet blocked, siginfo_t* info) {
  SigSet ready = set_ & ~blocked;
  if (ready == 0) return 0;
  // Lowest number first, as the kernel's next_signal() prefers (synchronous
  // signals first is a refinement we do not need: faults are forced).
  int sig = __builtin_ctzll(ready) + 1;
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [sig](const Entry& e) { return e.info.si_signo == sig; });
  if (it == queue_.end()) {
    // collect_signal(): pending without a siginfo (the queue was full).
    *info = siginfo_t{};
    info->si_signo = sig;
    info->si_code = SI_USER;
    lost_info_ &= ~SigBit(sig);
    set_ &= ~SigBit(sig);
    return sig;
  }
  *info = it->info;
  std::shared_ptr<SignalSource> src = std::move(it->src);
  Uncharge(*it);
  queue_.erase(it);
  // collect_signal(): the last queued one clears the signal, a pending one
  // without siginfo with it.
  if (std::none_of(queue_.begin(), queue_.end(),
                   [sig](const Entry& e) { return e.info.si_signo == sig; })) {
    set_ &= ~SigBit(sig);
    lost_info_ &= ~SigBit(sig);
  }
  if (src) src->Dequeued(info);
  return sig;
}

void PendingSignals::Discard(int sig) {
  set_ &= ~SigBit(sig);
  lost_info_ &= ~SigBit(sig);
  auto end = std::remove_if(queue_.begin(), queue_.end(),
                            [sig](const Entry& e) { return e.info.si_signo == sig; });
  std::vector<std::shared_ptr<SignalSource>> srcs;
  for (auto it = end; it != queue_.end(); ++it) {
    Uncharge(*it);
    if (it->src) srcs.push_back(std::move(it->src));
  }
  queue_.erase(end, queue_.end());
  for (auto& src : srcs) src->Discarded();
}

void PendingSignals::DiscardFrom(const SignalSource* src) {
  auto end = std::remove_if(queue_.begin(), queue_.end(),
                            [src](const Entry& e) { return e.src.get() == src; });
  for (auto it = end; it != queue_.end(); ++it) Uncharge(*it);
  queue_.erase(end, queue_.end());
  RecomputeSet();
}

void PendingSignals::RecomputeSet() {
  set_ = lost_info_;
  for (const Entry& e : queue_) set_ |= SigBit(e.info.si_signo);
}

DefaultAction DefaultActionOf(int sig) {
  switch (sig) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
      return DefaultAction::kIgnore;
    case SIGCONT:
      return DefaultAction::kContinue;
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
      return DefaultAction::kStop;
    case SIGQUIT:
    case SIGILL:
    case SIGTRAP:
    case SIGABRT:
    case SIGBUS:
    case SIGFPE:
    case SIGSEGV:
    case SIGXCPU:
    case SIGXFSZ:
    case SIGSYS:
      return DefaultAction::kCore;
    default:
      return DefaultAction::kTerminate;  // including real-time signals
  }
}

}  // namespace seedvisor::sentry
