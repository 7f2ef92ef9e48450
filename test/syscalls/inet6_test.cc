// AF_INET6 TCP and UDP over ::1 and dual-stack sockets: IPv4 peers of an
// AF_INET6 socket appear as ::ffff:a.b.c.d, IPV6_V6ONLY keeps a socket to
// IPv6 (for binding, receiving and connecting), the bind conflicts between
// the families, and the /proc/net views (tcp6, udp6, if_inet6) list what
// the host lists. Natively the host's stack; *_netstack the sentry's own.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

sockaddr_in6 Addr6(const in6_addr& ip, uint16_t port = 0) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = ip;
  a.sin6_port = htons(port);
  return a;
}

sockaddr_in6 Mapped(uint32_t v4_host_order, uint16_t port) {
  sockaddr_in6 a = Addr6(in6addr_any, port);
  a.sin6_addr.s6_addr[10] = a.sin6_addr.s6_addr[11] = 0xff;
  uint32_t be = htonl(v4_host_order);
  memcpy(&a.sin6_addr.s6_addr[12], &be, 4);
  return a;
}

sockaddr_in Addr4(uint32_t host_order, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(host_order);
  a.sin_port = htons(port);
  return a;
}

template <typename T>
sockaddr* Sa(T& a) {
  return reinterpret_cast<sockaddr*>(&a);
}

std::string Text(const sockaddr_in6& a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
  return buf;
}

sockaddr_in6 NameOf(int fd, bool peer = false) {
  sockaddr_in6 a{};
  socklen_t l = sizeof a;
  int r = peer ? getpeername(fd, Sa(a), &l) : getsockname(fd, Sa(a), &l);
  EXPECT_EQ(r, 0) << ErrnoName(errno);
  EXPECT_EQ(l, sizeof a);
  EXPECT_EQ(a.sin6_family, AF_INET6);
  return a;
}

void SetV6Only(int fd, int v) {
  ASSERT_EQ(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v), 0) << ErrnoName(errno);
}

// A TCP listener on `addr` (port 0: ephemeral); its port.
uint16_t Listen6(const Fd& s, sockaddr_in6 addr) {
  EXPECT_EQ(bind(s, Sa(addr), sizeof addr), 0) << ErrnoName(errno);
  EXPECT_EQ(listen(s, 8), 0) << ErrnoName(errno);
  return ntohs(NameOf(s).sin6_port);
}

void PingPong(int a, int b) {
  ASSERT_EQ(send(a, "ping", 4, 0), 4) << ErrnoName(errno);
  char buf[8] = {};
  ASSERT_EQ(recv(b, buf, sizeof buf, 0), 4) << ErrnoName(errno);
  EXPECT_STREQ(buf, "ping");
  ASSERT_EQ(send(b, "pong", 4, 0), 4);
  ASSERT_EQ(recv(a, buf, sizeof buf, 0), 4);
  EXPECT_STREQ(buf, "pong");
}

