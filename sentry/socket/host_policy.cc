#include "sentry/socket/host_policy.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef SCM_TXTIME
#define SCM_TXTIME 61
#endif

namespace seedvisor::sentry {

namespace {

// netlink.h's option names, without including it beside netinet/in.h.
constexpr int kNetlinkAddMembership = 1, kNetlinkDropMembership = 2, kNetlinkPktinfo = 3,
              kNetlinkBroadcastError = 4, kNetlinkNoEnobufs = 5, kNetlinkCapAck = 10,
              kNetlinkExtAck = 11, kNetlinkGetStrictChk = 12;
constexpr int kIcmpFilter = 1;     // SOL_RAW ICMP_FILTER (linux/icmp.h)
constexpr int kIcmpv6Filter = 1;   // IPPROTO_ICMPV6 ICMPV6_FILTER (linux/icmpv6.h)
constexpr int kSoOriginalDst = 80;  // SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST

bool IsInet(int family) { return family == AF_INET || family == AF_INET6; }

// An int option's value as the kernel reads it (copy_from_sockptr of at
// least an int; shorter values are EINVAL there, and here leave the host to
// say so).
bool IntVal(std::string_view val, int* out) {
  if (val.size() < sizeof(int)) return false;
  memcpy(out, val.data(), sizeof(int));
  return true;
}

// Options with no capability rule and no pointer or fd inside.
bool PlainSocketOpt(int name) {
  switch (name) {
    case SO_REUSEADDR: case SO_REUSEPORT: case SO_KEEPALIVE: case SO_BROADCAST:
    case SO_LINGER: case SO_OOBINLINE: case SO_SNDBUF: case SO_RCVBUF: case SO_RCVLOWAT:
    case SO_SNDLOWAT: case SO_DONTROUTE: case SO_NO_CHECK: case SO_PASSCRED:
    case SO_TIMESTAMP_OLD: case SO_TIMESTAMP_NEW: case SO_TIMESTAMPNS_OLD:
    case SO_TIMESTAMPNS_NEW: case SO_TIMESTAMPING_OLD: case SO_TIMESTAMPING_NEW:
    case SO_RXQ_OVFL: case SO_SELECT_ERR_QUEUE: case SO_INCOMING_CPU: case SO_ZEROCOPY:
    case SO_MAX_PACING_RATE: case SO_PEEK_OFF: case SO_DETACH_FILTER: case SO_LOCK_FILTER:
    case SO_CNX_ADVICE: case SO_RCVMARK:
      return true;
    default:
      return false;
  }
}

// Options only read: the socket's own state.
bool ReadOnlySocketOpt(int name) {
  switch (name) {
    case SO_TYPE: case SO_ERROR: case SO_PROTOCOL: case SO_DOMAIN: case SO_ACCEPTCONN:
    case SO_COOKIE: case SO_MEMINFO: case SO_INCOMING_NAPI_ID: case SO_BINDTOIFINDEX:
    case SO_BINDTODEVICE: case SO_MARK: case SO_PRIORITY: case SO_DEBUG:
    case SO_PEERNAME: case SO_NETNS_COOKIE:
      return true;
    default:
      return false;
  }
}

bool PlainIpOpt(int name) {
  switch (name) {
    case IP_TOS: case IP_TTL: case IP_HDRINCL: case IP_OPTIONS: case IP_RECVOPTS:
    case IP_RETOPTS: case IP_PKTINFO: case IP_RECVTTL: case IP_RECVTOS: case IP_RECVERR:
    case IP_MTU_DISCOVER: case IP_MULTICAST_IF: case IP_MULTICAST_TTL: case IP_MULTICAST_LOOP:
    case IP_ADD_MEMBERSHIP: case IP_DROP_MEMBERSHIP: case IP_ADD_SOURCE_MEMBERSHIP:
    case IP_DROP_SOURCE_MEMBERSHIP: case IP_BLOCK_SOURCE: case IP_UNBLOCK_SOURCE:
    case MCAST_JOIN_GROUP: case MCAST_LEAVE_GROUP: case MCAST_JOIN_SOURCE_GROUP:
    case MCAST_LEAVE_SOURCE_GROUP: case MCAST_BLOCK_SOURCE: case MCAST_UNBLOCK_SOURCE:
    case IP_MSFILTER: case MCAST_MSFILTER: case IP_MULTICAST_ALL:
    // ip_setsockopt(): IP_FREEBIND asks for no capability (binding to a
    // non-local address is not spoofing a source on the wire).
    case IP_FREEBIND: case IP_BIND_ADDRESS_NO_PORT: case IP_RECVORIGDSTADDR: case IP_MINTTL:
    case IP_NODEFRAG: case IP_CHECKSUM: case IP_RECVFRAGSIZE: case IP_RECVERR_RFC4884:
    case IP_LOCAL_PORT_RANGE: case IP_UNICAST_IF: case IP_ROUTER_ALERT: case IP_PASSSEC:
      return true;
    default:
      return false;
  }
}

bool PlainIpv6Opt(int name) {
  switch (name) {
    case IPV6_UNICAST_HOPS: case IPV6_MULTICAST_IF: case IPV6_MULTICAST_HOPS:
    case IPV6_MULTICAST_LOOP: case IPV6_ADD_MEMBERSHIP: case IPV6_DROP_MEMBERSHIP:
    case IPV6_V6ONLY: case IPV6_RECVPKTINFO: case IPV6_2292PKTINFO: case IPV6_RECVHOPLIMIT:
    case IPV6_2292HOPLIMIT: case IPV6_RECVTCLASS: case IPV6_TCLASS: case IPV6_RECVERR:
    case IPV6_MTU_DISCOVER: case IPV6_MTU: case IPV6_DONTFRAG: case IPV6_RECVPATHMTU:
    case IPV6_PKTINFO: case IPV6_ADDR_PREFERENCES: case IPV6_MINHOPCOUNT:
    case IPV6_RECVORIGDSTADDR: case IPV6_AUTOFLOWLABEL: case IPV6_FREEBIND:
    case IPV6_UNICAST_IF: case IPV6_MULTICAST_ALL: case IPV6_RECVRTHDR: case IPV6_2292RTHDR:
    case IPV6_RECVHOPOPTS: case IPV6_2292HOPOPTS: case IPV6_RECVDSTOPTS: case IPV6_2292DSTOPTS:
    case IPV6_RTHDR: case IPV6_RECVFRAGSIZE: case IPV6_CHECKSUM: case IPV6_ROUTER_ALERT:
    case IPV6_FLOWINFO: case IPV6_FLOWINFO_SEND: case IPV6_RECVERR_RFC4884:
    case MCAST_JOIN_GROUP: case MCAST_LEAVE_GROUP: case MCAST_JOIN_SOURCE_GROUP:
    case MCAST_LEAVE_SOURCE_GROUP: case MCAST_BLOCK_SOURCE: case MCAST_UNBLOCK_SOURCE:
    case MCAST_MSFILTER:
      return true;
    default:
      return false;
  }
}

bool PlainTcpOpt(int name) {
  switch (name) {
    case TCP_NODELAY: case TCP_MAXSEG: case TCP_CORK: case TCP_KEEPIDLE: case TCP_KEEPINTVL:
    case TCP_KEEPCNT: case TCP_SYNCNT: case TCP_LINGER2: case TCP_DEFER_ACCEPT:
    case TCP_WINDOW_CLAMP: case TCP_QUICKACK: case TCP_USER_TIMEOUT: case TCP_FASTOPEN:
    case TCP_FASTOPEN_CONNECT: case TCP_FASTOPEN_NO_COOKIE: case TCP_NOTSENT_LOWAT:
    case TCP_THIN_LINEAR_TIMEOUTS: case TCP_THIN_DUPACK: case TCP_SAVE_SYN: case TCP_INQ:
    case TCP_MD5SIG: case TCP_MD5SIG_EXT: case TCP_TX_DELAY:
      return true;
    default:
      return false;
  }
}

bool PlainUdpOpt(int name) {
  switch (name) {
    case UDP_CORK: case UDP_NO_CHECK6_TX: case UDP_NO_CHECK6_RX: case UDP_SEGMENT: case UDP_GRO:
      return true;
    default:
      return false;
  }
}

bool PlainNetlinkOpt(int name) {
  switch (name) {
    // netlink_setsockopt(): NETLINK_ROUTE lets anyone join its groups
    // (NL_CFG_F_NONROOT_RECV); NETLINK_LISTEN_ALL_NSID needs
    // CAP_NET_BROADCAST and is left out.
    case kNetlinkAddMembership: case kNetlinkDropMembership: case kNetlinkPktinfo:
    case kNetlinkBroadcastError: case kNetlinkNoEnobufs: case kNetlinkCapAck:
    case kNetlinkExtAck: case kNetlinkGetStrictChk:
      return true;
    default:
      return false;
  }
}

bool RawOrAdmin(const NetPrivileges& p) { return p.net_raw || p.net_admin; }

bool InPingRange(const NetPrivileges& p) {
  if (p.ping_low > p.ping_high) return false;
  auto in = [&](gid_t g) { return g >= p.ping_low && g <= p.ping_high; };
  if (in(p.egid)) return true;
  for (gid_t g : p.groups) {
    if (in(g)) return true;
  }
  return false;
}

Status SetSocketLevel(const NetPrivileges& p, const HostSocketKind& s, int name,
                      std::string_view val) {
  if (PlainSocketOpt(name)) return {};
  int v = 0;
  switch (name) {
    // sk_setsockopt(): SO_MARK needs CAP_NET_RAW or CAP_NET_ADMIN.
    case SO_MARK:
      if (!RawOrAdmin(p)) return Errno(EPERM);
      return {};
    // sk_set_prio_allowed(): 0..6 for anyone, above for CAP_NET_RAW/ADMIN.
    case SO_PRIORITY:
      if (!IntVal(val, &v)) return {};
      if ((v < 0 || v > 6) && !RawOrAdmin(p)) return Errno(EPERM);
      return {};
    // sk_setsockopt(): turning SO_DEBUG on needs CAP_NET_ADMIN, and it is
    // EACCES, not EPERM.
    case SO_DEBUG:
      if (IntVal(val, &v) && v != 0 && !p.net_admin) return Errno(EACCES);
      return {};
    case SO_RCVBUFFORCE:
    case SO_SNDBUFFORCE:
      if (!p.net_admin) return Errno(EPERM);
      return {};
    // sock_bindtoindex_locked(): binding is free (Linux 5.7+), changing an
    // existing binding needs CAP_NET_RAW.
    case SO_BINDTODEVICE:
    case SO_BINDTOIFINDEX:
      if (s.bound_to_device && !p.net_raw) return Errno(EPERM);
      return {};
    // SO_ATTACH_FILTER and friends carry a pointer to the program in guest
    // memory, SO_ATTACH_BPF a guest fd: the host would take both as the
    // sentry's. SO_BUSY_POLL raises need CAP_NET_ADMIN; SO_TXTIME a clock
    // other than CLOCK_MONOTONIC too: not passed on.
    default:
      return Errno(ENOPROTOOPT);
  }
}

Status SetIpLevel(const NetPrivileges& p, int name, std::string_view val) {
  if (PlainIpOpt(name)) return {};
  int v = 0;
  // ip_setsockopt(): IP_TRANSPARENT on needs CAP_NET_RAW or CAP_NET_ADMIN.
  if (name == IP_TRANSPARENT) {
    bool on = val.size() >= 1 && (IntVal(val, &v) ? v != 0 : val[0] != 0);
    if (on && !RawOrAdmin(p)) return Errno(EPERM);
    return {};
  }
  // Netfilter (IPT_SO_SET_*), multicast routing (MRT_*), IPsec policies,
  // IPVS and anything newer: not passed on.
  return Errno(ENOPROTOOPT);
}

Status SetIpv6Level(const NetPrivileges& p, int name, std::string_view val) {
  int v = 0;
  switch (name) {
    // do_ipv6_setsockopt(): hop-by-hop and destination options are
    // privileged (CAP_NET_RAW); a routing header is not.
    case IPV6_HOPOPTS:
    case IPV6_RTHDRDSTOPTS:
    case IPV6_DSTOPTS:
      if (!p.net_raw) return Errno(EPERM);
      return {};
    case IPV6_TRANSPARENT:
      if (IntVal(val, &v) && v != 0 && !RawOrAdmin(p)) return Errno(EPERM);
      return {};
    default:
      break;
  }
  if (PlainIpv6Opt(name)) return {};
  // IPV6_2292PKTOPTIONS (a control buffer the host would check against the
  // sentry), IPV6_FLOWLABEL_MGR, IPV6_ADDRFORM, netfilter, multicast
  // routing, IPsec: not passed on.
  return Errno(ENOPROTOOPT);
}

Status SetTcpLevel(const NetPrivileges& p, int name, std::string_view val) {
  if (PlainTcpOpt(name)) return {};
  switch (name) {
    case TCP_CONGESTION: {
      // do_tcp_setsockopt(): an empty option is EINVAL; the name is at
      // most TCP_CA_NAME_MAX - 1 (15) bytes, up to a NUL.
      if (val.empty()) return Errno(EINVAL);
      std::string_view n = val.substr(0, 15);
      n = n.substr(0, n.find('\0'));
      // tcp_set_congestion_control(): not found is ENOENT, not allowed EPERM.
      if (CongestionControlAllowed(p.net_admin, n)) return {};
      return Errno(CongestionControlAllowed(true, n) ? EPERM : ENOENT);
    }
    // tcp_can_repair_sock(), do_tcp_setsockopt(): CAP_NET_ADMIN.
    case TCP_REPAIR: case TCP_REPAIR_QUEUE: case TCP_QUEUE_SEQ: case TCP_REPAIR_OPTIONS:
    case TCP_REPAIR_WINDOW: case TCP_FASTOPEN_KEY:
      return Errno(p.net_admin ? ENOPROTOOPT : EPERM);
    // TCP_ULP would make a CAP_NET_ADMIN host load a module: not passed on.
    default:
      return Errno(ENOPROTOOPT);
  }
}

std::vector<std::string> ReadWords(const char* path) {
  std::ifstream f(path);
  std::vector<std::string> words;
  std::string w;
  while (f >> w) words.push_back(w);
  return words;
}

}  // namespace

Status CheckHostSocket(const NetPrivileges& p, int domain, int type, int protocol) {
  int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  // packet_create(): CAP_NET_RAW first; __sock_create() makes AF_INET +
  // SOCK_PACKET an AF_PACKET socket.
  if (domain == AF_PACKET || (domain == AF_INET && base == SOCK_PACKET)) {
    return Errno(p.net_raw ? EAFNOSUPPORT : EPERM);
  }
  if (!IsInet(domain)) return Errno(EAFNOSUPPORT);
  // __sock_create(): the type range, then inet_create()/inet6_create().
  if (base < 0 || base >= SOCK_PACKET + 1) return Errno(EINVAL);
  if (protocol < 0 || protocol >= IPPROTO_MAX) return Errno(EINVAL);
  switch (base) {
    case SOCK_STREAM:
      if (protocol == 0 || protocol == IPPROTO_TCP) return {};
      return Errno(EPROTONOSUPPORT);
    case SOCK_DGRAM: {
      if (protocol == 0 || protocol == IPPROTO_UDP) return {};
      int icmp = domain == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
      if (protocol != icmp) return Errno(EPROTONOSUPPORT);
      // ping_init_sock(): the egid or a supplementary group in
      // net.ipv4.ping_group_range (the same range serves IPv6), else EACCES.
      if (!InPingRange(p)) return Errno(EACCES);
      return {};
    }
    case SOCK_RAW:
      // inet_create(): the raw entry of inetsw matches no protocol 0
      // (IPPROTO_IP) before the privilege check; then CAP_NET_RAW.
      if (protocol == 0) return Errno(EPROTONOSUPPORT);
      if (!p.net_raw) return Errno(EPERM);
      return {};
    default:
      return Errno(ESOCKTNOSUPPORT);
  }
}

Status CheckHostSetSockOpt(const NetPrivileges& p, const HostSocketKind& s, int level, int name,
                           std::string_view val) {
  if (level == SOL_SOCKET) return SetSocketLevel(p, s, name, val);
  if (s.family == AF_NETLINK) {
    if (level == SOL_NETLINK && PlainNetlinkOpt(name)) return {};
    return Errno(ENOPROTOOPT);
  }
  switch (level) {
    case IPPROTO_IP:
      return SetIpLevel(p, name, val);
    case IPPROTO_IPV6:
      if (s.family != AF_INET6) return Errno(ENOPROTOOPT);
      return SetIpv6Level(p, name, val);
    case IPPROTO_TCP:
      // udp_setsockopt()/raw_setsockopt() pass SOL_TCP on to ip_setsockopt()
      // or ipv6_setsockopt(): not their level, ENOPROTOOPT.
      if (s.type != SOCK_STREAM) return Errno(ENOPROTOOPT);
      return SetTcpLevel(p, name, val);
    case SOL_UDP:
      if (PlainUdpOpt(name)) return {};
      return Errno(ENOPROTOOPT);
    case SOL_RAW:
      if (s.type == SOCK_RAW && name == kIcmpFilter) return {};
      return Errno(ENOPROTOOPT);
    case IPPROTO_ICMPV6:
      if (s.type == SOCK_RAW && name == kIcmpv6Filter) return {};
      return Errno(ENOPROTOOPT);
    default:
      return Errno(ENOPROTOOPT);
  }
}

Status CheckHostGetSockOpt(const HostSocketKind& s, int level, int name) {
  NetPrivileges all;  // reading asks for no capability
  all.net_raw = all.net_admin = true;
  auto settable = [&](int lvl) {
    return CheckHostSetSockOpt(all, s, lvl, name, std::string_view("\0\0\0\0", 4)).ok();
  };
  switch (level) {
    case SOL_SOCKET:
      if (ReadOnlySocketOpt(name) || PlainSocketOpt(name)) return {};
      if (name == SO_RCVBUFFORCE || name == SO_SNDBUFFORCE) return Errno(ENOPROTOOPT);
      break;
    case IPPROTO_IP:
      if (name == IP_MTU || name == kSoOriginalDst || name == IP_TRANSPARENT) return {};
      break;
    case IPPROTO_IPV6:
      if (name == IPV6_MTU || name == IPV6_PATHMTU || name == kSoOriginalDst ||
          name == IPV6_TRANSPARENT) {
        return {};
      }
      break;
    case IPPROTO_TCP:
      if (name == TCP_INFO || name == TCP_CC_INFO || name == TCP_SAVED_SYN ||
          name == TCP_CONGESTION || name == TCP_TIMESTAMP) {
        return {};
      }
      break;
    default:
      break;
  }
  if (level != SOL_SOCKET && settable(level)) return {};
  if (level == SOL_SOCKET || s.family == AF_NETLINK) return Errno(ENOPROTOOPT);
  return InetGetSockOptLevelError(s.family, s.type, level);
}

Errno InetGetSockOptLevelError(int family, int type, int level) {
  if (family != AF_INET || level == SOL_SOCKET || level == IPPROTO_IP) return Errno(ENOPROTOOPT);
  bool own = (type == SOCK_STREAM && level == IPPROTO_TCP) ||
             (type == SOCK_DGRAM && (level == IPPROTO_UDP || level == IPPROTO_UDPLITE)) ||
             (type == SOCK_RAW && level == SOL_RAW);
  return Errno(own ? ENOPROTOOPT : EOPNOTSUPP);
}

Status CheckHostSendControl(const NetPrivileges& p, const HostSocketKind& s,
                            std::string_view control) {
  size_t off = 0;
  while (off + sizeof(cmsghdr) <= control.size()) {
    cmsghdr h;
    memcpy(&h, control.data() + off, sizeof(h));
    if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > control.size() - off) {
      return Errno(EINVAL);
    }
    std::string_view data = control.substr(off + CMSG_LEN(0), h.cmsg_len - CMSG_LEN(0));
    bool ok = false;
    int v = 0;
    switch (h.cmsg_level) {
      case SOL_SOCKET:
        // __sock_cmsg_send()
        if (h.cmsg_type == SO_MARK) {
          if (!RawOrAdmin(p)) return Errno(EPERM);
          ok = true;
        } else if (h.cmsg_type == SO_PRIORITY) {
          if (IntVal(data, &v) && (v < 0 || v > 6) && !RawOrAdmin(p)) return Errno(EPERM);
          ok = true;
        } else {
          ok = h.cmsg_type == SO_TIMESTAMPING_OLD || h.cmsg_type == SCM_TXTIME;
        }
        break;
      case IPPROTO_IP:  // ip_cmsg_send()
        ok = h.cmsg_type == IP_PKTINFO || h.cmsg_type == IP_TTL || h.cmsg_type == IP_TOS ||
             h.cmsg_type == IP_RETOPTS;
        break;
      case IPPROTO_IPV6:  // ip6_datagram_send_ctl()
        // An AF_INET socket's ip_cmsg_send() skips every SOL_IPV6 message.
        if (s.family != AF_INET6) {
          ok = true;
          break;
        }
        if (h.cmsg_type == IPV6_HOPOPTS || h.cmsg_type == IPV6_2292HOPOPTS ||
            h.cmsg_type == IPV6_DSTOPTS || h.cmsg_type == IPV6_2292DSTOPTS ||
            h.cmsg_type == IPV6_RTHDRDSTOPTS) {
          if (!p.net_raw) return Errno(EPERM);
          ok = true;
        } else {
          ok = h.cmsg_type == IPV6_PKTINFO || h.cmsg_type == IPV6_2292PKTINFO ||
               h.cmsg_type == IPV6_HOPLIMIT || h.cmsg_type == IPV6_2292HOPLIMIT ||
               h.cmsg_type == IPV6_TCLASS || h.cmsg_type == IPV6_DONTFRAG ||
               h.cmsg_type == IPV6_FLOWINFO || h.cmsg_type == IPV6_RTHDR ||
               h.cmsg_type == IPV6_2292RTHDR;
        }
        break;
      case SOL_UDP:
        ok = h.cmsg_type == UDP_SEGMENT;
        break;
      default:
        break;
    }
    if (!ok) return Errno(EINVAL);
    off += CMSG_ALIGN(h.cmsg_len);
  }
  return {};
}

bool CongestionControlAllowed(bool net_admin, std::string_view name) {
  static const std::vector<std::string> allowed =
      ReadWords("/proc/sys/net/ipv4/tcp_allowed_congestion_control");
  static const std::vector<std::string> available =
      ReadWords("/proc/sys/net/ipv4/tcp_available_congestion_control");
  // Where the sentry cannot read /proc (an OCI sandbox), the kernel's
  // built-in defaults.
  static const std::vector<std::string> fallback = {"reno", "cubic"};
  const auto& list = net_admin ? available : allowed;
  for (const std::string& n : list.empty() ? fallback : list) {
    if (n == name) return true;
  }
  return false;
}

}  // namespace seedvisor::sentry
