#include "sentry/kernel/signal_types.h"

#include <algorithm>
#include <vector>

namespace seedvisor::sentry {

void PendingSignals::Enqueue(const siginfo_t& info, std::shared_ptr<SignalSource> src) {
  int sig = info.si_signo;
  if (sig < SIGRTMIN && Has(sig)) return;  // standard signals do not queue
  set_ |= SigBit(sig);
  queue_.push_back(Entry{info, std::move(src)});
  if (queue_.back().src) queue_.back().src->Queued();
  if (auto hook = g_signal_queued_hook.load()) hook(sig);
}

int PendingSignals::Dequeue(SigSet blocked, siginfo_t* info) {
  SigSet ready = set_ & ~blocked;
  if (ready == 0) return 0;
  // Lowest number first, as the kernel's next_signal() prefers (synchronous
  // signals first is a refinement we do not need: faults are forced).
  int sig = __builtin_ctzll(ready) + 1;
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [sig](const Entry& e) { return e.info.si_signo == sig; });
  *info = it->info;
  std::shared_ptr<SignalSource> src = std::move(it->src);
  queue_.erase(it);
  if (std::none_of(queue_.begin(), queue_.end(),
                   [sig](const Entry& e) { return e.info.si_signo == sig; })) {
    set_ &= ~SigBit(sig);
  }
  if (src) src->Dequeued(info);
  return sig;
}

void PendingSignals::Discard(int sig) {
  set_ &= ~SigBit(sig);
  auto end = std::remove_if(queue_.begin(), queue_.end(),
                            [sig](const Entry& e) { return e.info.si_signo == sig; });
  std::vector<std::shared_ptr<SignalSource>> srcs;
  for (auto it = end; it != queue_.end(); ++it) {
    if (it->src) srcs.push_back(std::move(it->src));
  }
  queue_.erase(end, queue_.end());
  for (auto& src : srcs) src->Discarded();
}

void PendingSignals::DiscardFrom(const SignalSource* src) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [src](const Entry& e) { return e.src.get() == src; }),
               queue_.end());
  RecomputeSet();
}

void PendingSignals::RecomputeSet() {
  set_ = 0;
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
