#include "sentry/socket/host_policy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

NetPrivileges Nobody() {
  NetPrivileges p;
  p.egid = 65534;
  return p;
}

NetPrivileges Root() {
  NetPrivileges p;
  p.net_raw = p.net_admin = true;
  return p;
}

std::string Int(int v) { return std::string(reinterpret_cast<const char*>(&v), sizeof(v)); }

constexpr HostSocketKind kUdp4{AF_INET, SOCK_DGRAM};
constexpr HostSocketKind kTcp6{AF_INET6, SOCK_STREAM};
constexpr HostSocketKind kUdp6{AF_INET6, SOCK_DGRAM};

TEST(HostPolicy, RawAndPacketSocketsNeedNetRaw) {
  EXPECT_EQ(CheckHostSocket(Nobody(), AF_INET, SOCK_RAW, IPPROTO_ICMP).error(), Errno(EPERM));
  EXPECT_EQ(CheckHostSocket(Nobody(), AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW).error(),
            Errno(EPERM));
  EXPECT_EQ(CheckHostSocket(Nobody(), AF_PACKET, SOCK_RAW, 0).error(), Errno(EPERM));
  EXPECT_EQ(CheckHostSocket(Nobody(), AF_INET, SOCK_PACKET, 0).error(), Errno(EPERM));
  EXPECT_TRUE(CheckHostSocket(Root(), AF_INET, SOCK_RAW, IPPROTO_ICMP).ok());
  // Packet sockets are not implemented, privileged or not.
  EXPECT_EQ(CheckHostSocket(Root(), AF_PACKET, SOCK_RAW, 0).error(), Errno(EAFNOSUPPORT));
  EXPECT_EQ(CheckHostSocket(Root(), AF_INET, SOCK_PACKET, 0).error(), Errno(EAFNOSUPPORT));
  // CAP_NET_ADMIN alone is not enough.
  NetPrivileges admin = Nobody();
  admin.net_admin = true;
  EXPECT_EQ(CheckHostSocket(admin, AF_INET, SOCK_RAW, IPPROTO_UDP).error(), Errno(EPERM));
  // inet_create() looks the protocol up first: no raw socket of protocol 0.
  EXPECT_EQ(CheckHostSocket(Nobody(), AF_INET, SOCK_RAW, 0).error(), Errno(EPROTONOSUPPORT));
  EXPECT_EQ(CheckHostSocket(Root(), AF_INET6, SOCK_RAW, 0).error(), Errno(EPROTONOSUPPORT));
}

TEST(HostPolicy, OnlyTcpAndUdpOtherwise) {
  EXPECT_TRUE(CheckHostSocket(Nobody(), AF_INET, SOCK_STREAM, 0).ok());
  EXPECT_TRUE(CheckHostSocket(Nobody(), AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP).ok());
  EXPECT_TRUE(CheckHostSocket(Nobody(), AF_INET, SOCK_DGRAM, IPPROTO_UDP).ok());
  EXPECT_EQ(CheckHostSocket(Root(), AF_INET, SOCK_STREAM, IPPROTO_SCTP).error(),
            Errno(EPROTONOSUPPORT));
  EXPECT_EQ(CheckHostSocket(Root(), AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP).error(),
            Errno(ESOCKTNOSUPPORT));
  EXPECT_EQ(CheckHostSocket(Root(), AF_INET, 99, 0).error(), Errno(EINVAL));
}

TEST(HostPolicy, PingSocketsFollowPingGroupRange) {
  NetPrivileges p = Nobody();  // default range "1 0": nobody
  EXPECT_EQ(CheckHostSocket(p, AF_INET, SOCK_DGRAM, IPPROTO_ICMP).error(), Errno(EACCES));
  p.ping_low = 100;
  p.ping_high = 200;
  p.groups = {150};
  EXPECT_TRUE(CheckHostSocket(p, AF_INET, SOCK_DGRAM, IPPROTO_ICMP).ok());
  EXPECT_TRUE(CheckHostSocket(p, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6).ok());
  EXPECT_EQ(CheckHostSocket(p, AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6).error(),
            Errno(EPROTONOSUPPORT));
  p.groups = {};
  p.egid = 200;
  EXPECT_TRUE(CheckHostSocket(p, AF_INET, SOCK_DGRAM, IPPROTO_ICMP).ok());
  // A capability is no substitute (ping_init_sock() checks groups only).
  NetPrivileges r = Root();
  r.egid = 0;
  EXPECT_EQ(CheckHostSocket(r, AF_INET, SOCK_DGRAM, IPPROTO_ICMP).error(), Errno(EACCES));
}

TEST(HostPolicy, CapabilityOptions) {
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_MARK, Int(1)).error(),
            Errno(EPERM));
  EXPECT_TRUE(CheckHostSetSockOpt(Root(), kUdp4, SOL_SOCKET, SO_MARK, Int(1)).ok());
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kUdp4, IPPROTO_IP, IP_TRANSPARENT, Int(1)).error(),
            Errno(EPERM));
  EXPECT_TRUE(CheckHostSetSockOpt(Nobody(), kUdp4, IPPROTO_IP, IP_TRANSPARENT, Int(0)).ok());
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kTcp6, IPPROTO_IPV6, IPV6_TRANSPARENT, Int(1)).error(),
            Errno(EPERM));
  EXPECT_TRUE(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_PRIORITY, Int(6)).ok());
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_PRIORITY, Int(7)).error(),
            Errno(EPERM));
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_RCVBUFFORCE, Int(1)).error(),
            Errno(EPERM));
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_DEBUG, Int(1)).error(),
            Errno(EACCES));
  EXPECT_TRUE(CheckHostSetSockOpt(Nobody(), kUdp4, SOL_SOCKET, SO_DEBUG, Int(0)).ok());
  EXPECT_TRUE(CheckHostSetSockOpt(Nobody(), kUdp4, IPPROTO_IP, IP_FREEBIND, Int(1)).ok());
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), kTcp6, IPPROTO_TCP, TCP_REPAIR, Int(1)).error(),
            Errno(EPERM));
}

