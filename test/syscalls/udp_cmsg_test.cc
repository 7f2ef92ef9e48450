// IP-level ancillary data that recvmsg returns on UDP sockets over
// loopback, IPv4 and IPv6: the receive flags IP_PKTINFO, IP_RECVTTL,
// IP_RECVTOS and RFC 3542's IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
// IPV6_RECVTCLASS (and RFC 2292's IPV6_2292PKTINFO, IPV6_2292HOPLIMIT),
// the control messages in Linux's order (ip_cmsg_recv_offset(),
// ip6_datagram_recv_{common,specific}_ctl()), an AF_INET6 socket's IPv4
// datagram, MSG_CTRUNC when the buffer is short (put_cmsg()). The send
// side is udp_cmsg_send_test.cc.
#include <arpa/inet.h>
#include <net/if.h>

#include "test/syscalls/udp_cmsg_util.h"

namespace syscall_test {
namespace {

// Nothing is asked for: no control message, and none is made up.
TEST_P(UdpCmsgTest, NoFlagsNoControlMessages) {
  ASSERT_EQ(SendWith("hello", ""), 5);
  Received r = Recv();
  EXPECT_EQ(r.data, "hello");
  EXPECT_TRUE(r.cmsgs.empty());
  EXPECT_EQ(r.flags, 0);
}

TEST_P(UdpCmsgTest, ReceiveFlagsDefaultOffAndNeedWholeInts) {
  for (int name : {IP_PKTINFO, IP_RECVTTL, IP_RECVTOS}) {
    EXPECT_EQ(GetInt(rx_, SOL_IP, name), 0);
    SetInt(rx_, SOL_IP, name, 5);
    EXPECT_EQ(GetInt(rx_, SOL_IP, name), 1);
  }
  if (!v6()) return;
  for (int name : {IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS, IPV6_2292PKTINFO,
                   IPV6_2292HOPLIMIT}) {
    EXPECT_EQ(GetInt(rx_, SOL_IPV6, name), 0) << name;
    SetInt(rx_, SOL_IPV6, name, 5);
    EXPECT_EQ(GetInt(rx_, SOL_IPV6, name), 1) << name;
    char one = 0;
    SCOPED_TRACE(name);
    EXPECT_ERRNO(EINVAL, setsockopt(rx_, SOL_IPV6, name, &one, 1));
  }
}

// The sticky values go on the wire; IPv4 IP_PKTINFO / IPv6 IPV6_PKTINFO
// say where the datagram went and on which interface, first.
TEST_P(UdpCmsgTest, ReceivedControlMessagesInLinuxOrder) {
  const unsigned lo = if_nametoindex("lo");
  ASSERT_NE(lo, 0u);
  SetInt(tx_, Lvl(), v6() ? IPV6_UNICAST_HOPS : IP_TTL, 9);
  SetInt(tx_, Lvl(), v6() ? IPV6_TCLASS : IP_TOS, 0x20);
  SetInt(rx_, Lvl(), v6() ? IPV6_RECVPKTINFO : IP_PKTINFO, 1);
  SetInt(rx_, Lvl(), v6() ? IPV6_RECVHOPLIMIT : IP_RECVTTL, 1);
  SetInt(rx_, Lvl(), v6() ? IPV6_RECVTCLASS : IP_RECVTOS, 1);
  ASSERT_EQ(SendWith("abc", ""), 3) << strerror(errno);
  Received r = Recv();
  EXPECT_EQ(r.data, "abc");
  EXPECT_EQ(r.flags, 0);
  ASSERT_EQ(r.cmsgs.size(), 3u);
  for (const Cmsg& c : r.cmsgs) EXPECT_EQ(c.level, Lvl());
  if (v6()) {
    EXPECT_EQ(r.cmsgs[0].type, IPV6_PKTINFO);
    ASSERT_EQ(r.cmsgs[0].data.size(), sizeof(in6_pktinfo));
    in6_pktinfo p;
    memcpy(&p, r.cmsgs[0].data.data(), sizeof p);
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&p.ipi6_addr));
    EXPECT_EQ(p.ipi6_ifindex, lo);
    EXPECT_EQ(r.cmsgs[1].type, IPV6_HOPLIMIT);
    EXPECT_EQ(IntOf(r.cmsgs[1]), 9);
    EXPECT_EQ(r.cmsgs[2].type, IPV6_TCLASS);
    EXPECT_EQ(IntOf(r.cmsgs[2]), 0x20);
  } else {
    EXPECT_EQ(r.cmsgs[0].type, IP_PKTINFO);
    ASSERT_EQ(r.cmsgs[0].data.size(), sizeof(in_pktinfo));
    in_pktinfo p;
    memcpy(&p, r.cmsgs[0].data.data(), sizeof p);
    EXPECT_EQ(p.ipi_addr.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(p.ipi_spec_dst.s_addr, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(unsigned(p.ipi_ifindex), lo);
    EXPECT_EQ(r.cmsgs[1].type, IP_TTL);
    EXPECT_EQ(IntOf(r.cmsgs[1]), 9);
    EXPECT_EQ(r.cmsgs[2].type, IP_TOS);  // one byte (ip_cmsg_recv_tos())
    ASSERT_EQ(r.cmsgs[2].data.size(), 1u);
    EXPECT_EQ(r.cmsgs[2].data[0], 0x20);
  }
}

// An AF_INET6 socket's IPv4 datagram: IPV6_PKTINFO with the mapped
// address, then the IPv4 control messages; IPV6_RECVHOPLIMIT says nothing
// of it (udpv6_recvmsg()).
TEST_P(UdpCmsgTest, DualStackSocketGetsIpv4ControlMessagesForIpv4) {
  if (!v6()) GTEST_SKIP() << "an AF_INET6 socket's";
  Fd rx(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t l = sizeof a;
  ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr*>(&a), &l), 0);
  SetRcvTimeoutMs(rx, 5000);
  SetInt(rx, SOL_IPV6, IPV6_RECVPKTINFO, 1);
  SetInt(rx, SOL_IPV6, IPV6_RECVHOPLIMIT, 1);
  SetInt(rx, SOL_IP, IP_RECVTTL, 1);
  Fd tx(socket(AF_INET, SOCK_DGRAM, 0));
  SetInt(tx, SOL_IP, IP_TTL, 17);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = a.sin6_port;
  ASSERT_EQ(sendto(tx, "v4", 2, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 2);
  Received r = Recv(1024, rx);
  EXPECT_EQ(r.data, "v4");
  ASSERT_EQ(r.cmsgs.size(), 2u);
  EXPECT_EQ(r.cmsgs[0].level, SOL_IPV6);
  EXPECT_EQ(r.cmsgs[0].type, IPV6_PKTINFO);
  in6_pktinfo p;
  ASSERT_EQ(r.cmsgs[0].data.size(), sizeof p);
  memcpy(&p, r.cmsgs[0].data.data(), sizeof p);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&p.ipi6_addr));
  EXPECT_EQ(p.ipi6_addr.s6_addr32[3], htonl(INADDR_LOOPBACK));
  EXPECT_EQ(r.cmsgs[1].level, SOL_IP);
  EXPECT_EQ(r.cmsgs[1].type, IP_TTL);
  EXPECT_EQ(IntOf(r.cmsgs[1]), 17);
}

