// ICMP echo "ping sockets": socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) and
// socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) over loopback (icmp(7),
// net/ipv4/ping.c): who may make one (net.ipv4.ping_group_range), the echo
// identifier as the socket's port, the checksum the kernel fills in, the
// replies (ICMP header and payload, from port 0) and the errors.
//
// Natively the host's range may let nobody in (the kernel's default "1 0"):
// the test then moves into a network namespace of its own and opens the
// range there. In the sandbox the range lets every group by default.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr char kRangePath[] = "/proc/sys/net/ipv4/ping_group_range";

bool ReadRange(long* lo, long* hi) {
  std::string r = ReadFile(kRangePath);
  return sscanf(r.c_str(), "%ld\t%ld", lo, hi) == 2;
}

bool RangeLetsUsIn() {
  long lo, hi;
  if (!ReadRange(&lo, &hi)) return false;
  gid_t g = getegid();
  return long(g) >= lo && long(g) <= hi;
}

bool WriteRange(const std::string& v) { return WriteFile(kRangePath, v); }

// A network namespace of our own with lo up and the range open, when the
// one we are in lets us make no ping socket (the host's "1 0").
class PingEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (RangeLetsUsIn()) return;
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "ping sockets need a range that lets us in: "
                                        << strerror(errno);
    Fd s(socket(AF_INET, SOCK_DGRAM, 0));
    ifreq ifr{};
    strcpy(ifr.ifr_name, "lo");
    ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &ifr), 0) << strerror(errno);
    ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP);
    ASSERT_EQ(ioctl(s, SIOCSIFFLAGS, &ifr), 0) << strerror(errno);
    ASSERT_TRUE(WriteRange("0 2147483647")) << strerror(errno);
  }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PingEnvironment);

// The Internet checksum of `data` over an initial partial sum.
uint16_t Checksum(const unsigned char* data, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t(data[i]) << 8 | data[i + 1];
  if (n & 1) sum += uint32_t(data[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

class PingTest : public InetTest {
 protected:
  int proto() const { return v6() ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}; }
  unsigned char request_type() const { return v6() ? 128 : 8; }
  unsigned char reply_type() const { return v6() ? 129 : 0; }

  Fd PingSocket() {
    Fd s(socket(family(), SOCK_DGRAM, proto()));
    EXPECT_GE(s, 0) << strerror(errno);
    return s;
  }

  // An echo request: identifier 0x1234 and a wrong checksum, which the
  // kernel replaces, then `seq` and `data`.
  std::string Request(uint16_t seq, const std::string& data) const {
    std::string m(8, '\0');
    m[0] = char(request_type());
    m[2] = char(0xbe);
    m[3] = char(0xef);
    m[4] = 0x12;
    m[5] = 0x34;
    m[6] = char(seq >> 8);
    m[7] = char(seq);
    return m + data;
  }

  // Whether the reply `m` carries a correct checksum (ICMPv6's covers the
  // ::1 -> ::1 pseudo-header).
  bool ChecksumOk(const std::string& m) const {
    auto* p = reinterpret_cast<const unsigned char*>(m.data());
    uint32_t sum = 0;
    // ::1 twice, the length, the next header.
    if (v6()) sum = 1 + 1 + uint32_t(m.size()) + IPPROTO_ICMPV6;
    return Checksum(p, m.size(), sum) == 0;
  }

  // The socket's identifier, as getsockname() gives it (network order).
  uint16_t Id(int s) {
    sockaddr_storage a{};
    socklen_t l = sizeof a;
    EXPECT_EQ(getsockname(s, Sa(a), &l), 0) << strerror(errno);
    return PortOf(a);
  }

  // Receives one reply on `s` and checks its header; its payload.
  std::string Reply(int s, uint16_t id, uint16_t seq) {
    EXPECT_NE(PollFor(s, POLLIN) & POLLIN, 0);
    char buf[256];
    sockaddr_storage from{};
    socklen_t l = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, Sa(from), &l);
    EXPECT_GE(n, 8) << strerror(errno);
    if (n < 8) return "";
    std::string m(buf, size_t(n));
    EXPECT_EQ(uint8_t(m[0]), reply_type());
    EXPECT_EQ(m[1], 0);
    EXPECT_EQ(memcmp(&m[4], &id, 2), 0) << "the reply carries the socket's identifier";
    EXPECT_EQ(uint8_t(m[6]) << 8 | uint8_t(m[7]), seq);
    EXPECT_TRUE(ChecksumOk(m));
    EXPECT_EQ(l, Len());
    EXPECT_EQ(PortOf(from), 0) << "replies come from port 0";
    sockaddr_storage lo = Loopback();
    EXPECT_EQ(memcmp(&from, &lo, Len()), 0);
    return m.substr(8);
  }
};

TEST_P(PingTest, MadeAsSockDgramOfItsFamilysIcmp) {
  Fd s = PingSocket();
  int v = 0;
  socklen_t l = sizeof v;
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l), 0);
  EXPECT_EQ(v, SOCK_DGRAM);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l), 0);
  EXPECT_EQ(v, proto());
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l), 0);
  EXPECT_EQ(v, family());
  if (v6()) {  // ping_init_sock(): an ICMPv6 socket is IPv6 only
    ASSERT_EQ(getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l), 0);
    EXPECT_EQ(v, 1);
  }
  // The other family's ICMP is no protocol of this one.
  EXPECT_EQ(socket(family(), SOCK_DGRAM, v6() ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6}), -1);
  EXPECT_EQ(errno, EPROTONOSUPPORT);
  // Unbound: no identifier yet; a fresh socket may send.
  EXPECT_EQ(Id(s), 0);
  EXPECT_EQ(PollFor(s, POLLOUT), POLLOUT);
}

