// AF_NETLINK NETLINK_ROUTE: the requests if_nameindex(3), getifaddrs(3) and
// `ip addr` make. Natively and in the sandbox the loopback interface lo has
// index 1 and 127.0.0.1/8, so the tests check structure, not the full list.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class Netlink : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    ASSERT_GE(fd_, 0) << strerror(errno);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    socklen_t len = sizeof(sa);
    ASSERT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len), 0);
    ASSERT_EQ(len, sizeof(sa));
    ASSERT_EQ(sa.nl_family, AF_NETLINK);
    port_ = sa.nl_pid;
    ASSERT_NE(port_, 0u) << "bind with nl_pid 0 assigns a port id";
  }
  void TearDown() override { close(fd_); }

  void Send(uint16_t type, uint16_t flags, uint32_t seq, const void* payload, size_t n,
            uint32_t len_override = 0) {
    std::string m(NLMSG_SPACE(n), '\0');
    nlmsghdr h{};
    h.nlmsg_len = len_override ? len_override : static_cast<uint32_t>(NLMSG_LENGTH(n));
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    memcpy(m.data(), &h, sizeof(h));
    if (n) memcpy(m.data() + NLMSG_HDRLEN, payload, n);
    sockaddr_nl to{};
    to.nl_family = AF_NETLINK;
    ASSERT_EQ(sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(m.size()))
        << strerror(errno);
  }

  // Every message up to and including NLMSG_DONE (or one non-multi reply).
  std::vector<std::string> Receive() {
    std::vector<std::string> msgs;
    for (;;) {
      char buf[32768];
      sockaddr_nl from{};
      socklen_t fl = sizeof(from);
      ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      EXPECT_GT(n, 0) << strerror(errno);
      if (n <= 0) return msgs;
      EXPECT_EQ(fl, sizeof(from));
      EXPECT_EQ(from.nl_family, AF_NETLINK);
      EXPECT_EQ(from.nl_pid, 0u) << "replies come from the kernel";
      bool more = false;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<size_t>(n));
           h = NLMSG_NEXT(h, n)) {
        msgs.emplace_back(reinterpret_cast<char*>(h), h->nlmsg_len);
        EXPECT_EQ(h->nlmsg_pid, port_);
        more = (h->nlmsg_flags & NLM_F_MULTI) && h->nlmsg_type != NLMSG_DONE;
        if (h->nlmsg_type == NLMSG_DONE) return msgs;
      }
      if (!more) return msgs;
    }
  }

  static const nlmsghdr* H(const std::string& m) {
    return reinterpret_cast<const nlmsghdr*>(m.data());
  }
  static int Error(const std::string& m) {
    EXPECT_EQ(H(m)->nlmsg_type, NLMSG_ERROR);
    return -static_cast<const nlmsgerr*>(NLMSG_DATA(H(m)))->error;
  }

  int fd_ = -1;
  uint32_t port_ = 0;
};

// The IFLA_IFNAME of an RTM_NEWLINK message.
std::string LinkName(const nlmsghdr* h) {
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  for (auto* a = IFLA_RTA(static_cast<ifinfomsg*>(NLMSG_DATA(h))); RTA_OK(a, len);
       a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) return static_cast<const char*>(RTA_DATA(a));
  }
  return "";
}

TEST_F(Netlink, LinkDumpHasLoAtIndexOne) {
  rtgenmsg g{AF_UNSPEC};
  Send(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 77, &g, sizeof(g));
  pollfd p{fd_, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  auto msgs = Receive();
  ASSERT_GE(msgs.size(), 2u);
  EXPECT_EQ(H(msgs.back())->nlmsg_type, NLMSG_DONE);
  bool lo = false;
  for (const auto& m : msgs) {
    EXPECT_EQ(H(m)->nlmsg_seq, 77u);
    EXPECT_TRUE(H(m)->nlmsg_flags & NLM_F_MULTI);
    if (H(m)->nlmsg_type != RTM_NEWLINK) continue;
    auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(H(m)));
    if (LinkName(H(m)) == "lo") {
      lo = true;
      EXPECT_EQ(ifi->ifi_index, 1);
      EXPECT_EQ(ifi->ifi_flags & (IFF_UP | IFF_LOOPBACK), IFF_UP | IFF_LOOPBACK);
    }
  }
  EXPECT_TRUE(lo);
}

