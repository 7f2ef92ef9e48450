// SignalFdFile: signalfd(2). Reading dequeues the reader's pending signals
// in the file's mask (thread-directed first, then process-wide) as
// struct signalfd_siginfo records.
//
// Readiness for poll/epoll comes from a host eventfd: every queued signal in
// the mask (g_signal_queued_hook) makes it readable; a read that finds
// nothing clears it. Linux computes readiness per reader; here a signal
// queued for another process that shares the file can make it look readable
// until a read returns EAGAIN, which callers of non-blocking fds handle.
//
//   auto f = SignalFdFile::Create(O_RDONLY | O_NONBLOCK, SigBit(SIGUSR1));
//   SV_ASSIGN_OR_RETURN(size_t n, (*f)->Read(t, buf, sizeof(signalfd_siginfo)));
#ifndef SEEDVISOR_SENTRY_FS_SIGNALFD_SIGNALFD_H_
#define SEEDVISOR_SENTRY_FS_SIGNALFD_SIGNALFD_H_

#include <atomic>
#include <memory>

#include "sentry/fs/anon/hostfd_file.h"
#include "sentry/kernel/signal_types.h"

namespace seedvisor::sentry {

class SignalFdFile : public HostFdFile {
 public:
  static Result<std::shared_ptr<SignalFdFile>> Create(Task& t, int flags, SigSet mask);
  SignalFdFile(int flags, int host_efd, SigSet mask);
  ~SignalFdFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  // Sandbox fork: the queue is sentry memory; the readiness eventfd is
  // recreated with its count.
  absl::Status AdoptInForkChild(ForkFileContext&) override {
    return RecreateReadinessEventFdInForkChild();
  }

  SigSet mask() const { return mask_.load(); }
  // signalfd4(2) on an existing signalfd replaces the mask.
  void SetMask(Task& t, SigSet mask);

  // Marks the file readable if `sig` is in its mask (any thread).
  void OnSignalQueued(int sig);

 private:
  // Marks readable if `t` has a pending signal in the mask.
  void Refresh(Task& t);
  void SetReady(bool ready);
  std::atomic<SigSet> mask_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_SIGNALFD_SIGNALFD_H_
