// sin6_scope_id (RFC 4007) where only lo exists or may be counted on: a
// link-local address needs its interface, as Linux's __inet6_bind(),
// tcp_v6_connect() and __ip6_datagram_connect() say (EINVAL without one,
// ENODEV for bind to an interface that does not exist, EADDRNOTAVAIL for
// one that lacks the address, ENETUNREACH for a connect or send scoped
// off every route); a scope beside any other address is ignored. A link
// with link-local addresses on it: test/netstack/veth6_scope_e2e_test.sh.
// Natively the host's stack; *_netstack the sentry's own; the plain
// variants the host's again, in the sandbox's namespace.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr uint32_t kLo = 1;                 // lo's index in every namespace
constexpr uint32_t kNoSuchIf = 2147480000;  // no interface has this index

sockaddr_in6 Addr6(const char* ip, uint16_t port, uint32_t scope) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  a.sin6_port = htons(port);
  a.sin6_scope_id = scope;
  return a;
}

sockaddr* Sa(sockaddr_in6& a) { return reinterpret_cast<sockaddr*>(&a); }

// What bind(2) (or connect(2)) of a new `type` socket to `a` gives: 0 or
// errno.
int BindErr(int type, sockaddr_in6 a, socklen_t len = sizeof(sockaddr_in6)) {
  Fd s(socket(AF_INET6, type, 0));
  return bind(s, Sa(a), len) == 0 ? 0 : errno;
}
int ConnectErr(int type, sockaddr_in6 a) {
  Fd s(socket(AF_INET6, type, 0));
  return connect(s, Sa(a), sizeof a) == 0 ? 0 : errno;
}

TEST(Inet6Scope, BindToALinkLocalAddressNeedsItsInterface) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "tcp" : "udp");
    EXPECT_EQ(ErrnoName(BindErr(type, Addr6("fe80::1", 0, 0))), ErrnoName(EINVAL));
    // Too short to carry a scope (SIN6_LEN_RFC2133): none.
    EXPECT_EQ(ErrnoName(BindErr(type, Addr6("fe80::1", 0, kLo), 24)), ErrnoName(EINVAL));
    EXPECT_EQ(ErrnoName(BindErr(type, Addr6("fe80::1", 0, kNoSuchIf))), ErrnoName(ENODEV));
    EXPECT_EQ(ErrnoName(BindErr(type, Addr6("fe80::1", 0, kLo))), ErrnoName(EADDRNOTAVAIL));
  }
}

TEST(Inet6Scope, ConnectToALinkLocalAddressNeedsItsInterface) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "tcp" : "udp");
    EXPECT_EQ(ErrnoName(ConnectErr(type, Addr6("fe80::1", 80, 0))), ErrnoName(EINVAL));
    // Scoped to an interface without a route there, or to none at all.
    EXPECT_EQ(ErrnoName(ConnectErr(type, Addr6("fe80::1", 80, kLo))), ErrnoName(ENETUNREACH));
    EXPECT_EQ(ErrnoName(ConnectErr(type, Addr6("fe80::1", 80, kNoSuchIf))),
              ErrnoName(ENETUNREACH));
  }
  Fd u(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 to = Addr6("fe80::1", 80, kNoSuchIf);
  EXPECT_EQ(sendto(u, "x", 1, 0, Sa(to), sizeof to), -1);
  EXPECT_EQ(ErrnoName(errno), ErrnoName(ENETUNREACH));
}

// A scope id beside an address that is not link-local means nothing: it
// is neither checked nor shown.
TEST(Inet6Scope, AScopeOnAnotherAddressIsIgnored) {
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 a = Addr6("::1", 0, kNoSuchIf);
  ASSERT_EQ(bind(s, Sa(a), sizeof a), 0) << ErrnoName(errno);
  sockaddr_in6 name{};
  socklen_t l = sizeof name;
  ASSERT_EQ(getsockname(s, Sa(name), &l), 0);
  EXPECT_EQ(name.sin6_scope_id, 0u);
  Fd c(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 to = Addr6("::1", ntohs(name.sin6_port), kNoSuchIf);
  ASSERT_EQ(connect(c, Sa(to), sizeof to), 0) << ErrnoName(errno);
  sockaddr_in6 peer{};
  l = sizeof peer;
  ASSERT_EQ(getpeername(c, Sa(peer), &l), 0);
  EXPECT_EQ(peer.sin6_scope_id, 0u);
  EXPECT_EQ(send(c, "x", 1, 0), 1) << ErrnoName(errno);
  sockaddr_in6 from{};
  l = sizeof from;
  char b;
  ASSERT_EQ(recvfrom(s, &b, 1, 0, Sa(from), &l), 1) << ErrnoName(errno);
  EXPECT_EQ(from.sin6_scope_id, 0u);
}

}  // namespace
}  // namespace syscall_test
