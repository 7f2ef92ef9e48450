// Readiness of unix sockets through poll(2) and epoll(7) (issue 19): an
// epoll registration made before connect() or listen() sees the events
// after them (event loops such as Node's and asyncio's register a socket
// before connecting it), and a datagram socket whose peer disconnected
// with our messages unread polls POLLERR without a hangup
// (unix_dgram_disconnected()).
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr uint32_t kAll = EPOLLIN | EPOLLOUT | EPOLLRDHUP;

// The events `ep` reports for its one registration within `ms` (0: none).
uint32_t EpollEvents(int ep, int ms = 0) {
  epoll_event e{};
  int n = epoll_wait(ep, &e, 1, ms);
  return n == 1 ? e.events : 0;
}

Fd EpollOf(int fd, uint32_t events) {
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event e{};
  e.events = events;
  EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0) << strerror(errno);
  return ep;
}

struct Listener {
  Fd fd;
  sockaddr_un addr;
  socklen_t len;
};

Listener Listen(int type) {
  Listener l;
  l.fd.fd = socket(AF_UNIX, type, 0);
  std::tie(l.addr, l.len) = AbstractAddr(UniqueName("poll"));
  EXPECT_EQ(bind(l.fd, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
  EXPECT_EQ(listen(l.fd, 4), 0);
  return l;
}

class UnixPollTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ArmHangGuard(20); }
  void TearDown() override { DisarmHangGuard(); }
};

// unix_poll()/unix_dgram_poll(): unconnected is POLLOUT|POLLHUP; once
// connected the same registration reports the connection's state.
TEST_P(UnixPollTest, EpollRegisteredBeforeConnectSeesTheConnection) {
  Listener l = Listen(GetParam());
  Fd c(socket(AF_UNIX, GetParam(), 0));
  Fd ep = EpollOf(c, kAll);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT | EPOLLHUP);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT);
  Fd s(accept(l.fd, nullptr, nullptr));
  ASSERT_GE(s, 0);
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep), EPOLLIN | EPOLLOUT);
  s.Close();
  EXPECT_EQ(EpollEvents(ep), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP);
}

// The waiter is already in epoll_wait when another thread connects. (Edge
// triggered: an unconnected socket polls POLLHUP, reported once.)
TEST_P(UnixPollTest, EpollWaiterForInputWakesAfterConnect) {
  Listener l = Listen(GetParam());
  Fd c(socket(AF_UNIX, GetParam(), 0));
  Fd ep = EpollOf(c, EPOLLIN | EPOLLET);
  EXPECT_EQ(EpollEvents(ep), EPOLLHUP);
  std::thread t([&] {
    usleep(100000);
    connect(c, reinterpret_cast<sockaddr*>(&l.addr), l.len);
    int s = accept(l.fd, nullptr, nullptr);
    send(s, "x", 1, 0);
    close(s);
  });
  EXPECT_EQ(EpollEvents(ep, 5000) & EPOLLIN, EPOLLIN);
  t.join();
}

TEST_P(UnixPollTest, EdgeTriggeredRegistrationBeforeConnectSeesData) {
  Listener l = Listen(GetParam());
  Fd c(socket(AF_UNIX, GetParam() | SOCK_NONBLOCK, 0));
  Fd ep = EpollOf(c, EPOLLIN | EPOLLET);
  EXPECT_EQ(EpollEvents(ep), EPOLLHUP);  // unconnected
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
  Fd s(accept(l.fd, nullptr, nullptr));
  ASSERT_EQ(send(s, "a", 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep), EPOLLIN);
  EXPECT_EQ(EpollEvents(ep), 0u);  // one edge
  ASSERT_EQ(send(s, "b", 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep), EPOLLIN);
}

