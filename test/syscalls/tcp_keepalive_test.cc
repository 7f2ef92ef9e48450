// TCP keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT) over loopback, IPv4 and IPv6: their defaults
// (net.ipv4.tcp_keepalive_*), ranges (do_tcp_setsockopt()), inheritance by
// accepted connections (sk_clone_lock()), and a connection probed every
// second by a live peer staying up. (A silent peer's reset after the
// probes: netstack tcp_test KeepaliveProbesAnIdlePeerAndResetsASilentOne.)
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class TcpKeepaliveTest : public InetTest {
 protected:
  static int Get(int fd, int level, int name) {
    int v = -1;
    socklen_t l = sizeof(v);
    EXPECT_EQ(getsockopt(fd, level, name, &v, &l), 0) << strerror(errno);
    EXPECT_EQ(l, sizeof(v));
    return v;
  }
  static int Set(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof(v));
  }
};

TEST_P(TcpKeepaliveTest, DefaultsAndRanges) {
  Fd s(socket(family(), SOCK_STREAM, 0));
  EXPECT_EQ(Get(s, SOL_SOCKET, SO_KEEPALIVE), 0);
  // The defaults are the sysctls' (a namespace of its own has them too).
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPIDLE), 7200);
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPINTVL), 75);
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPCNT), 9);
  EXPECT_EQ(Set(s, SOL_SOCKET, SO_KEEPALIVE, 5), 0);
  EXPECT_EQ(Get(s, SOL_SOCKET, SO_KEEPALIVE), 1);
  struct {
    int name, max;
  } opts[] = {{TCP_KEEPIDLE, 32767}, {TCP_KEEPINTVL, 32767}, {TCP_KEEPCNT, 127}};
  for (auto o : opts) {
    EXPECT_ERRNO(EINVAL, Set(s, IPPROTO_TCP, o.name, 0));
    EXPECT_ERRNO(EINVAL, Set(s, IPPROTO_TCP, o.name, -1));
    EXPECT_ERRNO(EINVAL, Set(s, IPPROTO_TCP, o.name, o.max + 1));
    EXPECT_EQ(Set(s, IPPROTO_TCP, o.name, o.max), 0);
    EXPECT_EQ(Get(s, IPPROTO_TCP, o.name), o.max);
    EXPECT_EQ(Set(s, IPPROTO_TCP, o.name, 1), 0);
    EXPECT_EQ(Get(s, IPPROTO_TCP, o.name), 1);
  }
  EXPECT_EQ(Set(s, SOL_SOCKET, SO_KEEPALIVE, 0), 0);
  EXPECT_EQ(Get(s, SOL_SOCKET, SO_KEEPALIVE), 0);
  // On UDP SO_KEEPALIVE is a flag (sock_valbool_flag()).
  Fd u(socket(family(), SOCK_DGRAM, 0));
  EXPECT_EQ(Set(u, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  EXPECT_EQ(Get(u, SOL_SOCKET, SO_KEEPALIVE), 1);
}

// The listener's settings are the accepted connection's.
TEST_P(TcpKeepaliveTest, AcceptedConnectionsInheritThem) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(Set(l, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  ASSERT_EQ(Set(l, IPPROTO_TCP, TCP_KEEPIDLE, 42), 0);
  ASSERT_EQ(Set(l, IPPROTO_TCP, TCP_KEEPINTVL, 7), 0);
  ASSERT_EQ(Set(l, IPPROTO_TCP, TCP_KEEPCNT, 3), 0);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, Sa(a), Len()), 0) << strerror(errno);
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s, 0) << strerror(errno);
  EXPECT_EQ(Get(s, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPIDLE), 42);
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(Get(s, IPPROTO_TCP, TCP_KEEPCNT), 3);
  EXPECT_EQ(Get(c, SOL_SOCKET, SO_KEEPALIVE), 0);
}

// Probed every second with one probe allowed: a live peer answers each
// (TCP_INFO's tcpi_last_ack_recv: an ACK arrives long after the last
// segment of the handshake, which only a probe's answer can be), so the
// connection is still there and carries data after several rounds.
TEST_P(TcpKeepaliveTest, ALivePeerKeepsTheConnection) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, Sa(a), Len()), 0) << strerror(errno);
  const auto connected = std::chrono::steady_clock::now();
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s, 0);
  ASSERT_EQ(Set(c, IPPROTO_TCP, TCP_KEEPIDLE, 1), 0);
  ASSERT_EQ(Set(c, IPPROTO_TCP, TCP_KEEPINTVL, 1), 0);
  ASSERT_EQ(Set(c, IPPROTO_TCP, TCP_KEEPCNT, 1), 0);
  ASSERT_EQ(Set(c, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  tcp_info ti{};
  socklen_t tl = sizeof(ti);
  const bool have_info = getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0;
  const int info_errno = have_info ? 0 : errno;
  int64_t acked_after_ms = 0;  // the latest ACK's time after connect()
  if (have_info) {
    // Nothing but a probe's answer comes after the handshake: wait (10 s
    // at most, for a loaded host) for an ACK 1.5 s after it.
    for (int i = 0; i < 100 && acked_after_ms < 1500; ++i) {
      usleep(100 * 1000);
      tl = sizeof(ti);
      ASSERT_EQ(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0) << ErrnoName(errno);
      const int64_t since = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - connected)
                                .count();
      acked_after_ms = since - ti.tcpi_last_ack_recv;
    }
    EXPECT_GE(acked_after_ms, 1500) << "no probe was answered";
  } else {
    sleep(3);
  }
  int err = Get(c, SOL_SOCKET, SO_ERROR);
  EXPECT_EQ(err, 0) << ErrnoName(err);
  EXPECT_EQ(PollNow(c), POLLOUT);
  ExpectByteArrives(c, s, 'k');
  // Where TCP_INFO is not served, the probes and their answers are
  // checked in //netstack:tcp_test (TcpWire.Keepalive*).
  if (!have_info) GTEST_SKIP() << "no TCP_INFO here (" << ErrnoName(info_errno) << "): probes not observed";
}

INSTANTIATE_TEST_SUITE_P(Families, TcpKeepaliveTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