TEST(Inet6, TcpOverLoopback) {
  Fd l(socket(AF_INET6, SOCK_STREAM, 0));
  ASSERT_GE(l.fd, 0) << ErrnoName(errno);
  int domain = 0;
  socklen_t dl = sizeof domain;
  ASSERT_EQ(getsockopt(l, SOL_SOCKET, SO_DOMAIN, &domain, &dl), 0);
  EXPECT_EQ(domain, AF_INET6);
  EXPECT_EQ(Text(NameOf(l)), "::");  // unbound
  uint16_t port = Listen6(l, Addr6(in6addr_loopback));
  Fd c(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 to = Addr6(in6addr_loopback, port);
  ASSERT_EQ(connect(c, Sa(to), sizeof to), 0) << ErrnoName(errno);
  sockaddr_in6 peer{};
  socklen_t pl = sizeof peer;
  Fd a(accept(l, Sa(peer), &pl));
  ASSERT_GE(a.fd, 0) << ErrnoName(errno);
  EXPECT_EQ(pl, sizeof peer);
  EXPECT_EQ(Text(peer), "::1");
  EXPECT_EQ(ntohs(peer.sin6_port), ntohs(NameOf(c).sin6_port));
  EXPECT_EQ(Text(NameOf(c, true)), "::1");
  EXPECT_EQ(ntohs(NameOf(c, true).sin6_port), port);
  PingPong(c, a);
}

TEST(Inet6, UdpOverLoopback) {
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 at = Addr6(in6addr_loopback);
  ASSERT_EQ(bind(s, Sa(at), sizeof at), 0) << ErrnoName(errno);
  at = NameOf(s);
  Fd c(socket(AF_INET6, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(c, "hi6", 3, 0, Sa(at), sizeof at), 3) << ErrnoName(errno);
  char buf[8] = {};
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  ASSERT_EQ(recvfrom(s, buf, sizeof buf, 0, Sa(from), &fl), 3) << ErrnoName(errno);
  EXPECT_STREQ(buf, "hi6");
  EXPECT_EQ(fl, sizeof from);
  EXPECT_EQ(Text(from), "::1");
  EXPECT_EQ(from.sin6_port, NameOf(c).sin6_port);
}

TEST(Inet6, DualStackListenerAcceptsIpv4AsMapped) {
  Fd l(socket(AF_INET6, SOCK_STREAM, 0));
  uint16_t port = Listen6(l, Addr6(in6addr_any));
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = Addr4(INADDR_LOOPBACK, port);
  ASSERT_EQ(connect(c, Sa(to), sizeof to), 0) << ErrnoName(errno);
  sockaddr_in6 peer{};
  socklen_t pl = sizeof peer;
  Fd a(accept(l, Sa(peer), &pl));
  ASSERT_GE(a.fd, 0) << ErrnoName(errno);
  EXPECT_EQ(Text(peer), "::ffff:127.0.0.1");
  EXPECT_EQ(Text(NameOf(a)), "::ffff:127.0.0.1");
  PingPong(c, a);
  // And an AF_INET6 client reaches an IPv4 listener through a mapped address.
  Fd l4(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in at4 = Addr4(INADDR_LOOPBACK, 0);
  ASSERT_EQ(bind(l4, Sa(at4), sizeof at4), 0);
  ASSERT_EQ(listen(l4, 1), 0);
  socklen_t l4len = sizeof at4;
  ASSERT_EQ(getsockname(l4, Sa(at4), &l4len), 0);
  Fd c6(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 mapped = Mapped(INADDR_LOOPBACK, ntohs(at4.sin_port));
  ASSERT_EQ(connect(c6, Sa(mapped), sizeof mapped), 0) << ErrnoName(errno);
  EXPECT_EQ(Text(NameOf(c6)), "::ffff:127.0.0.1");
  Fd a4(accept(l4, nullptr, nullptr));
  ASSERT_GE(a4.fd, 0);
  PingPong(c6, a4);
}

TEST(Inet6, V6OnlyRefusesIpv4) {
  Fd l(socket(AF_INET6, SOCK_STREAM, 0));
  int v = -1;
  socklen_t vl = sizeof v;
  ASSERT_EQ(getsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
  EXPECT_EQ(v, 0);  // net.ipv6.bindv6only
  SetV6Only(l, 1);
  ASSERT_EQ(getsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  uint16_t port = Listen6(l, Addr6(in6addr_any));
  // An IPv4 socket may hold the same port beside it, and the IPv4
  // connection goes there, not to the IPv6-only listener.
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = Addr4(INADDR_LOOPBACK, port);
  EXPECT_EQ(connect(c, Sa(to), sizeof to), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  Fd l4(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in any4 = Addr4(INADDR_ANY, port);
  EXPECT_EQ(bind(l4, Sa(any4), sizeof any4), 0) << ErrnoName(errno);
  // A v6-only socket neither binds nor connects to a mapped address.
  Fd u(socket(AF_INET6, SOCK_DGRAM, 0));
  SetV6Only(u, 1);
  sockaddr_in6 mapped = Mapped(INADDR_LOOPBACK, 0);
  EXPECT_EQ(bind(u, Sa(mapped), sizeof mapped), -1);
  EXPECT_EQ(errno, EINVAL);
  mapped.sin6_port = htons(9);
  EXPECT_EQ(sendto(u, "x", 1, 0, Sa(mapped), sizeof mapped), -1);
  EXPECT_EQ(errno, ENETUNREACH);
  // Once bound, the option is fixed.
  Fd b(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 lo = Addr6(in6addr_loopback);
  ASSERT_EQ(bind(b, Sa(lo), sizeof lo), 0) << ErrnoName(errno);
  int zero = 0;
  EXPECT_EQ(setsockopt(b, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Inet6, DualStackWildcardConflictsWithIpv4) {
  Fd s6(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 any6 = Addr6(in6addr_any);
  ASSERT_EQ(bind(s6, Sa(any6), sizeof any6), 0);
  uint16_t port = ntohs(NameOf(s6).sin6_port);
  Fd s4(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in lo4 = Addr4(INADDR_LOOPBACK, port);
  EXPECT_EQ(bind(s4, Sa(lo4), sizeof lo4), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  // The dual-stack socket receives IPv4 datagrams, from a mapped address.
  Fd c(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(c, "v4", 2, 0, Sa(lo4), sizeof lo4), 2);
  char buf[4] = {};
  sockaddr_in6 from{};
  socklen_t fl = sizeof from;
  ASSERT_EQ(recvfrom(s6, buf, sizeof buf, 0, Sa(from), &fl), 2) << ErrnoName(errno);
  EXPECT_EQ(Text(from), "::ffff:127.0.0.1");
}

TEST(Inet6, BadAddressesFailLikeLinux) {
  Fd s(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in a4 = Addr4(INADDR_LOOPBACK, 0);
  EXPECT_EQ(bind(s, Sa(a4), sizeof a4), -1);  // too short for sockaddr_in6
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in6 a = Addr6(in6addr_loopback);
  a.sin6_family = AF_INET;
  EXPECT_EQ(bind(s, Sa(a), sizeof a), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  sockaddr_in6 other = Addr6(in6addr_any);
  inet_pton(AF_INET6, "2001:db8::1", &other.sin6_addr);
  EXPECT_EQ(bind(s, Sa(other), sizeof other), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  // An AF_INET socket takes no IPv6 address.
  Fd s4(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in6 lo = Addr6(in6addr_loopback, 9);
  EXPECT_EQ(sendto(s4, "x", 1, 0, Sa(lo), sizeof lo), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
}

// The line of /proc/net/FILE whose local address column is `local`.
std::string ProcRow(const char* file, const std::string& local) {
  std::ifstream f(std::string("/proc/net/") + file);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string sl, addr;
    in >> sl >> addr;
    if (addr == local) return line;
  }
  return "";
}

TEST(Inet6, ProcNetShowsIpv6Sockets) {
  Fd l(socket(AF_INET6, SOCK_STREAM, 0));
  uint16_t port = Listen6(l, Addr6(in6addr_loopback));
  char local[64];
  snprintf(local, sizeof local, "00000000000000000000000001000000:%04X", port);
  std::string row = ProcRow("tcp6", local);
  ASSERT_FALSE(row.empty()) << "no /proc/net/tcp6 row for " << local;
  std::istringstream in(row);
  std::string sl, laddr, raddr, st;
  in >> sl >> laddr >> raddr >> st;
  EXPECT_EQ(raddr, "00000000000000000000000000000000:0000");
  EXPECT_EQ(st, "0A");  // TCP_LISTEN
  // Not in the IPv4 table.
  char local4[32];
  snprintf(local4, sizeof local4, "0100007F:%04X", port);
  EXPECT_EQ(ProcRow("tcp", local4), "");
  Fd u(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 lo = Addr6(in6addr_loopback);
  ASSERT_EQ(bind(u, Sa(lo), sizeof lo), 0);
  snprintf(local, sizeof local, "00000000000000000000000001000000:%04X",
           ntohs(NameOf(u).sin6_port));
  EXPECT_NE(ProcRow("udp6", local), "");
}

TEST(Inet6, IfInet6ListsLoopback) {
  std::ifstream f("/proc/net/if_inet6");
  std::string line;
  bool found = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string addr, idx, plen, scope, flags, name;
    in >> addr >> idx >> plen >> scope >> flags >> name;
    if (addr != "00000000000000000000000000000001") continue;
    found = true;
    EXPECT_EQ(plen, "80");
    EXPECT_EQ(scope, "10");  // IFA_HOST
    EXPECT_EQ(name, "lo");
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace syscall_test
