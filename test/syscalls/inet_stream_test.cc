// AF_INET TCP and UDP over 127.0.0.1: the calls a server and a client make
// (bind, listen, accept, connect, send, recv, shutdown, getsockname,
// getpeername), blocking and non-blocking, poll and epoll readiness, and
// the options SO_REUSEADDR, SO_RCVBUF/SO_SNDBUF, TCP_NODELAY and FIONREAD.
// Natively this is the host's stack; in the sandbox with --network=none the
// host's stack in a private namespace, with --network=sandbox (the
// *_netstack variants) the sentry's own (netstack/).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

sockaddr_in Loopback(uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

sockaddr* Sa(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }

sockaddr_in NameOf(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  EXPECT_EQ(getsockname(fd, Sa(a), &l), 0) << ErrnoName(errno);
  EXPECT_EQ(l, sizeof a);
  return a;
}

// A listening TCP socket on 127.0.0.1 and an ephemeral port.
Fd Listener(sockaddr_in* addr, int backlog = 8, bool reuse = false) {
  Fd s(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_GE(s.fd, 0) << ErrnoName(errno);
  if (reuse) {
    int one = 1;
    EXPECT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  }
  *addr = Loopback();
  EXPECT_EQ(bind(s, Sa(*addr), sizeof *addr), 0) << ErrnoName(errno);
  EXPECT_EQ(listen(s, backlog), 0) << ErrnoName(errno);
  *addr = NameOf(s);
  return s;
}

Fd Connected(sockaddr_in addr) {
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(connect(c, Sa(addr), sizeof addr), 0) << ErrnoName(errno);
  return c;
}

std::string RecvAll(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) break;
    got += size_t(r);
  }
  out.resize(got);
  return out;
}

