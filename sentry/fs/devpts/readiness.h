// Readiness: a host fd whose poll(2) state the sentry sets by hand.
//
// poll, select and epoll in the sentry wait on host fds (FileDescription::
// PollFd()). A file whose state lives only in the sentry (a pty end) hands
// out this fd instead and sets POLLIN/POLLOUT to match its own state.
// It is one end of a host unix stream socketpair; the sentry keeps the other:
// POLLIN is one byte queued to it, POLLOUT goes away when its send buffer is
// filled (and comes back when the other end drains it), and Hangup() shuts
// the other end down, which adds POLLHUP for good.
//
//   SV_ASSIGN_OR_RETURN(auto r, Readiness::Create());
//   r->Set(/*in=*/true, /*out=*/false);   // poll(r->fd()) says POLLIN only
#ifndef SEEDVISOR_SENTRY_FS_DEVPTS_READINESS_H_
#define SEEDVISOR_SENTRY_FS_DEVPTS_READINESS_H_

#include <memory>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class Readiness {
 public:
  static Result<std::unique_ptr<Readiness>> Create();
  ~Readiness();
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  // The fd to poll. Never handed to the guest.
  int fd() const { return poll_fd_; }
  // Callers serialize Set and Hangup.
  void Set(bool in, bool out);
  // POLLHUP (and POLLIN) from now on.
  void Hangup();
  // Sandbox fork: a new host socketpair of the child's on the same fd
  // numbers, set to the same state (the seed keeps its own).
  Status RecreateInForkChild();

 private:
  Readiness(int poll_fd, int ctl_fd) : poll_fd_(poll_fd), ctl_fd_(ctl_fd) {}
  const int poll_fd_;
  const int ctl_fd_;
  bool in_ = false;
  bool out_ = true;
  bool hung_up_ = false;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEVPTS_READINESS_H_
