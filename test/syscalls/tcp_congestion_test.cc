// TCP_CONGESTION (do_tcp_getsockopt(), do_tcp_setsockopt()): the name comes
// back NUL-padded to TCP_CA_NAME_MAX (16) bytes or cut to the caller's
// length; "reno" and "cubic" can be chosen (the test runs as root: no
// tcp_allowed_congestion_control limit), an unknown name is ENOENT and
// leaves the choice as it was, an empty option EINVAL; an accepted
// connection has its listener's. The default is the host's or the
// sandbox's own (cubic, Linux's built-in default), so it is only checked
// for its form.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr size_t kNameMax = 16;  // TCP_CA_NAME_MAX

class TcpCongestionTest : public InetTest {
 protected:
  // The raw bytes getsockopt gives for a buffer of `len`.
  static std::string Get(int fd, socklen_t len = kNameMax) {
    char buf[64];
    memset(buf, 'x', sizeof buf);
    socklen_t l = len;
    EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, buf, &l), 0) << strerror(errno);
    return std::string(buf, l);
  }
  static std::string Padded(const std::string& name) {
    std::string s = name;
    s.resize(kNameMax, '\0');
    return s;
  }
  static int Set(int fd, const std::string& name) {
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(), socklen_t(name.size()));
  }
};

TEST_P(TcpCongestionTest, NameRoundTripsPaddedOrCut) {
  Fd s(socket(family(), SOCK_STREAM, 0));
  std::string def = Get(s);
  ASSERT_EQ(def.size(), kNameMax);
  std::string name = def.substr(0, def.find('\0'));
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(def, Padded(name));
  // A longer buffer still gets 16 bytes; a shorter one the name's start.
  EXPECT_EQ(Get(s, 40).size(), kNameMax);
  EXPECT_EQ(Get(s, 2), name.substr(0, 2));
  for (const char* n : {"reno", "cubic", "reno"}) {
    ASSERT_EQ(Set(s, n), 0) << n << ": " << strerror(errno);
    EXPECT_EQ(Get(s), Padded(n));
  }
  // The name ends at the first NUL or after 15 bytes.
  ASSERT_EQ(Set(s, std::string("cubic\0junk", 10)), 0) << strerror(errno);
  EXPECT_EQ(Get(s), Padded("cubic"));
  EXPECT_ERRNO(ENOENT, Set(s, "no-such-algorithm"));
  EXPECT_ERRNO(ENOENT, Set(s, "cubicx"));
  EXPECT_EQ(Get(s), Padded("cubic"));
  EXPECT_ERRNO(EINVAL, setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "reno", 0));
  EXPECT_EQ(Get(s), Padded("cubic"));
}

TEST_P(TcpCongestionTest, AcceptedConnectionHasTheListeners) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(Set(l, "reno"), 0) << strerror(errno);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(Set(c, "cubic"), 0) << strerror(errno);
  ASSERT_EQ(connect(c, Sa(a), Len()), 0) << strerror(errno);
  Fd s(accept(l, nullptr, nullptr));
  ASSERT_GE(s, 0) << strerror(errno);
  EXPECT_EQ(Get(s), Padded("reno"));
  EXPECT_EQ(Get(c), Padded("cubic"));
  // Changing it on a live connection works and data still flows.
  ASSERT_EQ(Set(c, "reno"), 0) << strerror(errno);
  ExpectByteArrives(c, s, 'q');
}

INSTANTIATE_TEST_SUITE_P(Families, TcpCongestionTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