// A registration made before bind() and listen() sees connections.
TEST_P(UnixPollTest, EpollRegisteredBeforeListenSeesConnections) {
  Fd l(socket(AF_UNIX, GetParam(), 0));
  Fd ep = EpollOf(l, kAll);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT | EPOLLHUP);
  auto [addr, len] = AbstractAddr(UniqueName("listen"));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 4), 0);
  EXPECT_EQ(EpollEvents(ep), 0u);  // a listener is not writable
  Fd c(socket(AF_UNIX, GetParam(), 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(EpollEvents(ep), EPOLLIN);
  Fd s(accept(l, nullptr, nullptr));
  EXPECT_EQ(EpollEvents(ep), 0u);
}

// A non-blocking connect's usual dance: register, connect, wait writable.
TEST_P(UnixPollTest, NonblockingConnectThenWaitForOutput) {
  Listener l = Listen(GetParam());
  Fd c(socket(AF_UNIX, GetParam() | SOCK_NONBLOCK, 0));
  Fd ep = EpollOf(c, EPOLLOUT | EPOLLET);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT | EPOLLHUP);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
  Fd s(accept(l.fd, nullptr, nullptr));
  // Room made in the connection's send buffer is the next edge.
  ASSERT_EQ(send(c, "x", 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep), 0u);
  char ch;
  ASSERT_EQ(recv(s, &ch, 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep, 1000), EPOLLOUT);
}

// Two sockets registered before connecting to each other through a
// listener, in one epoll set, both see traffic.
TEST_P(UnixPollTest, BothEndsRegisteredEarly) {
  Listener l = Listen(GetParam());
  Fd c(socket(AF_UNIX, GetParam(), 0));
  Fd ep(epoll_create1(0));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u32 = 1;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, c, &e), 0);
  e.data.u32 = 2;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, l.fd, &e), 0);
  epoll_event out[2];
  ASSERT_EQ(epoll_wait(ep, out, 2, 0), 1);  // c: unconnected, EPOLLHUP
  EXPECT_EQ(out[0].data.u32, 1u);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
  ASSERT_EQ(epoll_wait(ep, out, 2, 1000), 1);
  EXPECT_EQ(out[0].data.u32, 2u);
  Fd s(accept(l.fd, nullptr, nullptr));
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  ASSERT_EQ(epoll_wait(ep, out, 2, 1000), 1);
  EXPECT_EQ(out[0].data.u32, 1u);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
}

INSTANTIATE_TEST_SUITE_P(Types, UnixPollTest, ::testing::Values(SOCK_STREAM, SOCK_SEQPACKET),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SOCK_STREAM ? "Stream" : "Seqpacket");
                         });

// ---- Datagram sockets: POLLERR alone ----

// connect(AF_UNSPEC): dissolves a datagram socket's association.
int Disconnect(int fd) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  return connect(fd, &unspec, sizeof(unspec));
}

