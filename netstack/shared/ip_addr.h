// An IP address of either family, as one 16-byte value: IPv6 addresses as
// they are, IPv4 addresses in the IPv4-mapped form ::ffff:a.b.c.d (RFC 4291
// 2.5.5.2), which is also how a dual-stack AF_INET6 socket sees an IPv4
// peer. Endpoints, port tables, routes and neighbour caches key on it, so
// one code path serves both families; the IP layer picks IPv4 or IPv6 by
// is_v4(). An Ip4 converts implicitly.
//
//   IpAddr a = MakeIp4(10, 0, 0, 2);   // ::ffff:10.0.0.2, a.is_v4()
//   IpAddr b = kIp6Loopback;           // ::1
#ifndef SEEDVISOR_NETSTACK_SHARED_IP_ADDR_H_
#define SEEDVISOR_NETSTACK_SHARED_IP_ADDR_H_

#include <array>
#include <cstdint>
#include <string>

namespace seedvisor::netstack {

// An IPv4 address in host byte order (10.0.0.1 is 0x0a000001).
struct Ip4 {
  uint32_t v = 0;
  constexpr bool operator==(const Ip4&) const = default;
  constexpr auto operator<=>(const Ip4&) const = default;
  constexpr bool any() const { return v == 0; }
  constexpr bool loopback() const { return (v >> 24) == 127; }
  constexpr bool multicast() const { return (v >> 28) == 0xe; }
  constexpr bool broadcast() const { return v == 0xffffffffu; }
};
constexpr Ip4 MakeIp4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return Ip4{(uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | d};
}

struct IpAddr {
  std::array<uint8_t, 16> b{};

  constexpr IpAddr() = default;
  constexpr IpAddr(Ip4 a)  // NOLINT(google-explicit-constructor): ::ffff:a
      : b{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, uint8_t(a.v >> 24), uint8_t(a.v >> 16),
          uint8_t(a.v >> 8), uint8_t(a.v)} {}
  static IpAddr FromBytes(const uint8_t* p16) {
    IpAddr a;
    for (int i = 0; i < 16; ++i) a.b[i] = p16[i];
    return a;
  }
  constexpr bool operator==(const IpAddr&) const = default;
  constexpr auto operator<=>(const IpAddr&) const = default;

  // ::ffff:0:0/96, including ::ffff:0.0.0.0 (an AF_INET socket's INADDR_ANY).
  constexpr bool is_v4() const {
    for (int i = 0; i < 10; ++i) {
      if (b[i]) return false;
    }
    return b[10] == 0xff && b[11] == 0xff;
  }
  constexpr Ip4 v4() const {
    return Ip4{uint32_t(b[12]) << 24 | uint32_t(b[13]) << 16 | uint32_t(b[14]) << 8 | b[15]};
  }
  constexpr bool zero() const {
    for (uint8_t x : b) {
      if (x) return false;
    }
    return true;
  }
  // The unspecified address of either family (:: or 0.0.0.0).
  constexpr bool any() const { return is_v4() ? v4().any() : zero(); }
  constexpr bool loopback() const {
    if (is_v4()) return v4().loopback();
    for (int i = 0; i < 15; ++i) {
      if (b[i]) return false;
    }
    return b[15] == 1;
  }
  constexpr bool multicast() const { return is_v4() ? v4().multicast() : b[0] == 0xff; }
  constexpr bool broadcast() const { return is_v4() && v4().broadcast(); }
  constexpr bool link_local() const {  // fe80::/10
    return !is_v4() && b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
  }
  // The first `bits` bits of both are equal (bits counted over all 128).
  constexpr bool SamePrefix(const IpAddr& o, int bits) const {
    for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
      uint8_t mask = bits >= 8 ? 0xff : uint8_t(0xff << (8 - bits));
      if ((b[i] & mask) != (o.b[i] & mask)) return false;
    }
    return true;
  }
  // This address with every bit past the first `bits` cleared.
  constexpr IpAddr Masked(int bits) const {
    IpAddr r = *this;
    for (int i = 0; i < 16; ++i, bits -= 8) {
      if (bits >= 8) continue;
      r.b[i] &= bits <= 0 ? 0 : uint8_t(0xff << (8 - bits));
    }
    return r;
  }
};

inline constexpr IpAddr kIp6Any{};
inline constexpr IpAddr kIp6Loopback = [] {
  IpAddr a;
  a.b[15] = 1;
  return a;
}();

// 1.2.3.4 for an IPv4(-mapped) address, RFC 5952 text otherwise.
std::string FormatIp(const IpAddr& a);
std::string FormatIp4(Ip4 a);

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_IP_ADDR_H_
