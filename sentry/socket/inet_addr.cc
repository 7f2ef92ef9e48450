#include "sentry/socket/inet_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace seedvisor::sentry {

using netstack::IpAddr;
using netstack::Ip4;
using netstack::SockAddr;

namespace {

Result<SockAddr> ParseIn(const std::string& a) {
  if (a.size() < sizeof(sockaddr_in)) return Errno(EINVAL);
  sockaddr_in sin;
  memcpy(&sin, a.data(), sizeof sin);
  return SockAddr{Ip4{ntohl(sin.sin_addr.s_addr)}, ntohs(sin.sin_port)};
}

}  // namespace

Result<SockAddr> ParseInetAddr(int family, const std::string& addr, InetUse use, bool v6only) {
  if (addr.size() < sizeof(sa_family_t)) return Errno(EINVAL);
  sa_family_t fam;
  memcpy(&fam, addr.data(), sizeof fam);
  if (family == AF_INET) {
    if (addr.size() < sizeof(sockaddr_in)) return Errno(EINVAL);
    if (fam != AF_INET) return Errno(EAFNOSUPPORT);
    return ParseIn(addr);
  }
  if (fam == AF_INET && use == InetUse::kConnect) {
    if (v6only) return Errno(EAFNOSUPPORT);
    return ParseIn(addr);
  }
  // SIN6_LEN_RFC2133: the 24 bytes before sin6_scope_id suffice (then
  // there is no scope: InetScopeId()).
  if (addr.size() < 24) return Errno(EINVAL);
  if (fam != AF_INET6) return Errno(EAFNOSUPPORT);
  sockaddr_in6 sin6{};
  memcpy(&sin6, addr.data(), std::min(addr.size(), sizeof sin6));
  SockAddr out;
  out.ip = IpAddr::FromBytes(sin6.sin6_addr.s6_addr);
  out.port = ntohs(sin6.sin6_port);
  return out;
}

uint32_t InetScopeId(const std::string& addr) {
  if (addr.size() < sizeof(sockaddr_in6)) return 0;
  sockaddr_in6 sin6;
  memcpy(&sin6, addr.data(), sizeof sin6);
  return sin6.sin6_family == AF_INET6 ? sin6.sin6_scope_id : 0;
}

std::string FormatInetAddr(int family, const SockAddr& a, uint32_t scope) {
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(a.port);
    sin.sin_addr.s_addr = htonl(a.ip.is_v4() ? a.ip.v4().v : 0);
    return std::string(reinterpret_cast<const char*>(&sin), sizeof sin);
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(a.port);
  // The unspecified IPv4 address of an unbound endpoint reads as ::.
  IpAddr ip = a.ip.any() ? IpAddr{} : a.ip;
  memcpy(sin6.sin6_addr.s6_addr, ip.b.data(), 16);
  sin6.sin6_scope_id = scope;
  return std::string(reinterpret_cast<const char*>(&sin6), sizeof sin6);
}

}  // namespace seedvisor::sentry
