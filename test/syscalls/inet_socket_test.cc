// Loopback inet sockets never block forever (issue 19): UDP receives on a
// socket shut down for reading, ICMP port-unreachable errors on connected
// UDP sockets (SO_ERROR, IP_RECVERR/IPV6_RECVERR and the error queue), and
// TCP accept/connect/recv woken by shutdown(2) from another thread. Every
// case runs for IPv4 and IPv6 under an alarm: a hang fails, it does not
// stall the suite.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Waits up to 2 s for `fd` to poll any of `events`; returns what it polled.
short PollFor(int fd, short events) {
  pollfd p{fd, events, 0};
  EXPECT_GE(poll(&p, 1, 2000), 0);
  return p.revents;
}

void SetRcvTimeoutMs(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

// Runs `f` on another thread after `ms`.
std::thread After(int ms, std::function<void()> f) {
  return std::thread([ms, f] {
    usleep(ms * 1000);
    f();
  });
}

class InetSocketTest : public ::testing::TestWithParam<int> {
 protected:
  int family() const { return GetParam(); }
  bool v6() const { return family() == AF_INET6; }

  void SetUp() override {
    signal(SIGALRM, SIG_DFL);
    alarm(20);
  }
  void TearDown() override { alarm(0); }

  // The loopback address with `port` (network order).
  sockaddr_storage Loopback(uint16_t port = 0) const {
    sockaddr_storage ss{};
    if (v6()) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      a->sin6_port = port;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a->sin_port = port;
    }
    return ss;
  }
  socklen_t Len() const { return v6() ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  static sockaddr* Sa(sockaddr_storage& ss) { return reinterpret_cast<sockaddr*>(&ss); }

  // A socket of `type` bound to loopback; its address in `*addr`.
  Fd Bound(int type, sockaddr_storage* addr) {
    Fd s(socket(family(), type, 0));
    EXPECT_GE(s, 0) << strerror(errno);
    *addr = Loopback();
    socklen_t l = Len();
    EXPECT_EQ(bind(s, Sa(*addr), l), 0) << strerror(errno);
    EXPECT_EQ(getsockname(s, Sa(*addr), &l), 0);
    return s;
  }

  // A loopback port that nothing listens on (bound once, then closed).
  uint16_t ClosedPort(int type) {
    sockaddr_storage a;
    Fd s = Bound(type, &a);
    return reinterpret_cast<sockaddr_in*>(&a)->sin_port;  // same offset in v6
  }

  // A UDP socket connected to a closed loopback port.
  Fd ConnectedToClosedPort() {
    sockaddr_storage to = Loopback(ClosedPort(SOCK_DGRAM));
    Fd s(socket(family(), SOCK_DGRAM, 0));
    EXPECT_EQ(connect(s, Sa(to), Len()), 0) << strerror(errno);
    return s;
  }

  // The same with IP_RECVERR/IPV6_RECVERR on, once a send was refused.
  Fd WithQueuedIcmpError() {
    Fd s = ConnectedToClosedPort();
    int one = 1;
    EXPECT_EQ(setsockopt(s, v6() ? SOL_IPV6 : SOL_IP, v6() ? IPV6_RECVERR : IP_RECVERR, &one,
                         sizeof(one)),
              0);
    EXPECT_EQ(send(s, "x", 1, 0), 1);
    EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
    return s;
  }

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

// ---- UDP and ICMP port unreachable ----

// A connected UDP socket learns of the ICMP error (__udp4_lib_err(),
// __udp6_lib_err()): POLLERR, then the next receive (or SO_ERROR) says
// ECONNREFUSED once; after that a receive blocks again, until its timeout.
TEST_P(InetSocketTest, UdpPortUnreachableIsEconnrefusedOnce) {
  Fd s = ConnectedToClosedPort();
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  char c;
  EXPECT_ERRNO(ECONNREFUSED, recv(s, &c, 1, 0));
  EXPECT_EQ(PollNow(s), POLLOUT);
  SetRcvTimeoutMs(s, 100);
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, 0));
  EXPECT_GE(NowMs() - t0, 90);
}

