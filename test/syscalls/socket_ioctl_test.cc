// The ioctls every socket answers, on unix, netlink and inet sockets alike
// (sock_ioctl(), sock_do_ioctl() falling back to dev_ioctl(); inet_ioctl()
// for the IPv4 address queries): the owner (FIOSETOWN, SIOCSPGRP,
// FIOGETOWN, SIOCGPGRP as F_SETOWN/F_GETOWN), the receive timestamp
// (SIOCGSTAMP, SIOCGSTAMPNS: ENOENT before anything arrived, ENOTTY on unix
// and netlink sockets) and the interface queries (SIOCGIFCONF, SIOCGIFNAME,
// SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFADDR), which
// must agree with what netlink says about the same interfaces
// (if_nameindex(3), getifaddrs(3)) natively and in the sandbox.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <climits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Kind {
  const char* name;
  int domain, type, protocol;
};
constexpr Kind kKinds[] = {
    {"unix stream", AF_UNIX, SOCK_STREAM, 0},
    {"unix dgram", AF_UNIX, SOCK_DGRAM, 0},
    {"unix seqpacket", AF_UNIX, SOCK_SEQPACKET, 0},
    {"netlink route", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
    {"udp", AF_INET, SOCK_DGRAM, 0},
    {"tcp", AF_INET, SOCK_STREAM, 0},
    {"udp6", AF_INET6, SOCK_DGRAM, 0},
};

TEST(SocketIoctlTest, Owner) {
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    Fd s(socket(k.domain, k.type, k.protocol));
    ASSERT_GE(s, 0) << strerror(errno);
    int v = -1;
    ASSERT_EQ(ioctl(s, FIOGETOWN, &v), 0) << strerror(errno);
    EXPECT_EQ(v, 0);
    v = getpid();
    ASSERT_EQ(ioctl(s, FIOSETOWN, &v), 0) << strerror(errno);
    EXPECT_EQ(fcntl(s, F_GETOWN), getpid());
    v = -1;
    ASSERT_EQ(ioctl(s, SIOCGPGRP, &v), 0);
    EXPECT_EQ(v, getpid());
    v = -getpgrp();
    ASSERT_EQ(ioctl(s, SIOCSPGRP, &v), 0) << strerror(errno);
    EXPECT_EQ(fcntl(s, F_GETOWN), -getpgrp());
    v = 0;
    ASSERT_EQ(ioctl(s, FIOGETOWN, &v), 0);
    EXPECT_EQ(v, -getpgrp());
    // f_setown(): nobody with that number, and -INT_MIN.
    v = 1 << 30;
    EXPECT_ERRNO(ESRCH, ioctl(s, FIOSETOWN, &v));
    v = INT_MIN;
    EXPECT_ERRNO(EINVAL, ioctl(s, SIOCSPGRP, &v));
    EXPECT_EQ(fcntl(s, F_GETOWN), -getpgrp());  // unchanged
    v = 0;
    ASSERT_EQ(ioctl(s, FIOSETOWN, &v), 0);
    EXPECT_EQ(fcntl(s, F_GETOWN), 0);
    EXPECT_ERRNO(EFAULT, ioctl(s, FIOSETOWN, nullptr));
  }
}

int64_t RealtimeUs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