TEST_P(UdpCmsgTest, Rfc2292Names) {
  if (!v6()) GTEST_SKIP() << "IPv6's";
  SetInt(rx_, SOL_IPV6, IPV6_2292PKTINFO, 1);
  SetInt(rx_, SOL_IPV6, IPV6_2292HOPLIMIT, 1);
  // As a send's control message IPV6_2292HOPLIMIT is IPV6_HOPLIMIT.
  ASSERT_EQ(SendWith("x", IntCmsg(SOL_IPV6, IPV6_2292HOPLIMIT, 4)), 1) << strerror(errno);
  Received r = Recv();
  ASSERT_EQ(r.cmsgs.size(), 2u);
  EXPECT_EQ(r.cmsgs[0].type, IPV6_2292PKTINFO);
  EXPECT_EQ(r.cmsgs[0].data.size(), sizeof(in6_pktinfo));
  EXPECT_EQ(r.cmsgs[1].type, IPV6_2292HOPLIMIT);
  EXPECT_EQ(IntOf(r.cmsgs[1]), 4);
}

// put_cmsg(): what does not fit is cut and MSG_CTRUNC says so.
TEST_P(UdpCmsgTest, ShortControlBufferSetsCtrunc) {
  SetInt(rx_, Lvl(), v6() ? IPV6_RECVHOPLIMIT : IP_RECVTTL, 1);
  SetInt(rx_, Lvl(), v6() ? IPV6_RECVTCLASS : IP_RECVTOS, 1);
  // Room for the first message only.
  ASSERT_EQ(SendWith("a", ""), 1);
  Received r = Recv(CMSG_SPACE(sizeof(int)));
  EXPECT_EQ(r.data, "a");
  EXPECT_EQ(r.flags & MSG_CTRUNC, MSG_CTRUNC);
  ASSERT_EQ(r.cmsgs.size(), 1u);
  EXPECT_EQ(r.cmsgs[0].type, v6() ? IPV6_HOPLIMIT : IP_TTL);
  // No room for a header: nothing, and MSG_CTRUNC.
  ASSERT_EQ(SendWith("b", ""), 1);
  r = Recv(sizeof(cmsghdr) - 1);
  EXPECT_EQ(r.data, "b");
  EXPECT_EQ(r.flags & MSG_CTRUNC, MSG_CTRUNC);
  EXPECT_TRUE(r.cmsgs.empty());
  // No buffer at all: the data still comes.
  ASSERT_EQ(SendWith("c", ""), 1);
  r = Recv(0);
  EXPECT_EQ(r.data, "c");
  EXPECT_TRUE(r.cmsgs.empty());
}

INSTANTIATE_TEST_SUITE_P(Families, UdpCmsgTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
