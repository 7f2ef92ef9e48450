// Wire formats of the protocols the netstack speaks: Ethernet II, ARP for
// IPv4 over Ethernet, IPv4, ICMPv4, UDP and TCP. Parsing never reads past
// the bytes it was given: every Parse* returns false on a short or
// malformed header, and the caller counts the drop under a reason.
//
//   EthHeader eth;
//   if (!ParseEth(frame, &eth)) { ++stats.eth_malformed; return; }
//   std::string_view ip = frame.substr(kEthHeaderLen);
#ifndef SEEDVISOR_NETSTACK_SHARED_WIRE_H_
#define SEEDVISOR_NETSTACK_SHARED_WIRE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "netstack/shared/ip_addr.h"

namespace seedvisor::netstack {

using MacAddr = std::array<uint8_t, 6>;
inline constexpr MacAddr kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::string FormatMac(const MacAddr& m);

// Big-endian field access on raw bytes.
inline uint16_t Get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void Put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline const uint8_t* U8(std::string_view s) {
  // SAFETY: char and uint8_t have the same size and alignment; the bytes are
  // only read.
  return reinterpret_cast<const uint8_t*>(s.data());
}
inline uint8_t* U8(std::string& s) {
  // SAFETY: as above; the string owns the bytes written.
  return reinterpret_cast<uint8_t*>(s.data());
}

// The Internet checksum (RFC 1071) of `data`, folded, starting from
// `initial` (a partial sum such as a pseudo-header's). Returns the one's
// complement, ready to store; a buffer that includes a correct checksum sums
// to 0.
uint32_t ChecksumPartial(std::string_view data, uint32_t initial = 0);
uint16_t ChecksumFinish(uint32_t sum);
// The TCP/UDP pseudo-header's partial sum (RFC 793 3.1, RFC 768).
// IPv6's (RFC 8200 8.1) when the addresses are not IPv4-mapped.
uint32_t PseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t len);

// ---- Ethernet II ----
inline constexpr size_t kEthHeaderLen = 14;
inline constexpr uint16_t kEtherTypeIp4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIp6 = 0x86dd;
struct EthHeader {
  MacAddr dst{}, src{};
  uint16_t type = 0;
};
bool ParseEth(std::string_view frame, EthHeader* h);
void AppendEth(std::string* out, const EthHeader& h);

// ---- ARP (RFC 826), Ethernet/IPv4 only ----
inline constexpr size_t kArpLen = 28;
inline constexpr uint16_t kArpRequest = 1, kArpReply = 2;
struct ArpPacket {
  uint16_t op = 0;
  MacAddr sha{}, tha{};
  Ip4 spa, tpa;
};
// False unless htype=1, ptype=IPv4, hlen=6, plen=4 and the op is 1 or 2.
bool ParseArp(std::string_view pkt, ArpPacket* a);
void AppendArp(std::string* out, const ArpPacket& a);

// ---- IPv4 (RFC 791) ----
inline constexpr size_t kIp4MinHeaderLen = 20;
inline constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17;
inline constexpr uint16_t kIpFlagDF = 0x4000, kIpFlagMF = 0x2000, kIpOffsetMask = 0x1fff;
struct Ip4Header {
  uint8_t header_len = 20;  // bytes
  uint8_t tos = 0;
  uint16_t total_len = 0;
  uint16_t id = 0;
  uint16_t frag = 0;  // flags and offset in 8-byte units, as on the wire
  uint8_t ttl = 0;
  uint8_t proto = 0;
  Ip4 src, dst;
  bool more_fragments() const { return frag & kIpFlagMF; }
  uint32_t frag_offset() const { return uint32_t(frag & kIpOffsetMask) * 8; }
};
enum class Ip4ParseError { kOk, kTruncated, kVersion, kHeaderLen, kTotalLen, kChecksum };
// Checks version, header length, total length against the bytes present
// (trailing link padding is allowed and ignored) and the header checksum.
Ip4ParseError ParseIp4(std::string_view pkt, Ip4Header* h);
// Appends a 20-byte header (no options) with its checksum.
void AppendIp4(std::string* out, const Ip4Header& h);

