// IP options of UDP (and TCP) sockets over loopback, IPv4 and IPv6: the
// sticky IP_TTL, IP_TOS, IPV6_UNICAST_HOPS and IPV6_TCLASS (ranges,
// defaults, TCP's kept ECN bits) and a sendmsg's own IP_TTL, IP_TOS,
// IP_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS, IPV6_PKTINFO (ip_cmsg_send(),
// ip6_datagram_send_ctl()), seen through the receiver's control messages
// (udp_cmsg_test.cc instantiates the suite for both files).
#include <arpa/inet.h>

#include "test/syscalls/udp_cmsg_util.h"

namespace syscall_test {
namespace {

TEST_P(UdpCmsgTest, StickyTtlAndTosDefaultsAndRanges) {
  // IP_TTL: -1 is ip_default_ttl (64); 0 and 256 are EINVAL.
  EXPECT_EQ(GetInt(tx_, SOL_IP, IP_TTL), 64);
  SetInt(tx_, SOL_IP, IP_TTL, 9);
  EXPECT_EQ(GetInt(tx_, SOL_IP, IP_TTL), 9);
  int bad = 0;
  EXPECT_ERRNO(EINVAL, setsockopt(tx_, SOL_IP, IP_TTL, &bad, sizeof bad));
  bad = 256;
  EXPECT_ERRNO(EINVAL, setsockopt(tx_, SOL_IP, IP_TTL, &bad, sizeof bad));
  SetInt(tx_, SOL_IP, IP_TTL, -1);
  EXPECT_EQ(GetInt(tx_, SOL_IP, IP_TTL), 64);
  // One byte in, and one byte out to a buffer shorter than an int.
  unsigned char b = 33;
  EXPECT_EQ(setsockopt(tx_, SOL_IP, IP_TTL, &b, 1), 0);
  unsigned char out[4] = {0, 0xee, 0xee, 0xee};
  socklen_t l = 3;
  EXPECT_EQ(getsockopt(tx_, SOL_IP, IP_TTL, out, &l), 0);
  EXPECT_EQ(l, 1u);
  EXPECT_EQ(out[0], 33);
  EXPECT_EQ(out[1], 0xee);
  EXPECT_EQ(GetInt(tx_, SOL_IP, IP_TOS), 0);
  SetInt(tx_, SOL_IP, IP_TOS, 0x2b);  // a datagram socket keeps the ECN bits asked for
  EXPECT_EQ(GetInt(tx_, SOL_IP, IP_TOS), 0x2b);
  if (!v6()) return;
  // IPV6_UNICAST_HOPS: -1..255, -1 the default (64); whole ints only.
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS), 64);
  SetInt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS, 0);
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS), 0);
  SetInt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS, -1);
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS), 64);
  for (int v : {-2, 256}) {
    EXPECT_ERRNO(EINVAL, setsockopt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v));
  }
  EXPECT_ERRNO(EINVAL, setsockopt(tx_, SOL_IPV6, IPV6_UNICAST_HOPS, &b, 1));
  // IPV6_TCLASS: -1..255, -1 is 0 (RFC 3542 6.5).
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_TCLASS), 0);
  SetInt(tx_, SOL_IPV6, IPV6_TCLASS, 0x2b);
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_TCLASS), 0x2b);
  SetInt(tx_, SOL_IPV6, IPV6_TCLASS, -1);
  EXPECT_EQ(GetInt(tx_, SOL_IPV6, IPV6_TCLASS), 0);
  for (int v : {-2, 256}) {
    EXPECT_ERRNO(EINVAL, setsockopt(tx_, SOL_IPV6, IPV6_TCLASS, &v, sizeof v));
  }
}

// A stream socket's TOS and traffic class keep their ECN bits (the
// connection's, not the user's: __ip_sock_set_tos(), do_ipv6_setsockopt()).
TEST_P(UdpCmsgTest, TcpKeepsItsEcnBits) {
  Fd s(socket(family(), SOCK_STREAM, 0));
  ASSERT_GE(s, 0);
  SetInt(s, SOL_IP, IP_TOS, 0xff);
  EXPECT_EQ(GetInt(s, SOL_IP, IP_TOS), 0xfc);
  SetInt(s, SOL_IP, IP_TTL, 7);
  EXPECT_EQ(GetInt(s, SOL_IP, IP_TTL), 7);
  if (!v6()) return;
  SetInt(s, SOL_IPV6, IPV6_TCLASS, 0xff);
  EXPECT_EQ(GetInt(s, SOL_IPV6, IPV6_TCLASS), 0xfc);
}

