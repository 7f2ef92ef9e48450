// The errors of socket calls that LTP checks (socket01, socketpair01,
// getsockname01, accept03, connect01, sockioctl01), in Linux's order:
// socket(2)'s protocol lookup before the privilege check, socketpair(2)
// making its sockets (their errors) before inet refuses pairs,
// move_addr_to_user()'s EFAULT, O_PATH files as EBADF, a blocking
// connect(2) that leaves the socket connected (EISCONN next) or, refused,
// unconnected (the next connect checks the address family), and ifreq
// buffers read before the privilege check. (sockioctl01's SIOCATMARK with
// a bad buffer is not here: the sentry's host filter refuses SIOCATMARK.)
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(SocketErrnoTest, RawWithoutProtocolIsEprotonosupport) {
  // inet_create(): no raw protocol matches 0, before CAP_NET_RAW counts.
  EXPECT_ERRNO(EPROTONOSUPPORT, socket(AF_INET, SOCK_RAW, 0));
  EXPECT_ERRNO(EPROTONOSUPPORT, socket(AF_INET6, SOCK_RAW, 0));
  EXPECT_ERRNO(EPROTONOSUPPORT, socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
  EXPECT_ERRNO(EINVAL, socket(AF_INET, 75, 0));
}

TEST(SocketErrnoTest, InetSocketpairErrorsOfItsSocketsFirst) {
  int sv[2];
  EXPECT_ERRNO(EINVAL, socketpair(AF_INET, 75, 0, sv));
  EXPECT_ERRNO(EPROTONOSUPPORT, socketpair(AF_INET, SOCK_RAW, 0, sv));
  EXPECT_ERRNO(EPROTONOSUPPORT, socketpair(AF_INET, SOCK_DGRAM, IPPROTO_TCP, sv));
  EXPECT_ERRNO(EPROTONOSUPPORT, socketpair(AF_INET, SOCK_STREAM, IPPROTO_ICMP, sv));
  EXPECT_ERRNO(EOPNOTSUPP, socketpair(AF_INET, SOCK_STREAM, 0, sv));
  EXPECT_ERRNO(EOPNOTSUPP, socketpair(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, sv));
}

TEST(SocketErrnoTest, GetsocknameBadBufferIsEfault) {
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(s.get(), 0) << ErrnoName(errno);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0) << ErrnoName(errno);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(getsockname(s.get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);
  EXPECT_ERRNO(EFAULT, syscall(SYS_getsockname, s.get(), nullptr, &len));
  EXPECT_ERRNO(EFAULT, syscall(SYS_getsockname, s.get(), &sin, nullptr));
  // A zero length writes no address: nothing to fault on.
  len = 0;
  EXPECT_EQ(syscall(SYS_getsockname, s.get(), nullptr, &len), 0) << ErrnoName(errno);
  EXPECT_EQ(len, sizeof(sin));
  ASSERT_EQ(connect(s.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0)
      << ErrnoName(errno);
  len = sizeof(sin);
  EXPECT_ERRNO(EFAULT, syscall(SYS_getpeername, s.get(), nullptr, &len));
}

TEST(SocketErrnoTest, OpathFileIsEbadf) {
  TempDir dir;
  FileDescriptor p(open(dir.path().c_str(), O_PATH));
  ASSERT_GE(p.get(), 0) << ErrnoName(errno);
  EXPECT_ERRNO(EBADF, accept(p.get(), nullptr, nullptr));
  sockaddr_in sin{};
  socklen_t len = sizeof(sin);
  EXPECT_ERRNO(EBADF, getsockname(p.get(), reinterpret_cast<sockaddr*>(&sin), &len));
  EXPECT_ERRNO(EBADF, send(p.get(), "x", 1, 0));
  // A file that is open for I/O but no socket stays ENOTSOCK.
  FileDescriptor d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d.get(), 0);
  EXPECT_ERRNO(ENOTSOCK, accept(d.get(), nullptr, nullptr));
}

TEST(SocketErrnoTest, ConnectStateAfterBlockingConnect) {
  FileDescriptor server(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(server.get(), 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(server.get(), 4), 0);
  socklen_t len = sizeof(sin);
  ASSERT_EQ(getsockname(server.get(), reinterpret_cast<sockaddr*>(&sin), &len), 0);

  FileDescriptor c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(c.get(), 0);
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0)
      << ErrnoName(errno);
  EXPECT_ERRNO(EISCONN, connect(c.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)));
  // Also once the peer has gone (CLOSE_WAIT is still connected).
  FileDescriptor peer(accept(server.get(), nullptr, nullptr));
  ASSERT_GE(peer.get(), 0);
  peer.reset();
  EXPECT_ERRNO(EISCONN, connect(c.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)));

  // A port with a bound socket that does not listen refuses; the refused
  // socket is unconnected again, so the next connect looks at its address.
  FileDescriptor closed(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in dead{};
  dead.sin_family = AF_INET;
  dead.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(closed.get(), reinterpret_cast<sockaddr*>(&dead), sizeof(dead)), 0);
  len = sizeof(dead);
  ASSERT_EQ(getsockname(closed.get(), reinterpret_cast<sockaddr*>(&dead), &len), 0);
  FileDescriptor r(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(r.get(), 0);
  EXPECT_ERRNO(ECONNREFUSED, connect(r.get(), reinterpret_cast<sockaddr*>(&dead), sizeof(dead)));
  sockaddr_in odd = sin;
  odd.sin_family = 47;
  EXPECT_ERRNO(EAFNOSUPPORT, connect(r.get(), reinterpret_cast<sockaddr*>(&odd), sizeof(odd)));
  // And it may connect again.
  EXPECT_EQ(connect(r.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0)
      << ErrnoName(errno);
}

TEST(SocketErrnoTest, IoctlBadBufferIsEfault) {
  FileDescriptor udp(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(udp.get(), 0);
  // The ifreq is read before the privilege check.
  EXPECT_ERRNO(EFAULT, ioctl(udp.get(), SIOCSIFFLAGS, nullptr));
  EXPECT_ERRNO(EFAULT, ioctl(udp.get(), SIOCGIFFLAGS, nullptr));
}

}  // namespace
}  // namespace syscall_test
