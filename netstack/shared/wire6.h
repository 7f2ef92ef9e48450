// Wire formats of IPv6 (RFC 8200), ICMPv6 (RFC 4443) and Neighbor
// Discovery (RFC 4861) as the netstack speaks them: the fixed header only
// (a packet with an extension header the host would have to walk is
// dropped and counted), echo, destination unreachable, and neighbour
// solicitation/advertisement with the link-layer address options. As in
// wire.h, every Parse* reads only the bytes it was given.
#ifndef SEEDVISOR_NETSTACK_SHARED_WIRE6_H_
#define SEEDVISOR_NETSTACK_SHARED_WIRE6_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

inline constexpr size_t kIp6HeaderLen = 40;
inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr uint32_t kIp6MinMtu = 1280;

struct Ip6Header {
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;  // 20 bits
  uint16_t payload_len = 0;
  uint8_t next_header = 0;
  uint8_t hop_limit = 0;
  IpAddr src, dst;
};
enum class Ip6ParseError { kOk, kTruncated, kVersion, kPayloadLen };
// Checks the version and that the payload length fits in the bytes present
// (trailing link padding is ignored).
Ip6ParseError ParseIp6(std::string_view pkt, Ip6Header* h);
void AppendIp6(std::string* out, const Ip6Header& h);

// ---- ICMPv6 ----
inline constexpr uint8_t kIcmp6DestUnreach = 1, kIcmp6PacketTooBig = 2;
inline constexpr uint8_t kIcmp6TimeExceeded = 3, kIcmp6ParamProblem = 4;
inline constexpr uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;
inline constexpr uint8_t kIcmp6RouterSolicit = 133, kIcmp6RouterAdvert = 134;
inline constexpr uint8_t kIcmp6NeighborSolicit = 135, kIcmp6NeighborAdvert = 136;
inline constexpr uint8_t kIcmp6PortUnreach = 4;
// Sets the checksum of the ICMPv6 message `msg` (its bytes 2-3) over the
// pseudo-header.
void FinishIcmp6(std::string* msg, const IpAddr& src, const IpAddr& dst);

// ---- Neighbor Discovery (RFC 4861 4.3, 4.4) ----
inline constexpr uint8_t kNdOptSourceLinkAddr = 1, kNdOptTargetLinkAddr = 2;
inline constexpr uint32_t kNaRouter = 0x80000000u, kNaSolicited = 0x40000000u,
                          kNaOverride = 0x20000000u;
struct NdMessage {
  uint8_t type = 0;     // kIcmp6NeighborSolicit or kIcmp6NeighborAdvert
  uint32_t flags = 0;   // NA: R, S, O
  IpAddr target;
  bool has_lladdr = false;  // the source (NS) or target (NA) link-layer option
  MacAddr lladdr{};
};
// `msg` is a whole NS or NA whose checksum was already checked; false on a
// short message, a non-zero code, a multicast target or a malformed option
// (a zero length or one past the end), as ndisc_recv_ns()/_na() drop.
bool ParseNd(std::string_view msg, NdMessage* m);
// An NS or NA with its link-layer option (checksum left 0: FinishIcmp6).
std::string BuildNd(const NdMessage& m);

// ff02::1:ffXX:XXXX, where a neighbour solicitation for `a` goes.
IpAddr SolicitedNode(const IpAddr& a);
inline constexpr IpAddr kIp6AllNodes = [] {
  IpAddr a;
  a.b[0] = 0xff;
  a.b[1] = 0x02;
  a.b[15] = 1;
  return a;
}();
// 33:33 + the low 32 bits (RFC 2464 7).
MacAddr MulticastMac(const IpAddr& a);
// fe80::/64 with the modified EUI-64 of `mac` (RFC 4291 2.5.1).
IpAddr LinkLocalFromMac(const MacAddr& mac);

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_WIRE6_H_