TEST_F(Netlink, GetLinkByIndex) {
  ifinfomsg ifi{};
  ifi.ifi_index = 1;
  Send(RTM_GETLINK, NLM_F_REQUEST, 5, &ifi, sizeof(ifi));
  auto msgs = Receive();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(H(msgs[0])->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(H(msgs[0])->nlmsg_seq, 5u);
  EXPECT_EQ(LinkName(H(msgs[0])), "lo");

  ifi.ifi_index = 99999;
  Send(RTM_GETLINK, NLM_F_REQUEST, 6, &ifi, sizeof(ifi));
  msgs = Receive();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Error(msgs[0]), ENODEV);
  EXPECT_EQ(H(msgs[0])->nlmsg_seq, 6u);
}

TEST_F(Netlink, AddrDumpHasLoopbackV4) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  Send(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 9, &ifa, sizeof(ifa));
  bool found = false;
  for (const auto& m : Receive()) {
    if (H(m)->nlmsg_type != RTM_NEWADDR) continue;
    auto* a = static_cast<const ifaddrmsg*>(NLMSG_DATA(H(m)));
    EXPECT_EQ(a->ifa_family, AF_INET);
    int len = static_cast<int>(IFA_PAYLOAD(H(m)));
    for (auto* r = IFA_RTA(a); RTA_OK(r, len); r = RTA_NEXT(r, len)) {
      if (r->rta_type != IFA_LOCAL) continue;
      in_addr ip;
      memcpy(&ip, RTA_DATA(r), sizeof(ip));
      if (ip.s_addr == htonl(INADDR_LOOPBACK)) {
        found = true;
        EXPECT_EQ(a->ifa_index, 1u);
        EXPECT_EQ(a->ifa_prefixlen, 8);
      }
    }
  }
  EXPECT_TRUE(found);
}

// glibc's netlink requests peek with MSG_TRUNC to size their buffer.
TEST_F(Netlink, PeekTruncGivesTheFullLength) {
  rtgenmsg g{AF_UNSPEC};
  Send(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &g, sizeof(g));
  char small[8];
  ssize_t full = recv(fd_, small, sizeof(small), MSG_PEEK | MSG_TRUNC);
  ASSERT_GT(full, static_cast<ssize_t>(sizeof(small)));
  std::vector<char> buf(full);
  ASSERT_EQ(recv(fd_, buf.data(), buf.size(), 0), full);
  EXPECT_EQ(reinterpret_cast<nlmsghdr*>(buf.data())->nlmsg_seq, 1u);
  Receive();  // drain the rest of the dump
}

TEST_F(Netlink, AckAndErrors) {
  Send(NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 11, nullptr, 0);
  auto msgs = Receive();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Error(msgs[0]), 0);
  EXPECT_EQ(H(msgs[0])->nlmsg_seq, 11u);

  // A type past RTM_MAX is EOPNOTSUPP (rtnetlink_rcv_msg()).
  char zero[16] = {};
  Send(1000, NLM_F_REQUEST, 12, zero, sizeof(zero));
  msgs = Receive();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Error(msgs[0]), EOPNOTSUPP);

  // A get request too short for its ifinfomsg is EINVAL.
  Send(RTM_GETLINK, NLM_F_REQUEST, 13, zero, 2);
  msgs = Receive();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Error(msgs[0]), EINVAL);
}

TEST_F(Netlink, MalformedLengthIsIgnored) {
  char zero[4] = {};
  Send(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, zero, sizeof(zero), 4096);
  char buf[256];
  EXPECT_ERRNO(EAGAIN, recv(fd_, buf, sizeof(buf), MSG_DONTWAIT));
}

TEST(NetlinkLibc, IfNameIndexAndGetifaddrsSeeLo) {
  EXPECT_EQ(if_nametoindex("lo"), 1u);
  char name[IF_NAMESIZE];
  ASSERT_NE(if_indextoname(1, name), nullptr);
  EXPECT_STREQ(name, "lo");
  struct if_nameindex* ni = if_nameindex();
  ASSERT_NE(ni, nullptr) << strerror(errno);
  bool lo = false;
  for (auto* p = ni; p->if_index; ++p) lo |= std::string(p->if_name) == "lo" && p->if_index == 1;
  if_freenameindex(ni);
  EXPECT_TRUE(lo);

  ifaddrs* ifa = nullptr;
  ASSERT_EQ(getifaddrs(&ifa), 0) << strerror(errno);
  bool v4 = false;
  for (auto* p = ifa; p; p = p->ifa_next) {
    if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET && std::string(p->ifa_name) == "lo") {
      v4 |= reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    }
  }
  freeifaddrs(ifa);
  EXPECT_TRUE(v4);
}

TEST(NetlinkSocket, OnlyRawOrDgram) {
  EXPECT_ERRNO(ESOCKTNOSUPPORT, socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
}

}  // namespace
}  // namespace syscall_test