// unix_dgram_disconnected(): a socket that disconnects (or reconnects)
// with messages from its peer unread drops them, and the peer, still
// connected to it, gets ECONNRESET: POLLERR without POLLHUP, until SO_ERROR
// or a call takes the error.
TEST(UnixDgramPollTest, DisconnectWithUnreadMessagesResetsThePeer) {
  auto [a, b] = MakePair(SOCK_DGRAM);
  Fd ep = EpollOf(b, EPOLLIN | EPOLLOUT);
  ASSERT_EQ(send(b, "x", 1, 0), 1);
  ASSERT_EQ(Disconnect(a), 0);
  EXPECT_EQ(PollNow(b), POLLOUT | POLLERR);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT | EPOLLERR);
  char c;
  EXPECT_ERRNO(EAGAIN, recv(a, &c, 1, MSG_DONTWAIT));  // dropped
  int err = 0;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(b, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_EQ(PollNow(b), POLLOUT);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT);
  // Again, the error taken by a receive this time.
  ASSERT_EQ(send(b, "y", 1, 0), 1);
  Fd other(socket(AF_UNIX, SOCK_DGRAM, 0));
  auto [addr, len] = AbstractAddr(UniqueName("dgram"));
  ASSERT_EQ(bind(other, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(connect(a, reinterpret_cast<sockaddr*>(&addr), len), 0);  // a reconnect
  EXPECT_EQ(PollNow(b), POLLOUT);  // a was not connected to b any more
  auto [p, q] = MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(q, "z", 1, 0), 1);
  ASSERT_EQ(connect(p, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(PollNow(q), POLLOUT | POLLERR);
  EXPECT_ERRNO(ECONNRESET, recv(q, &c, 1, MSG_DONTWAIT));
  EXPECT_EQ(PollNow(q), POLLOUT);
}

// The reset wakes a poller waiting for input, and comes on top of a
// shutdown.
TEST(UnixDgramPollTest, ResetWakesPollersAndFollowsAShutdown) {
  auto [a, b] = MakePair(SOCK_DGRAM);
  Fd ep = EpollOf(b, EPOLLIN | EPOLLET);
  ASSERT_EQ(send(b, "x", 1, 0), 1);
  ASSERT_EQ(shutdown(b, SHUT_RDWR), 0);
  EXPECT_EQ(PollNow(b), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  EXPECT_EQ(EpollEvents(ep), EPOLLIN | EPOLLHUP);
  std::thread t([&] {
    usleep(100000);
    Disconnect(a);
  });
  pollfd p{b, 0, 0};  // errors and hangups only; the hangup is there
  EXPECT_EQ(poll(&p, 1, 0), 1);
  EXPECT_EQ(EpollEvents(ep, 5000), EPOLLIN | EPOLLHUP | EPOLLERR);
  t.join();
  EXPECT_EQ(PollNow(b), POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR);
  char c;
  EXPECT_ERRNO(ECONNRESET, recv(b, &c, 1, 0));
  EXPECT_EQ(PollNow(b), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
}

TEST(UnixDgramPollTest, PollerForInputWakesOnAReset) {
  auto [a, b] = MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(b, "x", 1, 0), 1);
  std::thread t([&] {
    usleep(100000);
    Disconnect(a);
  });
  pollfd p{b, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(p.revents, POLLERR);
  t.join();
  // A second reset, after the first was taken.
  int err;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(b, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  auto [addr, len] = AbstractAddr(UniqueName("back"));
  ASSERT_EQ(bind(b, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(connect(a, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(send(b, "y", 1, 0), 1);
  Fd ep = EpollOf(b, EPOLLIN | EPOLLOUT | EPOLLET);
  EXPECT_EQ(EpollEvents(ep), EPOLLOUT);
  ASSERT_EQ(Disconnect(a), 0);
  EXPECT_EQ(EpollEvents(ep) & EPOLLERR, EPOLLERR);
  EXPECT_EQ(PollNow(b), POLLOUT | POLLERR);
}

// Without unread messages nothing is reported; a peer that is not
// connected back is not told either.
TEST(UnixDgramPollTest, DisconnectWithoutUnreadMessagesIsQuiet) {
  auto [a, b] = MakePair(SOCK_DGRAM);
  ASSERT_EQ(Disconnect(a), 0);
  EXPECT_EQ(PollNow(b), POLLOUT);
  int err = 0;
  socklen_t l = sizeof(err);
  ASSERT_EQ(getsockopt(b, SOL_SOCKET, SO_ERROR, &err, &l), 0);
  EXPECT_EQ(err, 0);
}

// The peer went away: the send that finds it gone is ECONNREFUSED, and
// our own unread messages go with the association.
TEST(UnixDgramPollTest, SendToAClosedPeerDropsOurUnreadMessages) {
  auto [a, b] = MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(b, "x", 1, 0), 1);
  b.Close();
  EXPECT_EQ(PollNow(a), POLLIN | POLLOUT);
  EXPECT_ERRNO(ECONNREFUSED, send(a, "y", 1, 0));
  char c;
  EXPECT_ERRNO(EAGAIN, recv(a, &c, 1, MSG_DONTWAIT));
  EXPECT_EQ(PollNow(a), POLLOUT);
}

}  // namespace
}  // namespace syscall_test
