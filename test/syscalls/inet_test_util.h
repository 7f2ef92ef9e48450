// A gtest fixture for inet socket cases that run once per family (AF_INET
// and AF_INET6, over loopback) under a hang guard, and the helpers they
// share: loopback addresses, bound sockets, closed ports, UDP sockets that
// an ICMP port unreachable has hit.
//
//   class MyTest : public InetTest {};
//   TEST_P(MyTest, Case) { Fd s = ConnectedToClosedPort(); ... }
//   INSTANTIATE_TEST_SUITE_P(Families, MyTest, InetFamilies(), InetFamilyName);
#ifndef SEEDVISOR_TEST_SYSCALLS_INET_TEST_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_INET_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {

// Waits up to 2 s for `fd` to poll any of `events`; returns what it polled.
inline short PollFor(int fd, short events) {
  pollfd p{fd, events, 0};
  EXPECT_GE(poll(&p, 1, 2000), 0);
  return p.revents;
}

inline void SetRcvTimeoutMs(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

// `family`'s loopback address with `port` (network order), and the length
// of that family's sockaddr.
inline sockaddr_storage LoopbackAddr(int family, uint16_t port = 0) {
  sockaddr_storage ss{};
  if (family == AF_INET6) {
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
inline socklen_t InetAddrLen(int family) {
  return family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

class InetTest : public ::testing::TestWithParam<int> {
 protected:
  int family() const { return GetParam(); }
  bool v6() const { return family() == AF_INET6; }

  void SetUp() override { ArmHangGuard(20); }
  void TearDown() override { DisarmHangGuard(); }

  // The loopback address with `port` (network order).
  sockaddr_storage Loopback(uint16_t port = 0) const { return LoopbackAddr(family(), port); }
  socklen_t Len() const { return InetAddrLen(family()); }
  static sockaddr* Sa(sockaddr_storage& ss) { return reinterpret_cast<sockaddr*>(&ss); }
  static uint16_t PortOf(const sockaddr_storage& ss) {
    return reinterpret_cast<const sockaddr_in*>(&ss)->sin_port;  // same offset in v6
  }

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

  // One byte sent on `from` arrives on `to`.
  static void ExpectByteArrives(int from, int to, char b) {
    ASSERT_EQ(send(from, &b, 1, 0), 1) << strerror(errno);
    char got = 0;
    ASSERT_EQ(recv(to, &got, 1, 0), 1) << strerror(errno);
    EXPECT_EQ(got, b);
  }

  // A loopback port that nothing listens on (bound once, then closed).
  uint16_t ClosedPort(int type) {
    sockaddr_storage a;
    Fd s = Bound(type, &a);
    return PortOf(a);
  }

  // IP_RECVERR (AF_INET) or IPV6_RECVERR (AF_INET6) set to `on`.
  void SetRecvErr(int fd, int on) {
    EXPECT_EQ(setsockopt(fd, v6() ? SOL_IPV6 : SOL_IP, v6() ? IPV6_RECVERR : IP_RECVERR, &on,
                         sizeof(on)),
              0)
        << strerror(errno);
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
    SetRecvErr(s, 1);
    EXPECT_EQ(send(s, "x", 1, 0), 1);
    EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
    return s;
  }
};

inline auto InetFamilies() { return ::testing::Values(AF_INET, AF_INET6); }
inline std::string InetFamilyName(const ::testing::TestParamInfo<int>& i) {
  return i.param == AF_INET ? "V4" : "V6";
}

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_INET_TEST_UTIL_H_