// ---- ICMPv4 (RFC 792) ----
inline constexpr size_t kIcmpHeaderLen = 8;
inline constexpr uint8_t kIcmpEchoReply = 0, kIcmpDestUnreach = 3, kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11, kIcmpParamProblem = 12;
inline constexpr uint8_t kIcmpPortUnreach = 3, kIcmpFragNeeded = 4;

// ---- UDP (RFC 768) ----
inline constexpr size_t kUdpHeaderLen = 8;
struct UdpHeader {
  uint16_t src_port = 0, dst_port = 0, len = 0, checksum = 0;
};
bool ParseUdp(std::string_view seg, UdpHeader* h);

// ---- TCP (RFC 793/9293) ----
inline constexpr size_t kTcpMinHeaderLen = 20;
inline constexpr size_t kTcpMaxHeaderLen = 60;
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                         kTcpAck = 0x10, kTcpUrg = 0x20;
inline constexpr uint8_t kTcpMaxWindowScale = 14;  // RFC 7323 2.3
// One SACK block (RFC 2018 3): the sequence numbers [left, right) held.
struct TcpSackBlock {
  uint32_t left = 0, right = 0;
  bool operator==(const TcpSackBlock&) const = default;
};
inline constexpr size_t kTcpMaxSackBlocks = 4;
struct TcpHeader {
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t header_len = 20;  // bytes
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t urgent = 0;
  uint16_t mss = 0;          // the MSS option, 0 if absent
  int8_t wscale = -1;        // the window scale option's shift (RFC 7323 2.2), -1 if absent
  bool sack_permitted = false;  // SACK-permitted (RFC 2018 2)
  uint8_t sack_count = 0;    // SACK blocks in `sack` (RFC 2018 3)
  TcpSackBlock sack[kTcpMaxSackBlocks];
  bool ts = false;           // the timestamps option (RFC 7323 3): TSval, TSecr
  uint32_t tsval = 0, tsecr = 0;
};
// The timestamps option as Linux aligns it (NOP NOP TS 10 TSval TSecr):
// what it takes from each segment's payload room.
inline constexpr uint32_t kTcpTsAlignedLen = 12;
// Parses the header and the options it knows (MSS, window scale,
// SACK-permitted, SACK, timestamps); a malformed option list (a length that runs past
// the header, a length < 2, an MSS option that is not 4 bytes) fails the
// parse. A known option of the wrong length is ignored, as
// tcp_parse_options() does.
bool ParseTcp(std::string_view seg, TcpHeader* h);
// Appends a TCP header and `payload`, with the checksum over the
// pseudo-header. Options, in Linux's order and padding
// (tcp_options_write()): MSS if h.mss != 0; with h.ts, SACK-permitted (if
// h.sack_permitted, else NOP NOP) and the timestamps; without, NOP NOP
// SACK-permitted if h.sack_permitted; NOP window scale if h.wscale >= 0;
// NOP NOP SACK with h.sack_count blocks (at most 4; 3 if there are other
// options). `csum_partial`: the checksum field gets only the folded
// pseudo-header sum, for a device to complete (CHECKSUM_PARTIAL; the
// stack's SendIp completes it for a NIC that does not).
void AppendTcp(std::string* out, const TcpHeader& h, const IpAddr& src, const IpAddr& dst,
               std::string_view payload, bool csum_partial = false);

// The IP header the stack puts before a segment to `dst` (no options): what
// an MSS leaves room for.
inline uint32_t IpHeaderLen(const IpAddr& dst) { return dst.is_v4() ? 20 : 40; }
// The MSS an MTU allows toward `dst` (at most 65495, as Linux's).
inline uint16_t MssForMtu(uint32_t mtu, const IpAddr& dst) {
  uint32_t m = mtu - IpHeaderLen(dst) - kTcpMinHeaderLen;
  return uint16_t(m > 65495 ? 65495 : m);
}

// Sequence-number arithmetic modulo 2^32 (RFC 793 3.3).
inline bool SeqLt(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
inline bool SeqLeq(uint32_t a, uint32_t b) { return int32_t(a - b) <= 0; }
inline bool SeqGt(uint32_t a, uint32_t b) { return int32_t(a - b) > 0; }
inline bool SeqGeq(uint32_t a, uint32_t b) { return int32_t(a - b) >= 0; }

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_WIRE_H_
