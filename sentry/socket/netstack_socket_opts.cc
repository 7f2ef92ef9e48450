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
  if (level == IPPROTO_IP && udp_ && name == IP_RECVERR) {
    return IntOpt(udp_->RecvErr(false), optlen);
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
  // IP_RECVERR: also on an AF_INET6 socket, for its IPv4 peers
  // (ipv6_setsockopt() passes SOL_IP on to ip_setsockopt()).
  if (level == IPPROTO_IP && udp_ && name == IP_RECVERR) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    udp_->SetRecvErr(false, v != 0);
    return {};
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

Result<std::string> NetstackSocket::GetIpv6Opt(int name, size_t optlen) {
  if (name == IPV6_V6ONLY) return IntOpt(v6only_, optlen);
  if (name == IPV6_RECVERR && udp_) return IntOpt(udp_->RecvErr(true), optlen);
  return Errno(ENOPROTOOPT);
}

Status NetstackSocket::SetIpv6Opt(int name, const std::string& val) {
  if (name == IPV6_RECVERR && udp_) {
    SV_ASSIGN_OR_RETURN(int v, GetInt(val));
    udp_->SetRecvErr(true, v != 0);
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
