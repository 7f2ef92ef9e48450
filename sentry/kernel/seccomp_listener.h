// SeccompListener: user notification for a guest's seccomp filter
// (SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_RET_USER_NOTIF; man
// seccomp_unotify(2)).
//
// A task whose syscall gets SECCOMP_RET_USER_NOTIF queues a notification on
// the listener of the filter that gave the verdict and waits; a supervisor
// (another process of the sandbox that got the fd over a unix socket, or a
// thread of the same one) takes it with SECCOMP_IOCTL_NOTIF_RECV and
// answers with NOTIF_SEND: a return value, an errno, or "continue" (the
// call runs). NOTIF_ADDFD puts one of the supervisor's files into the
// target's fd table. Everything is sentry data: the notifications, their
// states and the fd table an ADDFD writes to; the only host object is the
// Readiness fd that poll and epoll wait on, never handed to the guest.
//
// The filter holds the listener (SeccompFilter::listener) and so does the
// fd's file (SeccompListenerFile). Closing the file detaches it
// (seccomp_notify_detach()): waiting and later calls fail with ENOSYS.
// When no task uses the filter any more, FilterGone() makes the fd poll
// POLLHUP (__seccomp_filter_orphan()).
//
//   SV_ASSIGN_OR_RETURN(auto l, SeccompListener::Create());
//   filter->listener = l;
//   auto file = std::make_shared<SeccompListenerFile>(l);
//   ...  // in the target, for a USER_NOTIF verdict of that filter:
//   SeccompNotifyResult r = l->Notify(task, data);
#ifndef SEEDVISOR_SENTRY_KERNEL_SECCOMP_LISTENER_H_
#define SEEDVISOR_SENTRY_KERNEL_SECCOMP_LISTENER_H_

#include <linux/seccomp.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/fs/devpts/readiness.h"
#include "sentry/vfs/fd_table.h"
#include "sentry/vfs/file.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

class Task;

// How a notified syscall ends.
struct SeccompNotifyResult {
  enum class Kind {
    kReturn,    // the call is skipped and returns `value` (or -errno)
    kContinue,  // SECCOMP_USER_NOTIF_FLAG_CONTINUE: the call runs
    kRestart,   // a signal withdrew the notification: ERESTARTSYS
  };
  Kind kind;
  int64_t value = 0;
};

class SeccompListener {
 public:
  static Result<std::shared_ptr<SeccompListener>> Create();
  SeccompListener(const SeccompListener&) = delete;
  SeccompListener& operator=(const SeccompListener&) = delete;

  // The target's side (seccomp_do_user_notification()): queues `d` for
  // `t` and waits for the answer. ENOSYS (as kReturn) once detached.
  SeccompNotifyResult Notify(Task& t, const seccomp_data& d);

  // The supervisor's side: the listener fd's ioctls.
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg);

  // False once the listener's file was closed; only an attached listener
  // counts for has_duplicate_listener().
  bool attached() const;
  // The listener's file was closed (seccomp_notify_detach()).
  void Detach();
  // No task uses the filter any more: POLLHUP from now on.
  void FilterGone();

  int poll_fd() const { return ready_->fd(); }
  Status RecreateInForkChild();

 private:
  enum class State { kInit, kSent, kReplied };
  // One waiting syscall; it lives on its task's stack while in notifs_.
  struct Notif {
    uint64_t id;
    int tid;                       // global
    std::shared_ptr<FdTable> fds;  // the target's, for ADDFD
    int fd_limit;                  // its RLIMIT_NOFILE
    seccomp_data data;
    State state = State::kInit;
    int addfd_busy = 0;  // ADDFDs working on the target's table right now
    int64_t val = 0;
    int32_t error = 0;
    uint32_t flags = 0;
    WaitQueue answered;
  };

  explicit SeccompListener(std::unique_ptr<Readiness> r) : ready_(std::move(r)) {}

  Result<long> Recv(Task& t, UserAddr arg);
  Result<long> Send(Task& t, UserAddr arg);
  Result<long> IdValid(Task& t, UserAddr arg);
  Result<long> AddFd(Task& t, UserAddr arg, size_t size);
  Notif* FindLocked(uint64_t id);
  // POLLIN while a notification waits to be received, POLLOUT while a
  // received one waits for its answer (seccomp_notify_poll()).
  void UpdateReadinessLocked();

  mutable std::mutex mu_;
  std::list<Notif*> notifs_;                // guarded by mu_, oldest first
  uint64_t next_id_;                        // guarded by mu_
  bool detached_ = false;                   // guarded by mu_
  bool sync_wake_ = false;                  // guarded by mu_; SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
  WaitQueue receivers_;                     // guarded by mu_
  const std::unique_ptr<Readiness> ready_;  // guarded by mu_
};

// The listener fd: anon_inode:seccomp notify, O_RDWR.
class SeccompListenerFile : public FileDescription {
 public:
  explicit SeccompListenerFile(std::shared_ptr<SeccompListener> l);
  ~SeccompListenerFile() override;

  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override {
    return listener_->Ioctl(t, cmd, arg);
  }
  int PollFd() const override { return listener_->poll_fd(); }
  std::string DisplayPath() const override { return "anon_inode:seccomp notify"; }
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  const std::shared_ptr<SeccompListener> listener_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_SECCOMP_LISTENER_H_
