#include "sentry/fs/epoll/epoll.h"

#include <poll.h>

namespace seedvisor::sentry {

Status EpollFile::Ctl(int op, FileDescription& target, const epoll_event& ev) {
  if (&target == this) return Errno(EINVAL);  // epoll_ctl(2): fd == epfd
  int hfd = target.PollFd();
  if (hfd < 0) return Errno(EPERM);
  epoll_event e = ev;
  if (epoll_ctl(host_fd(), op, hfd, op == EPOLL_CTL_DEL ? nullptr : &e) != 0) return Errno(errno);
  return {};
}

Result<int> EpollFile::Wait(Task& t, epoll_event* out, int max, const timespec* deadline,
                            bool poll_only) {
  for (bool last = false;; ) {
    int n = epoll_wait(host_fd(), out, max, 0);
    if (n > 0) return n;
    if (n < 0 && errno != EINTR) return Errno(errno);
    if (poll_only || last) return 0;
    Status s = WaitFor(t, POLLIN, deadline);
    if (!s.ok()) {
      if (s.error() == Errno(ETIMEDOUT)) {
        last = true;  // one more look, then time out
        continue;
      }
      // epoll_wait(2) is never restarted after a signal handler.
      return Errno(EINTR);
    }
  }
}

}  // namespace seedvisor::sentry
