// Loopback inet sockets never block forever (issue 19): UDP receives on a
// socket shut down for reading, and TCP accept/connect/recv woken by
// shutdown(2) from another thread (ICMP errors on UDP sockets:
// udp_errqueue_test.cc). Every case runs for IPv4 and IPv6 under a hang
// guard: a hang fails, it does not stall the suite. And SIOCATMARK.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Runs `f` on another thread after `ms`.
std::thread After(int ms, std::function<void()> f) {
  return std::thread([ms, f] {
    usleep(ms * 1000);
    f();
  });
}

class InetSocketTest : public InetTest {
 protected:
  struct Conn {
    Fd listener, client, server;
  };
  Conn TcpConnection() {
    Conn c;
    sockaddr_storage a;
    c.listener = Bound(SOCK_STREAM, &a);
    EXPECT_EQ(listen(c.listener, 4), 0);
    c.client.fd = socket(family(), SOCK_STREAM, 0);
    EXPECT_EQ(connect(c.client, Sa(a), Len()), 0) << strerror(errno);
    c.server.fd = accept(c.listener, nullptr, nullptr);
    EXPECT_GE(c.server, 0);
    return c;
  }
};

// ---- UDP and shutdown(SHUT_RD) ----

// __skb_wait_for_more_packets(): a blocking receive on a datagram socket
// shut down for reading is end of file at once; a non-blocking one is
// EAGAIN (it never waits, so it never sees the shutdown).
TEST_P(InetSocketTest, UdpRecvAfterShutdownRdIsEof) {
  sockaddr_storage a;
  Fd rx = Bound(SOCK_DGRAM, &a);
  ASSERT_EQ(connect(rx, Sa(a), Len()), 0);  // to itself
  ASSERT_EQ(shutdown(rx, SHUT_RD), 0);
  EXPECT_EQ(PollNow(rx), POLLIN | POLLOUT | POLLRDHUP);
  char c;
  EXPECT_EQ(recv(rx, &c, 1, 0), 0);
  EXPECT_ERRNO(EAGAIN, recv(rx, &c, 1, MSG_DONTWAIT));  // no wait, no EOF
  EXPECT_EQ(read(rx, &c, 1), 0);
}

// inet_shutdown() on an unconnected socket says ENOTCONN but shuts it down
// all the same ("hack to wake up other listeners").
TEST_P(InetSocketTest, UdpShutdownOfUnconnectedSocketStillEndsReceives) {
  sockaddr_storage a;
  Fd rx = Bound(SOCK_DGRAM, &a);
  EXPECT_ERRNO(ENOTCONN, shutdown(rx, SHUT_RD));
  char c;
  EXPECT_EQ(recv(rx, &c, 1, 0), 0);
}

TEST_P(InetSocketTest, UdpShutdownWakesABlockedReceiver) {
  sockaddr_storage a;
  Fd rx = Bound(SOCK_DGRAM, &a);
  ASSERT_EQ(connect(rx, Sa(a), Len()), 0);
  std::thread t = After(100, [&] { shutdown(rx, SHUT_RD); });
  char c;
  EXPECT_EQ(recv(rx, &c, 1, 0), 0);
  t.join();
}

// Data queued before the shutdown is still read, then end of file.
TEST_P(InetSocketTest, UdpShutdownRdKeepsQueuedData) {
  sockaddr_storage a;
  Fd rx = Bound(SOCK_DGRAM, &a);
  ASSERT_EQ(connect(rx, Sa(a), Len()), 0);
  ASSERT_EQ(send(rx, "x", 1, 0), 1);
  ASSERT_EQ(PollFor(rx, POLLIN), POLLIN);
  ASSERT_EQ(shutdown(rx, SHUT_RD), 0);
  char c = 0;
  EXPECT_EQ(recv(rx, &c, 1, 0), 1);
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(recv(rx, &c, 1, 0), 0);
}

// ---- TCP and shutdown ----

