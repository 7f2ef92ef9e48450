// NetstackSocket's socket options (getsockopt/setsockopt): SOL_SOCKET,
// IPPROTO_TCP, IPPROTO_IP and IPPROTO_IPV6, as far as the stack serves them;
// SOL_RAW and SOL_ICMPV6 of raw ICMP sockets.
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "sentry/socket/host_policy.h"
#include "sentry/socket/netstack_socket.h"
#include "sentry/socket/tcp_info.h"

namespace seedvisor::sentry {
namespace {

// Linux's limits for SO_RCVBUF/SO_SNDBUF (sock_setsockopt(): the value is
// doubled, at least SOCK_MIN_RCVBUF/SOCK_MIN_SNDBUF, at most twice
// net.core.rmem_max/wmem_max).
constexpr int kMinRcvbuf = 2304, kMinSndbuf = 4608, kMaxBuf = 212992;

// SOL_RAW ICMP_FILTER (linux/icmp.h, which clashes with glibc's headers).
constexpr int kIcmpFilter = 1;

std::string IntOpt(int v, size_t optlen) {
  std::string s(reinterpret_cast<const char*>(&v), sizeof v);
  s.resize(std::min(optlen, sizeof v));
  return s;
}

// do_ip_getsockopt(): a caller's buffer shorter than an int gets one byte
// of a value that fits in one.
std::string IpIntOpt(int v, size_t optlen) {
  if (optlen > 0 && optlen < sizeof(int) && v >= 0 && v <= 255) return std::string(1, char(v));
  return IntOpt(v, optlen);
}

// do_ip_setsockopt(): an int, or one unsigned byte from a shorter value
// (0 from an empty one).
int IpVal(const std::string& val) {
  if (val.size() >= sizeof(int)) {
    int v;
    memcpy(&v, val.data(), sizeof v);
    return v;
  }
  return val.empty() ? 0 : static_cast<unsigned char>(val[0]);
}

Result<int> GetInt(const std::string& val) {
  if (val.size() < sizeof(int)) return Errno(EINVAL);
  int v;
  memcpy(&v, val.data(), sizeof v);
  return v;
}

int ClampBuf(int v, int min) {
  int64_t d = int64_t(std::max(v, 0)) * 2;
  return int(std::clamp<int64_t>(d, min, 2 * int64_t(kMaxBuf)));
}

}  // namespace

Result<std::string> NetstackSocket::GetSockOpt(Task&, int level, int name, size_t optlen) {
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_TYPE: return IntOpt(type(), optlen);
      case SO_DOMAIN: return IntOpt(family_, optlen);
      case SO_PROTOCOL: return IntOpt(protocol(), optlen);
      case SO_ERROR: return IntOpt(tcp_ ? tcp_->TakeError() : udp_->TakeError(), optlen);
      case SO_REUSEADDR: return IntOpt(reuse_addr_, optlen);
      case SO_REUSEPORT: return IntOpt(endpoint().reuse_port(), optlen);
      case SO_ACCEPTCONN:
        return IntOpt(tcp_ && tcp_->state() == netstack::TcpState::kListen, optlen);
      case SO_RCVBUF:
        return IntOpt(rcvbuf_ ? rcvbuf_ : (tcp_ ? 131072 : kMaxBuf), optlen);
      case SO_SNDBUF:
        return IntOpt(sndbuf_ ? sndbuf_ : (tcp_ ? 16384 : kMaxBuf), optlen);
      case SO_KEEPALIVE: return IntOpt(tcp_ ? tcp_->keepalive().on : udp_keepalive_, optlen);
      case SO_BROADCAST: return IntOpt(broadcast_, optlen);
      default: return Errno(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP && tcp_) {
    switch (name) {
      case TCP_NODELAY: return IntOpt(nodelay_, optlen);
      case TCP_MAXSEG: return IntOpt(tcp_->mss(), optlen);
      case TCP_KEEPIDLE: return IntOpt(tcp_->keepalive().idle_s, optlen);
      case TCP_KEEPINTVL: return IntOpt(tcp_->keepalive().intvl_s, optlen);
      case TCP_KEEPCNT: return IntOpt(tcp_->keepalive().cnt, optlen);
      case TCP_INFO: return TcpInfoBytes(tcp_->info(), optlen);
      case TCP_CONGESTION: {
        // do_tcp_getsockopt(): the name NUL-padded to TCP_CA_NAME_MAX,
        // cut to the caller's length.
        std::string n = tcp_->congestion_control();
        n.resize(std::min(optlen, netstack::TcpEndpoint::kCcNameMax), '\0');
        return n;
      }
      default: return Errno(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_IP) {
    if (auto r = GetIpOpt(name, optlen)) return *r;
  }
  if (auto r = GetRawOpt(level, name, optlen)) return *r;
  if (level == IPPROTO_IPV6 && family_ == AF_INET6) return GetIpv6Opt(name, optlen);
  return InetGetSockOptLevelError(family_, type(), level);
}

Status NetstackSocket::SetSockOpt(Task&, int level, int name, const std::string& val) {
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_REUSEADDR: {
        SV_ASSIGN_OR_RETURN(int v, GetInt(val));
        reuse_addr_ = v != 0;
        if (tcp_) tcp_->SetReuseAddr(reuse_addr_);
        if (udp_) udp_->SetReuseAddr(reuse_addr_);
        return {};
      }
      case SO_REUSEPORT: {
        // sk_reuseport, read by the bind rules and the lookups.
        SV_ASSIGN_OR_RETURN(int v, GetInt(val));
        endpoint().SetReusePort(v != 0);
        return {};
      }
      case SO_KEEPALIVE: {
        // sock_setsockopt(): TCP's timer starts or stops; on UDP it is a flag.
        SV_ASSIGN_OR_RETURN(int v, GetInt(val));
        if (tcp_) {
          netstack::TcpEndpoint::Keepalive k = tcp_->keepalive();
          k.on = v != 0;
          tcp_->SetKeepalive(k);
        } else {
          udp_keepalive_ = v != 0;
        }
        return {};
      }
      case SO_BROADCAST: {
        SV_ASSIGN_OR_RETURN(int v, GetInt(val));
        broadcast_ = v != 0;
        if (udp_) udp_->SetBroadcast(broadcast_);
        return {};
      }
      case SO_RCVBUF:
      case SO_SNDBUF: {
        SV_ASSIGN_OR_RETURN(int v, GetInt(val));
        bool rcv = name == SO_RCVBUF;
        int b = ClampBuf(v, rcv ? kMinRcvbuf : kMinSndbuf);
        (rcv ? rcvbuf_ : sndbuf_) = b;
        // The doubled value covers bookkeeping too (tcp_adv_win_scale):
        // the payload room is half of it for TCP's receive side.
        size_t room = rcv && tcp_ ? size_t(b) / 2 : size_t(b);
        if (tcp_) tcp_->SetBufferSizes(rcv ? room : 0, rcv ? 0 : room);
        if (udp_) udp_->SetBufferSizes(rcv ? room : 0, rcv ? 0 : room);
        return {};
      }
      default:
        return Errno(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP && tcp_ &&
      (name == TCP_KEEPIDLE || name == TCP_KEEPINTVL || name == TCP_KEEPCNT)) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    // do_tcp_setsockopt(): 1..MAX_TCP_KEEPIDLE/KEEPINTVL/KEEPCNT.
    netstack::TcpEndpoint::Keepalive k = tcp_->keepalive();
    using T = netstack::TcpEndpoint;
    int max = name == TCP_KEEPIDLE ? T::kMaxKeepIdleS
              : name == TCP_KEEPINTVL ? T::kMaxKeepIntvlS : T::kMaxKeepCnt;
    if (v < 1 || v > max) return Errno(EINVAL);
    (name == TCP_KEEPIDLE ? k.idle_s : name == TCP_KEEPINTVL ? k.intvl_s : k.cnt) = v;
    tcp_->SetKeepalive(k);
    return {};
  }
  if (level == IPPROTO_TCP && tcp_ && name == TCP_CONGESTION) {
    // do_tcp_setsockopt(): at most TCP_CA_NAME_MAX - 1 bytes, up to a NUL;
    // tcp_set_congestion_control(): an unknown name is ENOENT. Both of
    // ours are in Linux's default tcp_allowed_congestion_control.
    if (val.empty()) return Errno(EINVAL);
    std::string_view n(val.data(), std::min(val.size(), netstack::TcpEndpoint::kCcNameMax - 1));
    return tcp_->SetCongestionControl(n.substr(0, n.find('\0')));
  }
  if (level == IPPROTO_TCP && tcp_ && name == TCP_NODELAY) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    nodelay_ = v != 0;
    tcp_->SetNoDelay(nodelay_);
    return {};
  }
  if (level == IPPROTO_IP) {
    if (auto r = SetIpOpt(name, val)) return *r;
  }
  if (auto r = SetRawOpt(level, name, val)) return *r;
  if (level == IPPROTO_IPV6 && family_ == AF_INET6) return SetIpv6Opt(name, val);
  return Errno(ENOPROTOOPT);
}

std::optional<Result<std::string>> NetstackSocket::GetRawOpt(int level, int name,
                                                             size_t optlen) {
  if (!udp_ || !udp_->raw()) return std::nullopt;
  const bool six = family_ == AF_INET6;
  if ((level == SOL_RAW && name == kIcmpFilter && !six) ||
      (level == SOL_ICMPV6 && name == ICMP6_FILTER && six)) {
    // raw_geticmpfilter(): 4 bytes; rawv6_geticmpfilter(): 32.
    std::array<uint32_t, 8> f = udp_->IcmpFilter();
    std::string out(reinterpret_cast<const char*>(f.data()), six ? sizeof f : sizeof f[0]);
    out.resize(std::min(optlen, out.size()));
    return out;
  }
  if (level == SOL_RAW && name == IPV6_CHECKSUM && six) return IntOpt(2, optlen);
  if (level == SOL_RAW || level == SOL_ICMPV6) return Errno(ENOPROTOOPT);
  return std::nullopt;
}

std::optional<Status> NetstackSocket::SetRawOpt(int level, int name, const std::string& val) {
  if (!udp_ || !udp_->raw()) return std::nullopt;
  const bool six = family_ == AF_INET6;
  if ((level == SOL_RAW && name == kIcmpFilter && !six) ||
      (level == SOL_ICMPV6 && name == ICMP6_FILTER && six)) {
    // raw_seticmpfilter(), rawv6_seticmpfilter(): as much as was given.
    std::array<uint32_t, 8> f{};
    memcpy(f.data(), val.data(), std::min(val.size(), six ? sizeof f : sizeof f[0]));
    udp_->SetIcmpFilter(f);
    return Status{};
  }
  if (level == SOL_RAW && name == IPV6_CHECKSUM && six) {
    // ICMPv6's checksum is always the kernel's, at offset 2.
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    return v == 2 ? Status{} : Status(Errno(EINVAL));
  }
  if (level == SOL_RAW || level == SOL_ICMPV6) return Status(Errno(ENOPROTOOPT));
  return std::nullopt;
}

// IP_RECVERR, IP_TTL, IP_TOS and the flags of inet_cmsg.h, also on an
// AF_INET6 socket, for its IPv4 peers (ipv6_setsockopt() passes SOL_IP on
// to ip_setsockopt(), but not a raw socket's).
std::optional<Result<std::string>> NetstackSocket::GetIpOpt(int name, size_t optlen) {
  if (family_ == AF_INET6 && udp_ && udp_->raw()) return std::nullopt;
  switch (name) {
    case IP_RECVERR:
      if (!udp_) return std::nullopt;
      return IpIntOpt(udp_->RecvErr(false), optlen);
    case IP_TTL: {
      int ttl = endpoint().ip_tx().ttl;  // -1: ip_default_ttl
      return IpIntOpt(ttl < 0 ? netstack::Endpoint::kDefaultTtl : ttl, optlen);
    }
    case IP_TOS: return IpIntOpt(endpoint().ip_tx().tos, optlen);
    case IP_PKTINFO: return IpIntOpt(rx_.pktinfo, optlen);
    case IP_RECVTTL: return IpIntOpt(rx_.recvttl, optlen);
    case IP_RECVTOS: return IpIntOpt(rx_.recvtos, optlen);
    default: return std::nullopt;
  }
}

std::optional<Status> NetstackSocket::SetIpOpt(int name, const std::string& val) {
  if (family_ == AF_INET6 && udp_ && udp_->raw()) return std::nullopt;
  const int v = IpVal(val);
  switch (name) {
    case IP_RECVERR: {
      if (!udp_) return std::nullopt;
      SV_ASSIGN_OR_RETURN(int on, GetInt(val));
      udp_->SetRecvErr(false, on != 0);
      return Status{};
    }
    case IP_TTL: {
      if (val.empty() || (v != -1 && (v < 1 || v > 255))) return Status(Errno(EINVAL));
      netstack::Endpoint::IpTx tx = endpoint().ip_tx();
      tx.ttl = v;
      endpoint().SetIpTx(tx);
      return Status{};
    }
    case IP_TOS: {
      // __ip_sock_set_tos(): TCP keeps its ECN bits.
      netstack::Endpoint::IpTx tx = endpoint().ip_tx();
      tx.tos = tcp_ ? uint8_t((v & ~3) | (tx.tos & 3)) : uint8_t(v);
      endpoint().SetIpTx(tx);
      return Status{};
    }
    case IP_PKTINFO: rx_.pktinfo = v != 0; return Status{};
    case IP_RECVTTL: rx_.recvttl = v != 0; return Status{};
    case IP_RECVTOS: rx_.recvtos = v != 0; return Status{};
    default: return std::nullopt;
  }
}

Result<std::string> NetstackSocket::GetIpv6Opt(int name, size_t optlen) {
  switch (name) {
    case IPV6_V6ONLY: return IntOpt(v6only_, optlen);
    case IPV6_RECVERR:
      if (!udp_) break;
      return IntOpt(udp_->RecvErr(true), optlen);
    case IPV6_RECVPKTINFO: return IntOpt(rx_.rxinfo, optlen);
    case IPV6_2292PKTINFO: return IntOpt(rx_.rxoinfo, optlen);
    case IPV6_RECVHOPLIMIT: return IntOpt(rx_.rxhlim, optlen);
    case IPV6_2292HOPLIMIT: return IntOpt(rx_.rxohlim, optlen);
    case IPV6_RECVTCLASS: return IntOpt(rx_.rxtclass, optlen);
    case IPV6_TCLASS: return IntOpt(endpoint().ip_tx().tclass, optlen);
    case IPV6_UNICAST_HOPS: {
      int hops = endpoint().ip_tx().hops;  // -1: the route's, the devices' 64
      return IntOpt(hops < 0 ? netstack::Endpoint::kDefaultTtl : hops, optlen);
    }
  }
  return Errno(ENOPROTOOPT);
}

Status NetstackSocket::SetIpv6Opt(int name, const std::string& val) {
  if (name == IPV6_RECVERR && udp_) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    udp_->SetRecvErr(true, v != 0);
    return {};
  }
  // do_ipv6_setsockopt(): each of these wants a whole int.
  bool* flag = name == IPV6_RECVPKTINFO    ? &rx_.rxinfo
               : name == IPV6_2292PKTINFO  ? &rx_.rxoinfo
               : name == IPV6_RECVHOPLIMIT ? &rx_.rxhlim
               : name == IPV6_2292HOPLIMIT ? &rx_.rxohlim
               : name == IPV6_RECVTCLASS   ? &rx_.rxtclass
                                           : nullptr;
  if (flag) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    *flag = v != 0;
    return {};
  }
  if (name == IPV6_UNICAST_HOPS || name == IPV6_TCLASS) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    if (v < -1 || v > 255) return Errno(EINVAL);
    netstack::Endpoint::IpTx tx = endpoint().ip_tx();
    if (name == IPV6_UNICAST_HOPS) {
      tx.hops = v;
    } else {
      // RFC 3542 6.5: -1 is the default, 0; TCP keeps its ECN bits.
      if (v == -1) v = 0;
      tx.tclass = tcp_ ? uint8_t((v & ~3) | (tx.tclass & 3)) : uint8_t(v);
    }
    endpoint().SetIpTx(tx);
    return {};
  }
  if (name != IPV6_V6ONLY) return Errno(ENOPROTOOPT);
  SV_ASSIGN_OR_RETURN(int v, GetInt(val));
  // do_ipv6_setsockopt(): only before the socket has a port.
  SV_TRY(endpoint().SetFamily6(v != 0));
  v6only_ = v != 0;
  return {};
}

}  // namespace seedvisor::sentry
