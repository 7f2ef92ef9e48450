// Guest signal bookkeeping: sets, actions, and queued siginfo.
#ifndef SEEDVISOR_SENTRY_KERNEL_SIGNAL_TYPES_H_
#define SEEDVISOR_SENTRY_KERNEL_SIGNAL_TYPES_H_

#include <signal.h>

#include <array>
#include <cstdint>
#include <atomic>
#include <deque>
#include <memory>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

inline constexpr int kNumSignals = 64;

// A guest sigset_t as the kernel ABI has it: bit (sig-1).
using SigSet = uint64_t;
constexpr SigSet SigBit(int sig) { return SigSet{1} << (sig - 1); }
inline constexpr SigSet kUnblockable = SigBit(SIGKILL) | SigBit(SIGSTOP);

// struct sigaction as rt_sigaction(2) passes it on x86-64 (kernel layout).
struct KernelSigaction {
  uint64_t handler = 0;  // SIG_DFL = 0, SIG_IGN = 1
  uint64_t flags = 0;
  uint64_t restorer = 0;
  SigSet mask = 0;
};

struct SignalHandlers {
  std::array<KernelSigaction, kNumSignals + 1> actions{};  // index = signal number
};

// The sender of a queued signal that wants to know what becomes of it
// (a POSIX timer counts overruns while its signal waits). Both calls come
// with Kernel::mu() held.
class SignalSource {
 public:
  virtual ~SignalSource() = default;
  virtual void Queued() = 0;
  // Just taken off the queue: may fill in `info` (si_overrun).
  virtual void Dequeued(siginfo_t* info) = 0;
  // Thrown away undelivered (PendingSignals::Discard).
  virtual void Discarded() = 0;
};

// RLIMIT_SIGPENDING (__sigqueue_alloc()): the queued signals of one user,
// the target's real user, are bounded by the target's limit. Counted over
// the whole sandbox, which is one user namespace.
struct SigQueueLimit {
  uint32_t uid = 0;
  uint64_t max = 0;
};
// How many queued signals are charged to `uid` now.
int64_t QueuedSignalsOf(uint32_t uid);
// In a sandbox fork's child, before any thread but the caller exists:
// the queued-signal counts' lock anew (a thread of the seed may have held it
// at the host fork). Allocates nothing, takes no lock.
void ReinitQueuedSignalLockInForkChild();

// Pending signals: standard signals coalesce, real-time signals queue.
class PendingSignals {
 public:
  PendingSignals() = default;
  PendingSignals(const PendingSignals&) = delete;
  PendingSignals& operator=(const PendingSignals&) = delete;
  ~PendingSignals();  // gives back what the queue holds (SigQueueLimit)

  // Queues `info`. With `limit`, an entry counts against it, and past it
  // (__send_signal_locked()): a real-time signal not sent by kill(2) is
  // EAGAIN; kill(2)'s, and a standard signal sent with a negative si_code,
  // is pending without its siginfo (dequeued as SI_USER from pid 0); other
  // standard signals (the kernel's, kill(2)'s) are queued over the limit.
  Status Enqueue(const siginfo_t& info, std::shared_ptr<SignalSource> src = nullptr,
                 const SigQueueLimit* limit = nullptr);
  // The lowest-numbered pending signal not in `blocked`, removed; 0 if none.
  int Dequeue(SigSet blocked, siginfo_t* info);
  SigSet Set() const { return set_; }
  bool Has(int sig) const { return (set_ & SigBit(sig)) != 0; }
  void Discard(int sig);
  // Drops the signals `src` queued (a deleted or re-armed POSIX timer's).
  void DiscardFrom(const SignalSource* src);

 private:
  struct Entry {
    siginfo_t info;
    std::shared_ptr<SignalSource> src;
    int64_t charged_uid = -1;  // the user it counts against, or none
  };
  void RecomputeSet();
  static void Uncharge(const Entry& e);
  SigSet set_ = 0;
  SigSet lost_info_ = 0;  // pending without a queued siginfo
  std::deque<Entry> queue_;
};

// Called (with Kernel::mu() held) each time a signal is queued anywhere:
// signalfd(2) (sentry/fs/signalfd) installs it to mark its files readable.
inline std::atomic<void (*)(int sig)> g_signal_queued_hook{nullptr};

// Who sends a signal, for the sandbox init's protection
// (ThreadGroup::unkillable): Linux's `force` in send_signal_locked().
enum class SignalSender {
  // The sentry itself (a fault, RLIMIT_CPU, a dead platform context,
  // PTRACE_ATTACH's SIGSTOP) or the host outside the sandbox (`seedsc kill`,
  // the shim): SIGKILL and SIGSTOP reach the init (SEND_SIG_PRIV, or a
  // sender in an ancestor pid namespace).
  kKernel,
  // A task of the sandbox: kill(2), tgkill(2), rt_sigqueueinfo(2),
  // pidfd_send_signal(2), PTRACE_KILL, and what a task armed (POSIX timers,
  // mq_notify, F_SETSIG). The init gets only what it has a handler for,
  // unless the task claims SI_KERNEL for a signal to itself.
  kSandboxTask,
  // `seedsc do` passing on a signal it got itself (its terminal's ^C,
  // `timeout`): delivered as if the command were not an init, as `runsc do`
  // does, so that ^C ends `seedsc do sleep 100`.
  kDoForward,
};

enum class DefaultAction { kTerminate, kCore, kStop, kContinue, kIgnore };
DefaultAction DefaultActionOf(int sig);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_SIGNAL_TYPES_H_