TEST(HostPolicy, BindToDeviceOnceFreeRebindNeedsNetRaw) {
  HostSocketKind s = kUdp4;
  EXPECT_TRUE(CheckHostSetSockOpt(Nobody(), s, SOL_SOCKET, SO_BINDTODEVICE, "lo").ok());
  s.bound_to_device = true;
  EXPECT_EQ(CheckHostSetSockOpt(Nobody(), s, SOL_SOCKET, SO_BINDTODEVICE, "").error(),
            Errno(EPERM));
  EXPECT_TRUE(CheckHostSetSockOpt(Root(), s, SOL_SOCKET, SO_BINDTODEVICE, "").ok());
}

TEST(HostPolicy, ALevelTheProtocolDoesNotOwnFailsAsLinux) {
  // ip_getsockopt(): EOPNOTSUPP for AF_INET; ipv6_getsockopt(): ENOPROTOOPT.
  EXPECT_EQ(CheckHostGetSockOpt(kUdp4, IPPROTO_TCP, TCP_NODELAY).error(), Errno(EOPNOTSUPP));
  EXPECT_EQ(CheckHostGetSockOpt(kUdp4, IPPROTO_IPV6, IPV6_V6ONLY).error(), Errno(EOPNOTSUPP));
  EXPECT_EQ(CheckHostGetSockOpt(kUdp6, IPPROTO_TCP, TCP_NODELAY).error(), Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostGetSockOpt(kUdp4, IPPROTO_IP, 64).error(), Errno(ENOPROTOOPT));
  // ip_setsockopt()/ipv6_setsockopt(): ENOPROTOOPT on both.
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kUdp4, IPPROTO_TCP, TCP_NODELAY, Int(1)).error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kUdp6, IPPROTO_TCP, TCP_NODELAY, Int(1)).error(),
            Errno(ENOPROTOOPT));
}

TEST(HostPolicy, UnknownAndPointerOptionsAreRefusedEvenForRoot) {
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kUdp4, SOL_SOCKET, SO_ATTACH_FILTER, Int(0)).error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kUdp4, SOL_SOCKET, SO_ATTACH_BPF, Int(3)).error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kUdp4, IPPROTO_IP, 64 /* IPT_SO_SET_REPLACE */, Int(0))
                .error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostSetSockOpt(Root(), kTcp6, IPPROTO_TCP, TCP_ULP, "tls").error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostGetSockOpt(kUdp4, IPPROTO_IP, 64 /* IPT_SO_GET_INFO */).error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostGetSockOpt(kTcp6, SOL_SOCKET, 77 /* SO_PEERPIDFD */).error(),
            Errno(ENOPROTOOPT));
  EXPECT_EQ(CheckHostGetSockOpt(kTcp6, IPPROTO_TCP, 35 /* TCP_ZEROCOPY_RECEIVE */).error(),
            Errno(ENOPROTOOPT));
  EXPECT_TRUE(CheckHostGetSockOpt(kTcp6, IPPROTO_TCP, TCP_INFO).ok());
  EXPECT_TRUE(CheckHostGetSockOpt(kTcp6, SOL_SOCKET, SO_ERROR).ok());
  EXPECT_TRUE(CheckHostGetSockOpt(kUdp4, IPPROTO_IP, IP_TTL).ok());
}

std::string Cmsg(int level, int type, int value) {
  std::string b(CMSG_SPACE(sizeof(int)), '\0');
  cmsghdr h{};
  h.cmsg_len = CMSG_LEN(sizeof(int));
  h.cmsg_level = level;
  h.cmsg_type = type;
  memcpy(b.data(), &h, sizeof(h));
  memcpy(b.data() + CMSG_LEN(0), &value, sizeof(value));
  return b;
}

TEST(HostPolicy, SendControlMessages) {
  EXPECT_EQ(CheckHostSendControl(Nobody(), kUdp4, Cmsg(SOL_SOCKET, SO_MARK, 1)).error(),
            Errno(EPERM));
  EXPECT_TRUE(CheckHostSendControl(Root(), kUdp4, Cmsg(SOL_SOCKET, SO_MARK, 1)).ok());
  EXPECT_TRUE(CheckHostSendControl(Nobody(), kUdp4, Cmsg(IPPROTO_IP, IP_TTL, 3)).ok());
  // The host skips them on an AF_INET socket (ip_cmsg_send()).
  EXPECT_TRUE(CheckHostSendControl(Nobody(), kUdp4, Cmsg(IPPROTO_IPV6, IPV6_HOPLIMIT, 3)).ok());
  EXPECT_EQ(CheckHostSendControl(Root(), kUdp4, Cmsg(SOL_SOCKET, SCM_RIGHTS, 0)).error(),
            Errno(EINVAL));
  std::string truncated = Cmsg(IPPROTO_IP, IP_TTL, 3);
  truncated.resize(sizeof(cmsghdr) + 1);
  EXPECT_EQ(CheckHostSendControl(Nobody(), kUdp4, truncated).error(), Errno(EINVAL));
}

}  // namespace
}  // namespace seedvisor::sentry