TEST_P(InetSocketTest, UdpPortUnreachableViaSoError) {
  Fd s = ConnectedToClosedPort();
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  int err = 0;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, ECONNREFUSED);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, 0);
  // A send after the error was taken goes out (and fails the same way).
  EXPECT_EQ(send(s, "y", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  EXPECT_ERRNO(ECONNREFUSED, send(s, "z", 1, 0));  // sock_alloc_send_pskb()
}

// MSG_ERRQUEUE never waits (ip_recv_error()): EAGAIN on an empty queue,
// even on a blocking socket.
TEST_P(InetSocketTest, ErrqueueReadNeverBlocks) {
  Fd s(socket(family(), SOCK_DGRAM, 0));
  MsgBuf m;
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
  Conn c = TcpConnection();
  EXPECT_ERRNO(EAGAIN, recvmsg(c.client, &m.h, MSG_ERRQUEUE));
}

// IP_RECVERR/IPV6_RECVERR: the ICMP error is queued with its origin, type
// and code; it keeps POLLERR up until it is read with MSG_ERRQUEUE, while
// a plain receive that finds only it waits for data (and is woken by it).
TEST_P(InetSocketTest, UdpRecvErrQueuesTheIcmpError) {
  Fd s = WithQueuedIcmpError();
  char c;
  EXPECT_ERRNO(ECONNREFUSED, recv(s, &c, 1, 0));  // sk_err first
  EXPECT_EQ(PollNow(s), POLLOUT | POLLERR);       // the queued error
  // A blocking receive waits for data: woken by a datagram from the port
  // we are connected to.
  sockaddr_storage peer;
  socklen_t pl = sizeof(peer);
  ASSERT_EQ(getpeername(s, Sa(peer), &pl), 0);
  sockaddr_storage self;
  socklen_t sl = sizeof(self);
  ASSERT_EQ(getsockname(s, Sa(self), &sl), 0);
  Fd from(socket(family(), SOCK_DGRAM, 0));
  int reuse = 1;
  ASSERT_EQ(setsockopt(from, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)), 0);
  ASSERT_EQ(bind(from, Sa(peer), pl), 0) << strerror(errno);
  std::thread t = After(100, [&] { sendto(from, "d", 1, 0, Sa(self), sl); });
  int64_t t0 = NowMs();
  EXPECT_EQ(recv(s, &c, 1, 0), 1);
  EXPECT_GE(NowMs() - t0, 90);
  EXPECT_EQ(c, 'd');
  t.join();
  // The error itself, from the error queue.
  MsgBuf m;
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 1);  // the datagram that failed
  EXPECT_EQ(m.data[0], 'x');
  EXPECT_EQ(m.h.msg_flags & MSG_ERRQUEUE, MSG_ERRQUEUE);
  cmsghdr* cm = CMSG_FIRSTHDR(&m.h);
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(cm->cmsg_level, v6() ? SOL_IPV6 : SOL_IP);
  EXPECT_EQ(cm->cmsg_type, v6() ? IPV6_RECVERR : IP_RECVERR);
  sock_extended_err ee;
  memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
  EXPECT_EQ(ee.ee_errno, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(ee.ee_origin, v6() ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP);
  EXPECT_EQ(ee.ee_type, v6() ? 1 : 3);  // destination unreachable
  EXPECT_EQ(ee.ee_code, v6() ? 4 : 3);  // port unreachable
  EXPECT_EQ(PollNow(s), POLLOUT);
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
}

// With the error queued and nothing else, a timed receive runs to its
// timeout (it is not an endless stream of EAGAINs or an instant return).
TEST_P(InetSocketTest, UdpRecvErrTimedReceiveRunsToItsTimeout) {
  Fd s = WithQueuedIcmpError();
  int err = 0;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, ECONNREFUSED);
  SetRcvTimeoutMs(s, 200);
  char c;
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, 0));
  EXPECT_GE(NowMs() - t0, 190);
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, MSG_DONTWAIT));
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

INSTANTIATE_TEST_SUITE_P(Families, InetSocketTest, ::testing::Values(AF_INET, AF_INET6),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == AF_INET ? "V4" : "V6");
                         });

}  // namespace
}  // namespace syscall_test