TEST_P(PingTest, EchoToLoopbackGetsTheKernelsIdentifierAndChecksum) {
  Fd s = PingSocket();
  sockaddr_storage to = Loopback(htons(77));  // the port of a destination is ignored
  std::string req = Request(5, "hello");
  ASSERT_EQ(sendto(s, req.data(), req.size(), 0, Sa(to), Len()), ssize_t(req.size()))
      << strerror(errno);
  uint16_t id = Id(s);
  EXPECT_NE(id, 0) << "sending bound the socket to an identifier";
  EXPECT_EQ(Reply(s, id, 5), "hello");
  // Only the reply arrived (not our request, which loopback also carried).
  char b;
  EXPECT_EQ(recv(s, &b, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_P(PingTest, BoundIdentifierAndConnectedSend) {
  Fd s = PingSocket();
  sockaddr_storage a = Loopback(htons(4321));
  ASSERT_EQ(bind(s, Sa(a), Len()), 0) << strerror(errno);
  EXPECT_EQ(Id(s), htons(4321));
  ASSERT_EQ(connect(s, Sa(a), Len()), 0) << strerror(errno);
  std::string req = Request(9, "conn");
  ASSERT_EQ(send(s, req.data(), req.size(), 0), ssize_t(req.size())) << strerror(errno);
  EXPECT_EQ(Reply(s, htons(4321), 9), "conn");
}

TEST_P(PingTest, RepliesGoToTheirIdentifierOnly) {
  Fd a = PingSocket(), b = PingSocket();
  sockaddr_storage to = Loopback();
  std::string req = Request(1, "for a");
  ASSERT_EQ(sendto(a, req.data(), req.size(), 0, Sa(to), Len()), ssize_t(req.size()));
  ASSERT_EQ(sendto(b, req.data(), 8, 0, Sa(to), Len()), 8);
  EXPECT_EQ(Reply(a, Id(a), 1), "for a");
  EXPECT_EQ(Reply(b, Id(b), 1), "");
  char c;
  EXPECT_EQ(recv(a, &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(recv(b, &c, 1, MSG_DONTWAIT), -1);
}

TEST_P(PingTest, WhatIsNoEchoRequestIsRefused) {
  Fd s = PingSocket();
  sockaddr_storage to = Loopback();
  std::string req = Request(1, "x");
  std::string wrong = req;
  wrong[0] = char(v6() ? 8 : 13);  // not this family's echo request
  EXPECT_EQ(sendto(s, wrong.data(), wrong.size(), 0, Sa(to), Len()), -1);
  EXPECT_EQ(errno, EINVAL);
  wrong = req;
  wrong[1] = 1;  // a code
  EXPECT_EQ(sendto(s, wrong.data(), wrong.size(), 0, Sa(to), Len()), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(sendto(s, req.data(), 7, 0, Sa(to), Len()), -1);  // shorter than a header
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(send(s, req.data(), req.size(), 0), -1);
  EXPECT_EQ(errno, EDESTADDRREQ);
  // Shorter than a whole sockaddr_in or sockaddr_in6.
  EXPECT_EQ(sendto(s, req.data(), req.size(), 0, Sa(to), Len() - 1), -1);
  EXPECT_EQ(errno, EINVAL);
  if (v6()) {
    // ping_v6_sendmsg(): never to an IPv4-mapped address.
    sockaddr_in6 mapped{};
    mapped.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    EXPECT_EQ(sendto(s, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&mapped),
                     sizeof mapped),
              -1);
    EXPECT_EQ(errno, EINVAL);
  } else {
    sockaddr_in6 six{};
    six.sin6_family = AF_INET6;
    EXPECT_EQ(sendto(s, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&six), sizeof six),
              -1);
    EXPECT_EQ(errno, EAFNOSUPPORT);
  }
  // Nothing went out: nothing comes back.
  EXPECT_EQ(poll(nullptr, 0, 50), 0);
  char c;
  EXPECT_EQ(recv(s, &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_P(PingTest, BindRules) {
  Fd s = PingSocket();
  sockaddr_storage a = Loopback();
  // Shorter than a sockaddr_in, or than SIN6_LEN_RFC2133 (24).
  EXPECT_EQ(bind(s, Sa(a), v6() ? 23 : 15), -1);
  EXPECT_EQ(errno, EINVAL);
  // Not a local address.
  sockaddr_storage far = Loopback();
  if (v6()) {
    inet_pton(AF_INET6, "2001:db8::1", &reinterpret_cast<sockaddr_in6*>(&far)->sin6_addr);
  } else {
    reinterpret_cast<sockaddr_in*>(&far)->sin_addr.s_addr = htonl(0x0a000001);
  }
  EXPECT_EQ(bind(s, Sa(far), Len()), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  ASSERT_EQ(bind(s, Sa(a), Len()), 0) << strerror(errno);  // identifier 0: one is picked
  EXPECT_NE(Id(s), 0);
  EXPECT_EQ(bind(s, Sa(a), Len()), -1);
  EXPECT_EQ(errno, EINVAL);
}

// inet_create(): ping sockets start with SO_REUSEADDR on (their inetsw
// entry's INET_PROTOSW_REUSE), so ping_get_port() lets them share an
// identifier; one that turned it off shares with none, whatever its family
// (IPv4 and IPv6 ping sockets share one table), and none with it.
TEST_P(PingTest, SocketsShareAnIdentifierUnlessOneTurnedReuseOff) {
  Fd a = PingSocket();
  int v = 0;
  socklen_t vl = sizeof v;
  ASSERT_EQ(getsockopt(a, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  sockaddr_storage any = Loopback();
  ASSERT_EQ(bind(a, Sa(any), Len()), 0) << strerror(errno);
  uint16_t id = Id(a);
  sockaddr_storage same = Loopback(id);
  Fd b = PingSocket();
  EXPECT_EQ(bind(b, Sa(same), Len()), 0) << strerror(errno);
  int zero = 0;
  Fd c = PingSocket();
  ASSERT_EQ(setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero), 0);
  EXPECT_EQ(bind(c, Sa(same), Len()), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  // The other family's ping socket.
  const int other = v6() ? AF_INET : AF_INET6;
  sockaddr_storage oa{};
  socklen_t ol;
  if (v6()) {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&oa);
    a4->sin_family = AF_INET;
    a4->sin_port = id;
    a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ol = sizeof(sockaddr_in);
  } else {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&oa);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = id;
    a6->sin6_addr = in6addr_loopback;
    ol = sizeof(sockaddr_in6);
  }
  const int other_proto = v6() ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
  Fd d(socket(other, SOCK_DGRAM, other_proto));
  ASSERT_GE(d, 0) << strerror(errno);
  ASSERT_EQ(setsockopt(d, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero), 0);
  EXPECT_EQ(bind(d, Sa(oa), ol), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  Fd e(socket(other, SOCK_DGRAM, other_proto));
  EXPECT_EQ(bind(e, Sa(oa), ol), 0) << strerror(errno);
  // Alone with the identifier, a socket without SO_REUSEADDR shuts others out.
  a = Fd();
  b = Fd();
  e = Fd();
  ASSERT_EQ(bind(c, Sa(same), Len()), 0) << strerror(errno);
  Fd f = PingSocket();
  EXPECT_EQ(bind(f, Sa(same), Len()), -1);
  EXPECT_EQ(errno, EADDRINUSE);
}

// ping_lookup() takes the first socket of the identifier's hash chain, and
// ping_get_port() puts a socket at its head: of sockets that share an
// identifier the last bound gets the replies, also to what another one
// sent.
TEST_P(PingTest, ASharedIdentifiersRepliesGoToTheLastBound) {
  Fd a = PingSocket(), b = PingSocket();
  sockaddr_storage any = Loopback();
  ASSERT_EQ(bind(a, Sa(any), Len()), 0) << strerror(errno);
  uint16_t id = Id(a);
  sockaddr_storage same = Loopback(id);
  ASSERT_EQ(bind(b, Sa(same), Len()), 0) << strerror(errno);
  sockaddr_storage to = Loopback();
  std::string req = Request(3, "from a");
  ASSERT_EQ(sendto(a, req.data(), req.size(), 0, Sa(to), Len()), ssize_t(req.size()));
  EXPECT_EQ(Reply(b, id, 3), "from a");
  char c;
  EXPECT_EQ(recv(a, &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // Without `b` they go to `a` again.
  b = Fd();
  ASSERT_EQ(sendto(a, req.data(), req.size(), 0, Sa(to), Len()), ssize_t(req.size()));
  EXPECT_EQ(Reply(a, id, 3), "from a");
}

// ping_get_port() with identifier 0 (bind, or the first send): the next
// identifier after the last one it picked that no socket holds.
TEST_P(PingTest, AnIdentifierThePickerGivesIsNoneInUse) {
  Fd a = PingSocket();
  sockaddr_storage any = Loopback();
  ASSERT_EQ(bind(a, Sa(any), Len()), 0) << strerror(errno);
  uint16_t first = ntohs(Id(a));
  // The next few identifiers, bound explicitly.
  std::vector<Fd> held;
  std::vector<uint16_t> ids = {first};
  for (int i = 1; i <= 3; ++i) {
    uint16_t id = uint16_t(first + i);
    if (id == 0) continue;
    Fd s = PingSocket();
    sockaddr_storage at = Loopback(htons(id));
    ASSERT_EQ(bind(s, Sa(at), Len()), 0) << id << ": " << strerror(errno);
    held.push_back(std::move(s));
    ids.push_back(id);
  }
  Fd b = PingSocket();
  ASSERT_EQ(bind(b, Sa(any), Len()), 0) << strerror(errno);
  Fd c = PingSocket();
  sockaddr_storage to = Loopback();
  std::string req = Request(1, "");
  ASSERT_EQ(sendto(c, req.data(), req.size(), 0, Sa(to), Len()), ssize_t(req.size()));
  for (int s : {int(b), int(c)}) {
    uint16_t got = ntohs(Id(s));
    EXPECT_NE(got, 0);
    for (uint16_t id : ids) EXPECT_NE(got, id) << "picked an identifier in use";
    ids.push_back(got);
  }
}

TEST_P(PingTest, FionreadIsNoIoctlOfPingSockets) {
  // ping_prot has no ioctl: sock_do_ioctl() answers ENOTTY.
  Fd s = PingSocket();
  int n = 0;
  EXPECT_EQ(ioctl(s, FIONREAD, &n), -1);
  EXPECT_EQ(errno, ENOTTY);
}

INSTANTIATE_TEST_SUITE_P(Families, PingTest, InetFamilies(), InetFamilyName);

// ---- broadcast and multicast addresses (IPv4) ----

sockaddr_in In4(const char* ip, uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr* Sa4(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }

// An echo request with identifier `id` and a correct checksum (a raw
// socket sends it as written).
std::string EchoRequest(uint16_t id) {
  std::string m(8, '\0');
  m[0] = 8;
  m[4] = char(id >> 8);
  m[5] = char(id);
  uint16_t sum = Checksum(reinterpret_cast<const unsigned char*>(m.data()), m.size());
  m[2] = char(sum >> 8);
  m[3] = char(sum);
  return m;
}

// What a raw ICMP socket needs: CAP_NET_RAW, and in the sandbox --net-raw
// (the sandboxed variants run with it).
Fd RawIcmp() {
  Fd s(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  EXPECT_GE(s, 0) << strerror(errno);
  return s;
}

// udp_sendmsg(), ping_v4_sendmsg(), raw_sendmsg() and
// __ip4_datagram_connect(): a route to a broadcast address (here lo's
// 127.255.255.255, a "broadcast" route of table local) needs SO_BROADCAST,
// EACCES without it.
TEST(Broadcast, SendingOrConnectingToABroadcastAddressNeedsSoBroadcast) {
  struct Kind {
    const char* name;
    int type, proto;
  };
  for (Kind k : {Kind{"udp", SOCK_DGRAM, 0}, Kind{"ping", SOCK_DGRAM, IPPROTO_ICMP},
                 Kind{"raw", SOCK_RAW, IPPROTO_ICMP}}) {
    SCOPED_TRACE(k.name);
    Fd s(socket(AF_INET, k.type, k.proto));
    ASSERT_GE(s, 0) << strerror(errno);
    sockaddr_in to = In4("127.255.255.255", k.proto ? 0 : 9);
    std::string m = k.proto ? EchoRequest(0x4242) : "x";
    EXPECT_EQ(sendto(s, m.data(), m.size(), 0, Sa4(to), sizeof to), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(connect(s, Sa4(to), sizeof to), -1);
    EXPECT_EQ(errno, EACCES);
    int one = 1;
    ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one), 0);
    EXPECT_EQ(sendto(s, m.data(), m.size(), 0, Sa4(to), sizeof to), ssize_t(m.size()))
        << strerror(errno);
    EXPECT_EQ(connect(s, Sa4(to), sizeof to), 0) << strerror(errno);
    // A unicast address needs no flag.
    Fd u(socket(AF_INET, k.type, k.proto));
    sockaddr_in lo = In4("127.0.0.1", k.proto ? 0 : 9);
    EXPECT_EQ(sendto(u, m.data(), m.size(), 0, Sa4(lo), sizeof lo), ssize_t(m.size()))
        << strerror(errno);
  }
}

// ping_check_bind_addr(): never a multicast or broadcast address.
TEST(Broadcast, PingSocketsBindNoBroadcastOrMulticastAddress) {
  for (const char* ip : {"127.255.255.255", "255.255.255.255", "224.0.0.1"}) {
    Fd s(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    ASSERT_GE(s, 0) << strerror(errno);
    sockaddr_in a = In4(ip);
    EXPECT_EQ(bind(s, Sa4(a), sizeof a), -1) << ip;
    EXPECT_EQ(errno, EADDRNOTAVAIL) << ip;
  }
}

// raw_bind() and inet_bind() take a multicast or broadcast address (what
// is sent there is received); what the socket sends then comes from the
// route's source address ("use device": inet_saddr 0).
TEST(Broadcast, RawAndUdpSocketsBindBroadcastAndMulticastAddresses) {
  for (const char* ip : {"127.255.255.255", "224.0.0.1"}) {
    SCOPED_TRACE(ip);
    Fd r = RawIcmp();
    sockaddr_in a = In4(ip);
    EXPECT_EQ(bind(r, Sa4(a), sizeof a), 0) << strerror(errno);
    sockaddr_in got{};
    socklen_t l = sizeof got;
    ASSERT_EQ(getsockname(r, Sa4(got), &l), 0);
    EXPECT_EQ(got.sin_addr.s_addr, a.sin_addr.s_addr);
    Fd u(socket(AF_INET, SOCK_DGRAM, 0));
    EXPECT_EQ(bind(u, Sa4(a), sizeof a), 0) << strerror(errno);
  }
  // A raw socket bound to lo's broadcast address sends from 127.0.0.1 (an
  // unbound raw socket sees the request arrive) and receives only what is
  // sent to 127.255.255.255.
  Fd all = RawIcmp();
  Fd r = RawIcmp();
  sockaddr_in bcast = In4("127.255.255.255");
  ASSERT_EQ(bind(r, Sa4(bcast), sizeof bcast), 0) << strerror(errno);
  sockaddr_in lo = In4("127.0.0.1");
  std::string req = EchoRequest(0x5eed);
  ASSERT_EQ(sendto(r, req.data(), req.size(), 0, Sa4(lo), sizeof lo), ssize_t(req.size()))
      << strerror(errno);
  bool seen = false;
  for (int i = 0; i < 8 && !seen; ++i) {
    if (!(PollFor(all, POLLIN) & POLLIN)) break;
    unsigned char b[256];
    ssize_t n = recv(all, b, sizeof b, MSG_DONTWAIT);
    ASSERT_GE(n, 28) << strerror(errno);
    if (b[20] != 8 || b[24] != 0x5e || b[25] != 0xed) continue;  // not our request
    seen = true;
    EXPECT_EQ(memcmp(&b[12], &lo.sin_addr, 4), 0) << "the source is the route's";
    EXPECT_EQ(memcmp(&b[16], &lo.sin_addr, 4), 0);
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(poll(nullptr, 0, 50), 0);
  char c;
  EXPECT_EQ(recv(r, &c, 1, MSG_DONTWAIT), -1) << "nothing went to 127.255.255.255";
  EXPECT_EQ(errno, EAGAIN);
  // UDP the same way: from 127.0.0.1.
  Fd rx(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in rxa = In4("127.0.0.1");
  ASSERT_EQ(bind(rx, Sa4(rxa), sizeof rxa), 0);
  socklen_t l = sizeof rxa;
  ASSERT_EQ(getsockname(rx, Sa4(rxa), &l), 0);
  Fd tx(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(tx, Sa4(bcast), sizeof bcast), 0) << strerror(errno);
  ASSERT_EQ(sendto(tx, "u", 1, 0, Sa4(rxa), sizeof rxa), 1) << strerror(errno);
  ASSERT_NE(PollFor(rx, POLLIN) & POLLIN, 0);
  sockaddr_in from{};
  l = sizeof from;
  EXPECT_EQ(recvfrom(rx, &c, 1, MSG_DONTWAIT, Sa4(from), &l), 1);
  EXPECT_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK)) << "the source is the route's";
}

TEST(PingGroupRange, GroupsOutsideTheRangeGetEacces) {
  ArmHangGuard(20);
  long lo, hi;
  ASSERT_TRUE(ReadRange(&lo, &hi)) << ReadFile(kRangePath);
  // In a child, in a network namespace of its own where the host lets us
  // make one (the sandbox refuses: the child then changes the sandbox's
  // range and puts it back).
  int st = RunInChild([] {
    (void)unshare(CLONE_NEWNET);
    std::string old = ReadFile(kRangePath);
    int rc = [] {
      if (!WriteRange("1 0")) return 1;
      if (ReadFile(kRangePath) != "1\t0\n") return 2;
      if (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) != -1 || errno != EACCES) return 3;
      if (socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) != -1 || errno != EACCES) return 4;
      // A reversed range is "1 0"; a gid past 2^32 - 2 is EINVAL.
      if (!WriteRange("5 3") || ReadFile(kRangePath) != "1\t0\n") return 5;
      if (WriteRange("0 4294967295") || errno != EINVAL) return 6;
      // Groups 0..100: root's 0 is in, nobody's 65534 is not.
      if (!WriteRange("0 100")) return 7;
      int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
      if (fd < 0) return 8;
      close(fd);
      int nobody = RunAsNobody([] {
        return socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) == -1 && errno == EACCES ? 0 : 1;
      });
      if (nobody != 0) return 20 + nobody;
      return 0;
    }();
    if (!WriteRange(old)) return 10;
    return rc;
  });
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  long lo2, hi2;
  ASSERT_TRUE(ReadRange(&lo2, &hi2));
  EXPECT_EQ(lo2, lo);
  EXPECT_EQ(hi2, hi);
  DisarmHangGuard();
}

}  // namespace
}  // namespace syscall_test