TEST(SocketIoctlTest, TimestampOfTheLastDatagram) {
  Fd rx(socket(AF_INET, SOCK_DGRAM, 0));
  Fd tx(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t al = sizeof(a);
  ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr*>(&a), &al), 0);
  timeval tv{};
  timespec ts{};
  EXPECT_ERRNO(ENOENT, ioctl(rx, SIOCGSTAMP, &tv));
  EXPECT_ERRNO(ENOENT, ioctl(rx, SIOCGSTAMPNS, &ts));
  const int64_t before = RealtimeUs();
  ASSERT_EQ(sendto(tx, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 1);
  char c;
  ASSERT_EQ(recv(rx, &c, 1, 0), 1);
  ASSERT_EQ(ioctl(rx, SIOCGSTAMP, &tv), 0) << strerror(errno);
  // Not the time of the recv: the first SIOCGSTAMP turns the host's packet
  // timestamps on through a deferred static key (net_enable_timestamp()),
  // and a datagram that arrived before that has none: sock_gettstamp()
  // then stamps the socket with the time of this ioctl.
  const int64_t after = RealtimeUs();
  ASSERT_EQ(ioctl(rx, SIOCGSTAMPNS, &ts), 0) << strerror(errno);
  const int64_t us = tv.tv_sec * 1000000LL + tv.tv_usec;
  EXPECT_GE(us, before - 1000);  // the clocks may round differently
  EXPECT_LE(us, after + 1000);
  EXPECT_EQ(ts.tv_sec * 1000000LL + ts.tv_nsec / 1000, us);
  EXPECT_ERRNO(EFAULT, ioctl(rx, SIOCGSTAMP, nullptr));

  Fd tcp(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_ERRNO(ENOENT, ioctl(tcp, SIOCGSTAMP, &tv));
  Fd udp6(socket(AF_INET6, SOCK_DGRAM, 0));
  EXPECT_ERRNO(ENOENT, ioctl(udp6, SIOCGSTAMPNS, &ts));
}

TEST(SocketIoctlTest, NoTimestampsOnUnixOrNetlink) {
  for (const Kind& k : kKinds) {
    if (k.domain != AF_UNIX && k.domain != AF_NETLINK) continue;
    SCOPED_TRACE(k.name);
    Fd s(socket(k.domain, k.type, k.protocol));
    timeval tv;
    timespec ts;
    EXPECT_ERRNO(ENOTTY, ioctl(s, SIOCGSTAMP, &tv));
    EXPECT_ERRNO(ENOTTY, ioctl(s, SIOCGSTAMPNS, &ts));
  }
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(p.a, "x", 1, 0), 1);
  char c;
  ASSERT_EQ(recv(p.b, &c, 1, 0), 1);
  timeval tv;
  EXPECT_ERRNO(ENOTTY, ioctl(p.b, SIOCGSTAMP, &tv));
}

// The interfaces netlink shows: index -> name.
std::vector<std::pair<unsigned, std::string>> Interfaces() {
  std::vector<std::pair<unsigned, std::string>> out;
  struct if_nameindex* ni = if_nameindex();
  if (ni == nullptr) return out;
  for (struct if_nameindex* p = ni; p->if_index != 0; ++p) out.emplace_back(p->if_index, p->if_name);
  if_freenameindex(ni);
  return out;
}

// (name, IPv4 address) of every IPv4 address netlink shows, as SIOCGIFCONF
// lists them (inet_gifconf(): the address's label, its local address).
std::multiset<std::pair<std::string, std::string>> Ipv4Addresses() {
  std::multiset<std::pair<std::string, std::string>> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* p = ifa; p != nullptr; p = p->ifa_next) {
    if (p->ifa_addr == nullptr || p->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr, buf, sizeof(buf));
    out.emplace(p->ifa_name, buf);
  }
  freeifaddrs(ifa);
  return out;
}

ifreq Named(const std::string& name) {
  ifreq r{};
  snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", name.c_str());
  return r;
}

TEST(SocketIoctlTest, InterfacesAsNetlinkShowsThem) {
  auto ifs = Interfaces();
  ASSERT_FALSE(ifs.empty());
  bool saw_lo = false;
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    Fd s(socket(k.domain, k.type, k.protocol));
    ASSERT_GE(s, 0);
    for (const auto& [index, name] : ifs) {
      SCOPED_TRACE(name);
      ifreq r = Named(name);
      ASSERT_EQ(ioctl(s, SIOCGIFINDEX, &r), 0) << strerror(errno);
      EXPECT_EQ(r.ifr_ifindex, static_cast<int>(index));
      r = ifreq{};
      r.ifr_ifindex = static_cast<int>(index);
      ASSERT_EQ(ioctl(s, SIOCGIFNAME, &r), 0) << strerror(errno);
      EXPECT_EQ(std::string(r.ifr_name), name);
      r = Named(name);
      ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &r), 0) << strerror(errno);
      const short flags = r.ifr_flags;
      r = Named(name);
      ASSERT_EQ(ioctl(s, SIOCGIFMTU, &r), 0) << strerror(errno);
      EXPECT_GT(r.ifr_mtu, 0);
      const int mtu = r.ifr_mtu;
      r = Named(name);
      ASSERT_EQ(ioctl(s, SIOCGIFHWADDR, &r), 0) << strerror(errno);
      if (name == "lo") {
        saw_lo = true;
        EXPECT_EQ(flags & (IFF_UP | IFF_LOOPBACK | IFF_RUNNING),
                  IFF_UP | IFF_LOOPBACK | IFF_RUNNING);
        EXPECT_EQ(mtu, 65536);
        EXPECT_EQ(r.ifr_hwaddr.sa_family, ARPHRD_LOOPBACK);
        EXPECT_EQ(std::string(r.ifr_hwaddr.sa_data, 6), std::string(6, '\0'));
      }
    }
    ifreq r = Named("nosuch0");
    EXPECT_ERRNO(ENODEV, ioctl(s, SIOCGIFINDEX, &r));
    EXPECT_ERRNO(ENODEV, ioctl(s, SIOCGIFFLAGS, &r));
    r = ifreq{};
    r.ifr_ifindex = 1 << 30;
    EXPECT_ERRNO(ENODEV, ioctl(s, SIOCGIFNAME, &r));
    EXPECT_ERRNO(EFAULT, ioctl(s, SIOCGIFINDEX, nullptr));
  }
  EXPECT_TRUE(saw_lo);
}