// A send's own TTL/hop limit and TOS/traffic class, for that datagram only.
TEST_P(UdpCmsgTest, PerSendTtlAndTos) {
  SetInt(tx_, Lvl(), v6() ? IPV6_UNICAST_HOPS : IP_TTL, 11);
  std::string c = IntCmsg(Lvl(), v6() ? IPV6_HOPLIMIT : IP_TTL, 3) +
                  IntCmsg(Lvl(), v6() ? IPV6_TCLASS : IP_TOS, 0x40);
  EXPECT_EQ(TtlTosOf(c), std::make_pair(3, 0x40));
  EXPECT_EQ(TtlTosOf(""), std::make_pair(11, 0));
  if (v6()) {
    // -1: the socket's.
    EXPECT_EQ(TtlTosOf(IntCmsg(SOL_IPV6, IPV6_HOPLIMIT, -1)), std::make_pair(11, 0));
    // The other family's messages are skipped.
    EXPECT_EQ(TtlTosOf(IntCmsg(SOL_IP, IP_TTL, 5)), std::make_pair(11, 0));
  } else {
    // IP_TOS may be one byte.
    unsigned char tos = 0x60;
    EXPECT_EQ(TtlTosOf(CmsgBytes(SOL_IP, IP_TOS, &tos, 1)), std::make_pair(11, 0x60));
    EXPECT_EQ(TtlTosOf(IntCmsg(SOL_IPV6, IPV6_HOPLIMIT, 5)), std::make_pair(11, 0));
  }
}

TEST_P(UdpCmsgTest, BadSendControlMessagesAreEinval) {
  const int ttl_name = v6() ? IPV6_HOPLIMIT : IP_TTL;
  for (int v : {v6() ? -2 : 0, 256}) {
    SCOPED_TRACE(v);
    EXPECT_ERRNO(EINVAL, SendWith("x", IntCmsg(Lvl(), ttl_name, v)));
  }
  EXPECT_ERRNO(EINVAL, SendWith("x", IntCmsg(Lvl(), v6() ? IPV6_TCLASS : IP_TOS, 256)));
  // One byte too long (CPython's testOddCmsgSize), and a type nobody knows.
  char five[5] = {};
  EXPECT_ERRNO(EINVAL, SendWith("x", CmsgBytes(Lvl(), v6() ? IPV6_TCLASS : IP_TTL, five, 5)));
  EXPECT_ERRNO(EINVAL, SendWith("x", IntCmsg(Lvl(), 12345, 1)));
  // A length past the buffer (CMSG_OK).
  std::string c = IntCmsg(Lvl(), ttl_name, 5);
  cmsghdr h;
  memcpy(&h, c.data(), sizeof h);
  h.cmsg_len = c.size() + 8;
  memcpy(c.data(), &h, sizeof h);
  EXPECT_ERRNO(EINVAL, SendWith("x", c));
  // Nothing was sent.
  SetRcvTimeoutMs(rx_, 1);
  char buf[8];
  EXPECT_ERRNO(EAGAIN, recv(rx_, buf, sizeof buf, MSG_DONTWAIT));
}

// IP_PKTINFO's ipi_spec_dst / IPV6_PKTINFO's ipi6_addr pick the source;
// one that is not ours is refused; so is an interface that does not exist.
TEST_P(UdpCmsgTest, PktinfoPicksTheSource) {
  std::string good, foreign;
  if (v6()) {
    in6_pktinfo p{};
    p.ipi6_addr = in6addr_loopback;
    good = CmsgBytes(SOL_IPV6, IPV6_PKTINFO, &p, sizeof p);
    inet_pton(AF_INET6, "2001:db8::1", &p.ipi6_addr);
    foreign = CmsgBytes(SOL_IPV6, IPV6_PKTINFO, &p, sizeof p);
  } else {
    in_pktinfo p{};
    p.ipi_spec_dst.s_addr = htonl(INADDR_LOOPBACK);
    good = CmsgBytes(SOL_IP, IP_PKTINFO, &p, sizeof p);
    p.ipi_spec_dst.s_addr = inet_addr("192.0.2.1");
    foreign = CmsgBytes(SOL_IP, IP_PKTINFO, &p, sizeof p);
  }
  ASSERT_EQ(SendWith("s", good), 1) << strerror(errno);
  Received r = Recv();
  EXPECT_EQ(r.data, "s");
  if (v6()) {
    EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(&r.from)->sin6_addr));
  } else {
    EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&r.from)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  }
  // IPv4: the output route's lookup fails (ip_route_output_key_hash_rcu()
  // finds no device with that address); IPv6: ip6_datagram_send_ctl().
  EXPECT_ERRNO(v6() ? EINVAL : ENETUNREACH, SendWith("s", foreign));
  if (v6()) {
    // An interface that does not exist.
    in6_pktinfo p{};
    p.ipi6_ifindex = 0x7fff0000;
    EXPECT_ERRNO(ENODEV, SendWith("s", CmsgBytes(SOL_IPV6, IPV6_PKTINFO, &p, sizeof p)));
  }
}

}  // namespace
}  // namespace syscall_test
