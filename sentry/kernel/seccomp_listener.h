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
// target's fd table: as in Linux, the target installs it itself, from its
// wait, so that a target that has seen a signal installs nothing more and
// the ADDFDs still queued fail with ESRCH. Everything is sentry data: the
// notifications, their states and the ADDFD requests; the only host
// objects are the fds that poll and epoll wait on (a Readiness, then the
// orphan's hung-up pipe), never handed to the guest.
//
// With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Create(true)) a target whose
// notification the supervisor has received waits for its answer killable
// only: other signals stay pending until the call is answered.
//
// The filter holds the listener (SeccompFilter::listener) and so does the
// fd's file (SeccompListenerFile). Closing the file detaches it
// (seccomp_notify_detach()): waiting and later calls fail with ENOSYS.
// When no task uses the filter any more, FilterGone() makes the fd poll
// POLLHUP alone (__seccomp_filter_orphan(), seccomp_notify_poll()).
//
//   SV_ASSIGN_OR_RETURN(auto l, SeccompListener::Create(/*wait_killable_recv=*/false));
//   filter->listener = l;
//   auto file = std::make_shared<SeccompListenerFile>(l);
//   ...  // in the target, for a USER_NOTIF verdict of that filter:
//   SeccompNotifyResult r = l->Notify(task, data, block_killable);
#ifndef SEEDVISOR_SENTRY_KERNEL_SECCOMP_LISTENER_H_
#define SEEDVISOR_SENTRY_KERNEL_SECCOMP_LISTENER_H_

#include <linux/seccomp.h>

#include <atomic>
#include <cstdint>
#include <functional>
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
  static Result<std::shared_ptr<SeccompListener>> Create(bool wait_killable_recv);
  ~SeccompListener();
  SeccompListener(const SeccompListener&) = delete;
  SeccompListener& operator=(const SeccompListener&) = delete;

  // The target's side (seccomp_do_user_notification()): queues `d` for
  // `t` and waits for the answer, installing the fds ADDFDs bring
  // meanwhile. ENOSYS (as kReturn) once detached. `block_killable` is how
  // `t` sleeps once a WAIT_KILLABLE_RECV notification was received: until
  // woken (success) or, without sleeping, an error if SIGKILL came or the
  // sandbox is being quiesced (a park withdraws the notification like a
  // signal: the call is notified anew once the task runs again).
  SeccompNotifyResult Notify(Task& t, const seccomp_data& d,
                             const std::function<Status()>& block_killable);

  // The supervisor's side: the listener fd's ioctls.
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg);

  // False once the listener's file was closed; only an attached listener
  // counts for has_duplicate_listener().
  bool attached() const;
  // The listener's file was closed (seccomp_notify_detach()).
  void Detach();
  // No task uses the filter any more: POLLHUP from now on.
  void FilterGone();

  // The Readiness fd; once orphaned, a pipe read end without writers,
  // which polls POLLHUP alone (no socket can). An epoll registration made
  // before that hears the Readiness hang up and moves to the pipe
  // (EpollFile follows a file's new PollFd()).
  int poll_fd() const {
    const int hup = hup_fd_.load(std::memory_order_acquire);
    return hup >= 0 ? hup : ready_->fd();
  }
  Status RecreateInForkChild();

 private:
  enum class State { kInit, kSent, kReplied };
  // One NOTIF_ADDFD (struct seccomp_kaddfd): lives on the supervisor's
  // stack until `done`; queued on its Notif until the target takes it.
  struct AddFdReq {
    FileRef file;
    bool setfd;
    int newfd;
    bool cloexec;
    bool send;           // SECCOMP_ADDFD_FLAG_SEND
    bool taken = false;  // the target is installing it (outside mu_)
    bool done = false;   // `ret` is the answer
    Result<int> ret = Errno(ESRCH);
    WaitQueue finished;
  };
  // One waiting syscall; it lives on its task's stack while in notifs_.
  struct Notif {
    uint64_t id;
    int tid;  // global
    seccomp_data data;
    State state = State::kInit;
    std::list<AddFdReq*> addfds;  // oldest first
    int64_t val = 0;
    int32_t error = 0;
    uint32_t flags = 0;
    WaitQueue answered;
  };

  SeccompListener(std::unique_ptr<Readiness> r, bool wait_killable_recv)
      : ready_(std::move(r)), wait_killable_recv_(wait_killable_recv) {}

  // The target installs `a` into its own table (seccomp_handle_addfd()).
  static Result<int> InstallAddFd(Task& t, const AddFdReq& a);
  // A pipe read end whose writer is closed: POLLHUP alone (pipe_poll()).
  static Result<int> MakeHangupFd();

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
  const bool wait_killable_recv_;
  // MakeHangupFd()'s, once FilterGone(); set under mu_, read by poll_fd().
  std::atomic<int> hup_fd_{-1};
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