// inet_shutdown() of a listener disconnects it: a blocked accept() wakes
// with EINVAL (inet_csk_wait_for_connect()), as does the next one.
TEST_P(InetSocketTest, TcpShutdownWakesABlockedAccept) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 4), 0);
  std::thread t = After(100, [&] { EXPECT_EQ(shutdown(l, SHUT_RDWR), 0); });
  EXPECT_ERRNO(EINVAL, accept(l, nullptr, nullptr));
  t.join();
  EXPECT_ERRNO(EINVAL, accept(l, nullptr, nullptr));
}

TEST_P(InetSocketTest, TcpShutdownWriteOfListenerDoesNotWakeAccept) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 4), 0);
  EXPECT_EQ(shutdown(l, SHUT_WR), 0);
  // Still listening: a connection arriving later is accepted.
  Fd cli(socket(family(), SOCK_STREAM, 0));
  std::thread t = After(100, [&] { connect(cli, Sa(a), Len()); });
  Fd conn(accept(l, nullptr, nullptr));
  EXPECT_GE(conn, 0) << strerror(errno);
  t.join();
}

TEST_P(InetSocketTest, TcpShutdownRdWakesABlockedRecv) {
  Conn c = TcpConnection();
  std::thread t = After(100, [&] { shutdown(c.server, SHUT_RD); });
  char ch;
  EXPECT_EQ(recv(c.server, &ch, 1, 0), 0);
  t.join();
  EXPECT_EQ(recv(c.server, &ch, 1, 0), 0);
}

TEST_P(InetSocketTest, TcpPeerShutdownWrWakesABlockedRecv) {
  Conn c = TcpConnection();
  std::thread t = After(100, [&] { shutdown(c.client, SHUT_WR); });
  char ch;
  EXPECT_EQ(recv(c.server, &ch, 1, 0), 0);
  t.join();
  EXPECT_EQ(PollNow(c.server), POLLIN | POLLOUT | POLLRDHUP);
  // The other direction still works.
  EXPECT_EQ(send(c.server, "x", 1, 0), 1);
  EXPECT_EQ(recv(c.client, &ch, 1, 0), 1);
}

TEST_P(InetSocketTest, TcpShutdownRdwrWakesABlockedRecvAndPollHangsUp) {
  Conn c = TcpConnection();
  std::thread t = After(100, [&] { shutdown(c.server, SHUT_RDWR); });
  pollfd p{c.server, POLLIN, -1};
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(p.revents & POLLIN, POLLIN);
  char ch;
  EXPECT_EQ(recv(c.server, &ch, 1, 0), 0);
  t.join();
  EXPECT_ERRNO(EPIPE, send(c.server, "x", 1, MSG_NOSIGNAL));
  // The peer reads end of file.
  EXPECT_EQ(recv(c.client, &ch, 1, 0), 0);
}

// A blocking connect() in SYN_SENT (the listener's accept queue is full,
// so its SYNs are dropped) ends when another thread shuts the socket
// down: tcp_disconnect() sets ECONNRESET.
TEST_P(InetSocketTest, TcpShutdownWakesABlockedConnect) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 0), 0);
  Fd fill(socket(family(), SOCK_STREAM, 0));  // the one connection it queues
  ASSERT_EQ(connect(fill, Sa(a), Len()), 0);
  usleep(50000);
  Fd cli(socket(family(), SOCK_STREAM, 0));
  std::thread t = After(300, [&] { shutdown(cli, SHUT_RDWR); });
  int64_t t0 = NowMs();
  int rc = connect(cli, Sa(a), Len());
  int err = errno;
  t.join();
  EXPECT_GE(NowMs() - t0, 250);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ECONNRESET) << ErrnoName(err);
}

