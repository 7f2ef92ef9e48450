// SO_REUSEPORT over loopback, IPv4 and IPv6, TCP and UDP: the flag
// (getsockopt shows what setsockopt set), the bind rules (sockets of one
// user that all set it share an address and port, also as listeners;
// without it on either side, or for another user, EADDRINUSE:
// inet_bind_conflict(), udp_lib_lport_inuse()) and the load sharing
// between the members of a group: connections and datagrams from many
// source ports reach more than one member (reuseport_select_sock()).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Each member of a group gets a flow with probability 1/2 (two members):
// with this many flows one member gets none with probability 2^-47.
constexpr int kFlows = 48;

class ReuseportTest : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  int family() const { return std::get<0>(GetParam()); }
  int type() const { return std::get<1>(GetParam()); }
  bool v6() const { return family() == AF_INET6; }
  void SetUp() override { ArmHangGuard(30); }
  void TearDown() override { DisarmHangGuard(); }

  socklen_t Len() const { return InetAddrLen(family()); }
  sockaddr_storage Loopback(uint16_t port) const { return LoopbackAddr(family(), port); }
  static uint16_t PortOf(const sockaddr_storage& ss) {
    return reinterpret_cast<const sockaddr_in*>(&ss)->sin_port;
  }

  Fd Socket(bool reuseport) {
    Fd s(socket(family(), type() | SOCK_NONBLOCK, 0));
    EXPECT_GE(s, 0) << strerror(errno);
    int on = reuseport;
    EXPECT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0) << strerror(errno);
    return s;
  }
  // bind to loopback:`port` (0: any); 0 or errno.
  int BindTo(int fd, uint16_t port) {
    sockaddr_storage a = Loopback(port);
    return bind(fd, reinterpret_cast<sockaddr*>(&a), Len()) == 0 ? 0 : errno;
  }
  uint16_t PortOfSocket(int fd) {
    sockaddr_storage a{};
    socklen_t l = sizeof a;
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l), 0);
    return PortOf(a);
  }
  int Listen(int fd) { return type() == SOCK_STREAM ? listen(fd, kFlows) : 0; }
};

TEST_P(ReuseportTest, FlagReadsBackAsSet) {
  Fd s(socket(family(), type(), 0));
  int v = -1;
  socklen_t l = sizeof v;
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_REUSEPORT, &v, &l), 0) << strerror(errno);
  EXPECT_EQ(v, 0);
  int on = 7;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_REUSEPORT, &v, &l), 0);
  EXPECT_EQ(v, 1);
  on = 0;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_REUSEPORT, &v, &l), 0);
  EXPECT_EQ(v, 0);
}

TEST_P(ReuseportTest, MembersShareAPortOthersDoNot) {
  Fd a = Socket(true);
  ASSERT_EQ(BindTo(a, 0), 0);
  ASSERT_EQ(Listen(a), 0) << strerror(errno);
  const uint16_t port = PortOfSocket(a);
  Fd b = Socket(true);
  EXPECT_EQ(BindTo(b, port), 0);
  EXPECT_EQ(Listen(b), 0) << strerror(errno);
  Fd c = Socket(false);
  EXPECT_EQ(BindTo(c, port), EADDRINUSE);
}

// Another user's socket never joins the group (uid_eq(uid, sk_uid(sk2))).
TEST_P(ReuseportTest, AnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  Fd a = Socket(true);
  ASSERT_EQ(BindTo(a, 0), 0);
  const uint16_t port = PortOfSocket(a);
  pid_t pid = fork();
  if (pid == 0) {
    if (setresuid(65534, 65534, 65534) != 0) _exit(2);
    Fd b = Socket(true);
    _exit(BindTo(b, port) == EADDRINUSE ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// Connections (TCP) or datagrams (UDP) from many source ports reach both
// members of a group.
TEST_P(ReuseportTest, FlowsAreSharedBetweenMembers) {
  Fd m[2] = {Socket(true), Socket(true)};
  ASSERT_EQ(BindTo(m[0], 0), 0);
  const uint16_t port = PortOfSocket(m[0]);
  ASSERT_EQ(BindTo(m[1], port), 0);
  for (Fd& s : m) ASSERT_EQ(Listen(s), 0);
  std::vector<Fd> clients;
  sockaddr_storage to = Loopback(port);
  for (int i = 0; i < kFlows; ++i) {
    Fd c(socket(family(), type(), 0));
    ASSERT_GE(c, 0);
    if (type() == SOCK_STREAM) {
      ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&to), Len()), 0) << strerror(errno);
    } else {
      ASSERT_EQ(sendto(c, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), Len()), 1)
          << strerror(errno);
    }
    clients.push_back(std::move(c));
  }
  // Take every connection or datagram, counting which member had it.
  int got[2] = {0, 0};
  const int64_t deadline = NowMs() + 20000;
  while (got[0] + got[1] < kFlows && NowMs() < deadline) {
    pollfd p[2] = {{m[0], POLLIN, 0}, {m[1], POLLIN, 0}};
    ASSERT_GE(poll(p, 2, 1000), 0);
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & POLLIN)) continue;
      if (type() == SOCK_STREAM) {
        int fd = accept(m[i], nullptr, nullptr);
        if (fd >= 0) {
          close(fd);
          ++got[i];
        }
      } else {
        char b;
        if (recv(m[i], &b, 1, 0) == 1) ++got[i];
      }
    }
  }
  EXPECT_EQ(got[0] + got[1], kFlows);
  EXPECT_GT(got[0], 0);
  EXPECT_GT(got[1], 0);
}

INSTANTIATE_TEST_SUITE_P(
    All, ReuseportTest,
    ::testing::Combine(::testing::Values(AF_INET, AF_INET6),
                       ::testing::Values(SOCK_STREAM, SOCK_DGRAM)),
    [](const ::testing::TestParamInfo<std::tuple<int, int>>& i) {
      return std::string(std::get<0>(i.param) == AF_INET ? "V4" : "V6") +
             (std::get<1>(i.param) == SOCK_STREAM ? "Tcp" : "Udp");
    });

}  // namespace
}  // namespace syscall_test
