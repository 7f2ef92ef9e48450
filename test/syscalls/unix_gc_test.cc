// Unix-socket garbage with epoll in it: an epoll fd queued (SCM_RIGHTS) in
// a socket it watches, SCM_RIGHTS cycles of sockets that epoll fds watch
// and that hold epoll fds, nested epoll fds in flight, a listener queued in
// its own embryo beside an epoll watching it, a thread blocked on an epoll
// fd that becomes garbage. Linux's epoll holds no reference to what it
// watches (eventpoll_release() on the file's last close), so none of this
// keeps anything alive that unix_gc() does not collect.
//
// Each case hides "witnesses" in its garbage: one end of a socket pair
// whose other end the test keeps. A witness that is released hangs up its
// peer, so the test waits (up to 20 s: Linux collects cycles from a
// workqueue, a little later) for every kept end to see POLLHUP; a leak
// never gets there. Cycles are looked for when a unix socket is released
// (unix_release_sock() -> unix_schedule_gc()), by anyone: the wait releases
// one now and then, as a busy host would. Each case runs many rounds; a hang fails by the
// test's timeout.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kRounds = 20;

// Sends `fd` over `via` (one byte of data); 0 or the errno.
int SendFd(int via, int fd) {
  return SendCmsg(via, SCM_RIGHTS, &fd, sizeof(fd)) == 1 ? 0 : errno;
}

int Watch(int ep, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.fd = fd;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

// Witnesses: Make() returns an end to bury in the garbage and keeps its
// peer; AllGone() waits for every kept peer to see its witness go.
class Witnesses {
 public:
  ~Witnesses() {
    for (int fd : kept_) close(fd);
  }
  int Make() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return -1;
    kept_.push_back(sv[1]);
    return sv[0];
  }
  bool AllGone() {
    const int64_t deadline = NowMs() + 20000;
    for (int fd : kept_) {
      for (;;) {
        pollfd p{fd, POLLIN, 0};
        int64_t left = deadline - NowMs();
        if (left <= 0) return false;
        int poke[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, poke) == 0) {
          close(poke[0]);
          close(poke[1]);
        }
        if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) == 1 && (p.revents & POLLHUP)) {
          break;
        }
      }
    }
    return true;
  }

 private:
  std::vector<int> kept_;
};

// Runs `round` kRounds times; each returns 0 or a failure code.
void ExpectCollected(const std::function<int(Witnesses&)>& round) {
  for (int i = 0; i < kRounds; ++i) {
    Witnesses w;
    int r = round(w);
    ASSERT_EQ(r, 0) << "round " << i;
    ASSERT_TRUE(w.AllGone()) << "round " << i << ": garbage left alive";
  }
}

// An epoll fd queued in a socket it watches; it watches a witness too,
// which only that queue holds.
TEST(UnixGcTest, EpollQueuedInWhatItWatches) {
  ExpectCollected([](Witnesses& w) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    int ep = epoll_create1(0), x = w.Make();
    if (ep < 0 || x < 0) return 2;
    if (Watch(ep, sv[0]) != 0 || Watch(ep, sv[1]) != 0 || Watch(ep, x) != 0) return 3;
    if (SendFd(sv[1], ep) != 0 || SendFd(sv[0], ep) != 0) return 4;  // in both queues
    if (SendFd(sv[1], x) != 0) return 5;
    epoll_event out[3];
    if (epoll_wait(ep, out, 3, 0) != 3) return 6;
    for (int fd : {ep, x, sv[0], sv[1]}) close(fd);
    return 0;
  });
}

// Two sockets queued in each other (a cycle only unix_gc() ends), each
// holding an epoll fd that watches both and a witness.
TEST(UnixGcTest, CycleThroughEpoll) {
  ExpectCollected([](Witnesses& w) {
    int a[2], b[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) != 0) return 1;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, b) != 0) return 2;
    int ep = epoll_create1(0), x = w.Make(), y = w.Make();
    if (ep < 0 || x < 0 || y < 0) return 3;
    for (int fd : {a[0], a[1], b[0], b[1], x}) {
      if (Watch(ep, fd) != 0) return 4;
    }
    // a[1] holds b[0] and b[1]; b[1] holds a[0] and a[1].
    if (SendFd(a[0], b[0]) != 0 || SendFd(b[0], a[0]) != 0) return 5;
    if (SendFd(a[0], b[1]) != 0 || SendFd(b[0], a[1]) != 0) return 6;
    if (SendFd(a[0], ep) != 0 || SendFd(b[0], ep) != 0) return 7;
    if (SendFd(a[0], x) != 0 || SendFd(b[0], y) != 0) return 8;
    for (int fd : {ep, x, y, a[0], a[1], b[0], b[1]}) close(fd);
    return 0;
  });
}