TEST_P(InetSocketTest, TcpConnectToAClosedPortIsRefused) {
  sockaddr_storage to = Loopback(ClosedPort(SOCK_STREAM));
  Fd s(socket(family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(s, Sa(to), Len()));
  // Non-blocking: EINPROGRESS, then the refusal through SO_ERROR.
  Fd n(socket(family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  EXPECT_ERRNO(EINPROGRESS, connect(n, Sa(to), Len()));
  EXPECT_EQ(PollFor(n, POLLOUT) & (POLLOUT | POLLERR | POLLHUP), POLLOUT | POLLERR | POLLHUP);
  int err = 0;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(n, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, ECONNREFUSED);
}

// A listener closed with connections nobody accepted (inet_csk_listen_stop()):
// each is reset, so its client's next receive is ECONNRESET (its data was
// never read) and then end of file; a new connect is refused.
TEST_P(InetSocketTest, TcpListenerClosedWithPendingConnectionsResetsThem) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c1(socket(family(), SOCK_STREAM, 0)), c2(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(connect(c1, Sa(a), Len()), 0) << strerror(errno);
  ASSERT_EQ(connect(c2, Sa(a), Len()), 0) << strerror(errno);
  ASSERT_EQ(send(c1, "x", 1, 0), 1);
  l.Close();
  for (int fd : {c1.fd, c2.fd}) {
    EXPECT_EQ(PollFor(fd, POLLIN) & (POLLIN | POLLERR | POLLHUP), POLLIN | POLLERR | POLLHUP);
    char ch;
    EXPECT_ERRNO(ECONNRESET, recv(fd, &ch, 1, 0));
    EXPECT_EQ(recv(fd, &ch, 1, 0), 0);
    EXPECT_ERRNO(EPIPE, send(fd, "y", 1, MSG_NOSIGNAL));
  }
  Fd c3(socket(family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(c3, Sa(a), Len()));
}

TEST_P(InetSocketTest, TcpPeerCloseWakesABlockedRecv) {
  Conn c = TcpConnection();
  std::thread t = After(100, [&] { c.client.Close(); });
  char ch;
  EXPECT_EQ(recv(c.server, &ch, 1, 0), 0);
  t.join();
}

// A receive timeout on TCP (sock_rcvtimeo()) returns EAGAIN after it.
TEST_P(InetSocketTest, TcpRecvTimeout) {
  Conn c = TcpConnection();
  SetRcvTimeoutMs(c.server, 150);
  char ch;
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(c.server, &ch, 1, 0));
  EXPECT_GE(NowMs() - t0, 140);
  SetRcvTimeoutMs(c.listener, 150);
  t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, accept(c.listener, nullptr, nullptr));
  EXPECT_GE(NowMs() - t0, 140);
}

void OnSignal(int) {}

// sock_intr_errno(): a signal handled with SA_RESTART restarts a blocked
// receive without a timeout; with SO_RCVTIMEO it is EINTR.
TEST_P(InetSocketTest, SignalsRestartReceivesUnlessTimed) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  for (bool timed : {false, true}) {
    Conn c = TcpConnection();
    if (timed) SetRcvTimeoutMs(c.server, 5000);
    pthread_t self = pthread_self();
    std::thread t([&] {
      usleep(100000);
      pthread_kill(self, SIGUSR1);
      usleep(200000);
      send(c.client, "x", 1, 0);
    });
    char ch;
    if (timed) {
      EXPECT_ERRNO(EINTR, recv(c.server, &ch, 1, 0));
    } else {
      EXPECT_EQ(recv(c.server, &ch, 1, 0), 1);
    }
    t.join();
  }
  signal(SIGUSR1, SIG_DFL);
}

// SIOCATMARK (LTP sockioctl01): TCP answers whether the next byte is the
// urgent mark (tcp_ioctl(); none sent here: 0), also on a listener; UDP
// takes no such ioctl, and sock_do_ioctl() reads the struct ifreq it would
// hand dev_ioctl() first: EFAULT for a bad pointer, else ENOTTY.
TEST_P(InetSocketTest, SiocatmarkIsTcpOnly) {
  Conn c = TcpConnection();
  for (int fd : {int(c.client), int(c.server), int(c.listener)}) {
    int v = 7;
    EXPECT_EQ(ioctl(fd, SIOCATMARK, &v), 0) << strerror(errno);
    EXPECT_EQ(v, 0);
  }
  EXPECT_ERRNO(EFAULT, ioctl(c.client, SIOCATMARK, nullptr));
  Fd u(socket(family(), SOCK_DGRAM, 0));
  int v = 7;
  EXPECT_ERRNO(ENOTTY, ioctl(u, SIOCATMARK, &v));
  EXPECT_EQ(v, 7);
  EXPECT_ERRNO(EFAULT, ioctl(u, SIOCATMARK, nullptr));
}

INSTANTIATE_TEST_SUITE_P(Families, InetSocketTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
