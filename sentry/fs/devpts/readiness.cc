#include "sentry/fs/devpts/readiness.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace seedvisor::sentry {

Result<std::unique_ptr<Readiness>> Readiness::Create() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    return Errno(errno);
  }
  // A small send buffer: clearing POLLOUT fills it.
  int sz = 1;
  (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  return std::unique_ptr<Readiness>(new Readiness(sv[0], sv[1]));
}

Readiness::~Readiness() {
  close(poll_fd_);
  close(ctl_fd_);
}

void Readiness::Set(bool in, bool out) {
  if (hung_up_) return;
  char buf[4096] = {};
  if (in && !in_) {
    (void)send(ctl_fd_, buf, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  } else if (!in && in_) {
    while (recv(poll_fd_, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
  }
  in_ = in;
  if (!out && out_) {
    // unix_writable(): not writable once the unread data this end sent
    // fills its send buffer.
    while (send(poll_fd_, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
  } else if (out && !out_) {
    while (recv(ctl_fd_, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
  }
  out_ = out;
}

Status Readiness::RecreateInForkChild() {
  SV_ASSIGN_OR_RETURN(auto fresh, Create());
  if (dup3(fresh->poll_fd_, poll_fd_, O_CLOEXEC) < 0) return Errno(errno);
  if (dup3(fresh->ctl_fd_, ctl_fd_, O_CLOEXEC) < 0) return Errno(errno);
  // `fresh` closes its own numbers; ours are the new pair now, in its
  // initial state: replay ours.
  const bool in = in_, out = out_, hung_up = hung_up_;
  in_ = false;
  out_ = true;
  hung_up_ = false;
  Set(in, out);
  if (hung_up) Hangup();
  return {};
}

void Readiness::Hangup() {
  if (hung_up_) return;
  // The shutdown first: a poller that the byte Set() queues would wake
  // must already see POLLHUP with it. (Set()'s drain still works on the
  // shut-down end: queued data stays readable.)
  shutdown(ctl_fd_, SHUT_RDWR);
  Set(true, true);
  hung_up_ = true;
}

}  // namespace seedvisor::sentry