// An epoll fd in flight that watches another epoll fd in flight, which
// watches the socket both are queued in, itself held by its peer's queue.
TEST(UnixGcTest, NestedEpollInFlight) {
  ExpectCollected([](Witnesses& w) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) return 1;
    int inner = epoll_create1(0), outer = epoll_create1(0), x = w.Make();
    if (inner < 0 || outer < 0 || x < 0) return 2;
    if (Watch(inner, sv[0]) != 0 || Watch(inner, x) != 0 || Watch(outer, inner) != 0) return 3;
    if (SendFd(sv[1], inner) != 0 || SendFd(sv[1], outer) != 0) return 4;
    if (SendFd(sv[0], sv[0]) != 0 || SendFd(sv[1], sv[1]) != 0) return 5;  // a cycle
    if (SendFd(sv[1], x) != 0) return 6;
    for (int fd : {inner, outer, x, sv[0], sv[1]}) close(fd);
    return 0;
  });
}

// A listener queued in its own not-yet-accepted connection, watched by an
// epoll fd queued there too, with a witness.
TEST(UnixGcTest, ListenerInItsEmbryoWithEpoll) {
  ExpectCollected([](Witnesses& w) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)) != 0) return 1;
    if (listen(l, 4) != 0) return 2;
    socklen_t al = sizeof(a);
    if (getsockname(l, reinterpret_cast<sockaddr*>(&a), &al) != 0) return 3;
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&a), al) != 0) return 4;
    int ep = epoll_create1(0), x = w.Make();
    if (ep < 0 || x < 0 || Watch(ep, l) != 0 || Watch(ep, c) != 0) return 5;
    if (SendFd(c, l) != 0 || SendFd(c, ep) != 0 || SendFd(c, x) != 0) return 6;  // into the embryo
    for (int fd : {ep, x, l, c}) close(fd);
    return 0;
  });
}

// A thread blocked in epoll_wait on an epoll fd that is closed and put in
// a garbage cycle meanwhile: its wait ends (the socket it watches became
// readable, or by its timeout), and the garbage goes.
TEST(UnixGcTest, WaiterOnCollectedEpoll) {
  ExpectCollected([](Witnesses& w) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    int ep = epoll_create1(0), x = w.Make();
    if (ep < 0 || x < 0) return 2;
    epoll_event ev{};
    ev.events = EPOLLIN;  // readable only: nothing to report yet
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) != 0 || Watch(ep, x) != 0) return 3;
    ev.events = EPOLLIN;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, x, &ev) != 0) return 3;
    struct Arg {
      int ep;
      int got = -2;
      int err = 0;
    } arg{ep};
    pthread_t th;
    if (pthread_create(
            &th, nullptr,
            [](void* p) -> void* {
              auto* a = static_cast<Arg*>(p);
              epoll_event out;
              a->got = epoll_wait(a->ep, &out, 1, 2000);
              a->err = errno;
              return nullptr;
            },
            &arg) != 0) {
      return 4;
    }
    usleep(20 * 1000);  // most likely blocked by now (else EBADF below)
    if (SendFd(sv[0], sv[0]) != 0 || SendFd(sv[1], sv[1]) != 0) return 5;  // a cycle
    if (SendFd(sv[1], ep) != 0 || SendFd(sv[1], x) != 0) return 6;  // sv[0] readable now
    for (int fd : {ep, x, sv[0], sv[1]}) close(fd);
    pthread_join(th, nullptr);
    // 1 (readable), 0 (the garbage went first: nothing left to report) or
    // EBADF (the thread came after the close); never a hang.
    if (arg.got > 1 || (arg.got < 0 && arg.err != EBADF)) return 7;
    return 0;
  });
}

}  // namespace
}  // namespace syscall_test