TEST(SocketIoctlTest, Ifconf) {
  const auto want = Ipv4Addresses();
  const int size = sizeof(ifreq);
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    Fd s(socket(k.domain, k.type, k.protocol));
    // No buffer: the length the whole list needs.
    ifconf c{};
    ASSERT_EQ(ioctl(s, SIOCGIFCONF, &c), 0) << strerror(errno);
    EXPECT_EQ(c.ifc_len, size * static_cast<int>(want.size()));
    // Room for all: every (name, address).
    std::vector<ifreq> buf(want.size() + 2);
    c.ifc_len = static_cast<int>(buf.size() * sizeof(ifreq));
    c.ifc_req = buf.data();
    ASSERT_EQ(ioctl(s, SIOCGIFCONF, &c), 0);
    ASSERT_EQ(c.ifc_len, size * static_cast<int>(want.size()));
    std::multiset<std::pair<std::string, std::string>> got;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(buf[i].ifr_addr.sa_family, AF_INET);
      char a[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&buf[i].ifr_addr)->sin_addr, a, sizeof(a));
      got.emplace(buf[i].ifr_name, a);
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(got.count({"lo", "127.0.0.1"}), 1u);
    // Whole entries only: one and a bit of room is one.
    c.ifc_len = size + size / 2;
    ASSERT_EQ(ioctl(s, SIOCGIFCONF, &c), 0);
    EXPECT_EQ(c.ifc_len, size);
    c.ifc_len = size - 1;
    ASSERT_EQ(ioctl(s, SIOCGIFCONF, &c), 0);
    EXPECT_EQ(c.ifc_len, 0);
    EXPECT_ERRNO(EFAULT, ioctl(s, SIOCGIFCONF, nullptr));
  }
}

// SIOCGIFADDR and its kin are inet_ioctl()'s: IPv4 sockets only.
TEST(SocketIoctlTest, AddressQueriesOnIpv4SocketsOnly) {
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    Fd s(socket(k.domain, k.type, k.protocol));
    ifreq r = Named("lo");
    if (k.domain != AF_INET) {
      EXPECT_ERRNO(ENOTTY, ioctl(s, SIOCGIFADDR, &r));
      EXPECT_ERRNO(ENOTTY, ioctl(s, SIOCGIFNETMASK, &r));
      continue;
    }
    ASSERT_EQ(ioctl(s, SIOCGIFADDR, &r), 0) << strerror(errno);
    EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&r.ifr_addr)->sin_addr.s_addr,
              htonl(INADDR_LOOPBACK));
    r = Named("lo");
    ASSERT_EQ(ioctl(s, SIOCGIFNETMASK, &r), 0) << strerror(errno);
    EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&r.ifr_netmask)->sin_addr.s_addr,
              htonl(0xff000000u));
    // devinet_ioctl(): lo has no broadcast address, and its "destination"
    // is ifa_address, the local address itself (no point-to-point peer).
    r = Named("lo");
    ASSERT_EQ(ioctl(s, SIOCGIFBRDADDR, &r), 0) << strerror(errno);
    EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&r.ifr_broadaddr)->sin_addr.s_addr, 0u);
    r = Named("lo");
    ASSERT_EQ(ioctl(s, SIOCGIFDSTADDR, &r), 0) << strerror(errno);
    EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&r.ifr_dstaddr)->sin_addr.s_addr,
              htonl(INADDR_LOOPBACK));
  }
}

// Changing an interface needs CAP_NET_ADMIN; unprivileged it is EPERM
// everywhere (the sandbox refuses it to everyone).
TEST(SocketIoctlTest, ChangesArePermissionDenied) {
  int status = RunAsNobody([] {
    for (const Kind& k : kKinds) {
      int s = socket(k.domain, k.type, k.protocol);
      if (s < 0) return 1;
      ifreq r = Named("lo");
      r.ifr_mtu = 1500;
      if (ioctl(s, SIOCSIFMTU, &r) != -1 || errno != EPERM) return 2;
      r = Named("lo");
      if (ioctl(s, SIOCSIFFLAGS, &r) != -1 || errno != EPERM) return 3;
      close(s);
    }
    return 0;
  });
  EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace syscall_test