TEST(InetStream, TcpServerAndClientBothWays) {
  sockaddr_in addr;
  Fd l = Listener(&addr);
  ASSERT_NE(addr.sin_port, 0);
  Fd c = Connected(addr);
  sockaddr_in peer{};
  socklen_t pl = sizeof peer;
  Fd s(accept(l, Sa(peer), &pl));
  ASSERT_GE(s.fd, 0) << ErrnoName(errno);
  sockaddr_in cn = NameOf(c);
  EXPECT_EQ(peer.sin_port, cn.sin_port);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  sockaddr_in cp{};
  socklen_t cpl = sizeof cp;
  ASSERT_EQ(getpeername(c, Sa(cp), &cpl), 0);
  EXPECT_EQ(cp.sin_port, addr.sin_port);
  ASSERT_EQ(send(c, "ping", 4, 0), 4);
  EXPECT_EQ(RecvAll(s, 4), "ping");
  ASSERT_EQ(write(s, "pong!", 5), 5);
  EXPECT_EQ(RecvAll(c, 5), "pong!");
  // Half-close: the client is done sending, the server still answers.
  ASSERT_EQ(shutdown(c, SHUT_WR), 0);
  char b[8];
  EXPECT_EQ(recv(s, b, sizeof b, 0), 0);
  ASSERT_EQ(send(s, "late", 4, 0), 4);
  EXPECT_EQ(RecvAll(c, 4), "late");
  EXPECT_EQ(send(c, "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  s.Close();
  EXPECT_EQ(recv(c, b, sizeof b, 0), 0);
}

TEST(InetStream, UnconnectedCallsFailLikeLinux) {
  Fd s(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in p{};
  socklen_t pl = sizeof p;
  EXPECT_EQ(getpeername(s, Sa(p), &pl), -1);
  EXPECT_EQ(errno, ENOTCONN);
  char b[4];
  EXPECT_EQ(recv(s, b, sizeof b, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(shutdown(s, SHUT_RDWR), -1);
  EXPECT_EQ(errno, ENOTCONN);
  sockaddr_in a = Loopback();
  a.sin_family = AF_UNIX;
  EXPECT_EQ(bind(s, Sa(a), sizeof a), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  a = Loopback();
  EXPECT_EQ(bind(s, Sa(a), sizeof a - 1), -1);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(bind(s, Sa(a), sizeof a), 0);
  EXPECT_EQ(bind(s, Sa(a), sizeof a), -1);  // already bound
  EXPECT_EQ(errno, EINVAL);
  // A fresh TCP socket polls writable and hung up (tcp_poll(), TCP_CLOSE).
  pollfd pf{s, POLLIN | POLLOUT, 0};
  ASSERT_EQ(poll(&pf, 1, 0), 1);
  EXPECT_EQ(pf.revents & (POLLOUT | POLLHUP), POLLOUT | POLLHUP);
}

TEST(InetStream, ConnectToAClosedPortIsRefused) {
  sockaddr_in addr;
  {
    Fd l = Listener(&addr);
  }  // closed: nothing listens there now
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(connect(c, Sa(addr), sizeof addr), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  Fd n(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  int r = connect(n, Sa(addr), sizeof addr);
  if (r == -1) {
    ASSERT_EQ(errno, EINPROGRESS);
    pollfd pf{n, POLLOUT, 0};
    ASSERT_EQ(poll(&pf, 1, 5000), 1);
    EXPECT_TRUE(pf.revents & POLLERR);
    int err = 0;
    socklen_t el = sizeof err;
    ASSERT_EQ(getsockopt(n, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    EXPECT_EQ(err, ECONNREFUSED);
  } else {
    ADD_FAILURE() << "non-blocking connect to a closed port succeeded";
  }
}

TEST(InetStream, NonBlockingConnectAcceptAndPoll) {
  sockaddr_in addr;
  Fd l = Listener(&addr);
  ASSERT_EQ(fcntl(l, F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(accept(l, nullptr, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
  Fd c(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  int r = connect(c, Sa(addr), sizeof addr);
  ASSERT_TRUE(r == 0 || errno == EINPROGRESS) << ErrnoName(errno);
  pollfd pf{c, POLLOUT, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(pf.revents & (POLLOUT | POLLERR | POLLHUP), POLLOUT);
  int err = -1;
  socklen_t el = sizeof err;
  ASSERT_EQ(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  EXPECT_EQ(err, 0);
  pollfd lp{l, POLLIN, 0};
  ASSERT_EQ(poll(&lp, 1, 5000), 1);
  Fd s(accept4(l, nullptr, nullptr, SOCK_NONBLOCK));
  ASSERT_GE(s.fd, 0) << ErrnoName(errno);
  EXPECT_TRUE(fcntl(s, F_GETFL) & O_NONBLOCK);
  char b[16];
  EXPECT_EQ(recv(s, b, sizeof b, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  // epoll sees the data arrive.
  Fd ep(epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = s;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 0), 0) << "events " << ev.events;
  ASSERT_EQ(send(c, "abc", 3, 0), 3);
  ASSERT_EQ(epoll_wait(ep, &ev, 1, 5000), 1);
  EXPECT_TRUE(ev.events & EPOLLIN);
  int avail = -1;
  ASSERT_EQ(ioctl(s, FIONREAD, &avail), 0);
  EXPECT_EQ(avail, 3);
  EXPECT_EQ(recv(s, b, sizeof b, 0), 3);
  EXPECT_EQ(epoll_wait(ep, &ev, 1, 0), 0) << "events " << ev.events;
}

TEST(InetStream, BlockingAcceptAndRecvWaitForThePeer) {
  sockaddr_in addr;
  Fd l = Listener(&addr);
  std::thread client([addr] {
    usleep(50000);
    Fd c = Connected(addr);
    usleep(50000);
    send(c, "later", 5, 0);
    usleep(50000);
  });
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s.fd, 0) << ErrnoName(errno);
  char b[8];
  EXPECT_EQ(recv(s, b, sizeof b, MSG_WAITALL), 0 + 5);
  EXPECT_EQ(std::string(b, 5), "later");
  client.join();
}

TEST(InetStream, BulkTransferIsIntact) {
  sockaddr_in addr;
  Fd l = Listener(&addr);
  Fd c = Connected(addr);
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s.fd, 0);
  std::string data(4 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 131 + (i >> 12));
  std::thread tx([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(c, data.data() + off, data.size() - off, 0);
      if (n <= 0) break;
      off += size_t(n);
    }
    shutdown(c, SHUT_WR);
  });
  std::string got = RecvAll(s, data.size());
  tx.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  char b;
  EXPECT_EQ(recv(s, &b, 1, 0), 0);
}

TEST(InetStream, Options) {
  Fd s(socket(AF_INET, SOCK_STREAM, 0));
  int v = -1;
  socklen_t vl = sizeof v;
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
  EXPECT_EQ(v, SOCK_STREAM);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
  EXPECT_EQ(v, 0);
  int one = 1;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  ASSERT_EQ(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  ASSERT_EQ(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  // SO_RCVBUF/SO_SNDBUF: Linux stores twice what was asked (socket(7)).
  int want = 65536;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &want, sizeof want), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
  EXPECT_EQ(v, 2 * want);
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &want, sizeof want), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
  EXPECT_EQ(v, 2 * want);
  int tiny = 1;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
  EXPECT_EQ(v, 2304);  // SOCK_MIN_RCVBUF
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(getsockopt(u, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
  EXPECT_EQ(v, SOCK_DGRAM);
  EXPECT_EQ(setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), -1);
}

// An option at a level the socket's protocol does not own. AF_INET hands it
// to ip_getsockopt(), which answers EOPNOTSUPP for any level but SOL_IP;
// AF_INET6's ipv6_getsockopt() answers ENOPROTOOPT; setsockopt is
// ENOPROTOOPT on both (ip_setsockopt(), ipv6_setsockopt()). Issue 17: the
// sandbox answered a UDP socket's TCP_NODELAY read with ENOPROTOOPT.
TEST(InetStream, OptionsOfAnotherProtocolsLevel) {
  struct Case {
    int family, type, level, name;
    int get_errno;  // AF_INET6's is ENOPROTOOPT, set's is ENOPROTOOPT
  };
  const Case cases[] = {
      {AF_INET, SOCK_DGRAM, IPPROTO_TCP, TCP_NODELAY, EOPNOTSUPP},
      {AF_INET, SOCK_DGRAM, IPPROTO_IPV6, IPV6_V6ONLY, EOPNOTSUPP},
      {AF_INET, SOCK_STREAM, IPPROTO_IPV6, IPV6_V6ONLY, EOPNOTSUPP},
      {AF_INET, SOCK_STREAM, SOL_UDP, UDP_CORK, EOPNOTSUPP},
      {AF_INET6, SOCK_DGRAM, IPPROTO_TCP, TCP_NODELAY, ENOPROTOOPT},
      {AF_INET6, SOCK_STREAM, SOL_UDP, UDP_CORK, ENOPROTOOPT},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "family " << c.family << " type " << c.type << " level "
                                    << c.level << " option " << c.name);
    Fd s(socket(c.family, c.type, 0));
    ASSERT_GE(s.fd, 0) << ErrnoName(errno);
    int v = -1;
    socklen_t vl = sizeof v;
    EXPECT_ERRNO(c.get_errno, getsockopt(s, c.level, c.name, &v, &vl));
    int one = 1;
    EXPECT_ERRNO(ENOPROTOOPT, setsockopt(s, c.level, c.name, &one, sizeof one));
  }
}

TEST(InetStream, ReuseAddrLetsAServerRestartBesideTimeWait) {
  sockaddr_in addr;
  uint16_t port;
  {
    Fd l = Listener(&addr, 8, /*reuse=*/true);
    port = ntohs(addr.sin_port);
    Fd c = Connected(addr);
    Fd s(accept(l, nullptr, nullptr));
    ASSERT_GE(s.fd, 0);
    s.Close();  // the server closes first: its side goes to TIME_WAIT
    char b;
    EXPECT_EQ(recv(c, &b, 1, 0), 0);
  }
  usleep(20000);
  Fd plain(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(bind(plain, Sa(a), sizeof a), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  Fd again(socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  ASSERT_EQ(setsockopt(again, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  EXPECT_EQ(bind(again, Sa(a), sizeof a), 0) << ErrnoName(errno);
  EXPECT_EQ(listen(again, 1), 0) << ErrnoName(errno);
}

TEST(InetStream, UdpDatagrams) {
  Fd a(socket(AF_INET, SOCK_DGRAM, 0)), b(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in aa = Loopback(), ba = Loopback();
  ASSERT_EQ(bind(a, Sa(aa), sizeof aa), 0);
  ASSERT_EQ(bind(b, Sa(ba), sizeof ba), 0);
  aa = NameOf(a);
  ba = NameOf(b);
  ASSERT_EQ(sendto(a, "hello", 5, 0, Sa(ba), sizeof ba), 5);
  ASSERT_EQ(sendto(a, "x", 1, 0, Sa(ba), sizeof ba), 1);
  pollfd pf{b, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  int avail = -1;
  ASSERT_EQ(ioctl(b, FIONREAD, &avail), 0);
  EXPECT_EQ(avail, 5);  // the next datagram, not the queue
  char buf[16];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  // A short buffer truncates the datagram; MSG_TRUNC in msg_flags.
  iovec iov{buf, 3};
  msghdr mh{};
  mh.msg_name = &from;
  mh.msg_namelen = fl;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  EXPECT_EQ(recvmsg(b, &mh, 0), 3);
  EXPECT_TRUE(mh.msg_flags & MSG_TRUNC);
  EXPECT_EQ(from.sin_port, aa.sin_port);
  EXPECT_EQ(recvfrom(b, buf, sizeof buf, 0, Sa(from), &fl), 1);
  EXPECT_EQ(recv(b, buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // Connected: send() without an address, and only the peer is heard.
  ASSERT_EQ(connect(b, Sa(aa), sizeof aa), 0);
  ASSERT_EQ(send(b, "back", 4, 0), 4);
  EXPECT_EQ(recv(a, buf, sizeof buf, 0), 4);
  Fd other(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(other, "stranger", 8, 0, Sa(ba), sizeof ba), 8);
  ASSERT_EQ(sendto(a, "friend", 6, 0, Sa(ba), sizeof ba), 6);
  EXPECT_EQ(recv(b, buf, sizeof buf, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "friend");
}

}  // namespace
}  // namespace syscall_test
