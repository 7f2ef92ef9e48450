#include "netstack/shared/wire6.h"

#include <cstring>

namespace seedvisor::netstack {

Ip6ParseError ParseIp6(std::string_view pkt, Ip6Header* h) {
  if (pkt.size() < kIp6HeaderLen) return Ip6ParseError::kTruncated;
  const uint8_t* p = U8(pkt);
  if ((p[0] >> 4) != 6) return Ip6ParseError::kVersion;
  h->traffic_class = uint8_t((p[0] & 0xf) << 4 | p[1] >> 4);
  h->flow_label = (uint32_t(p[1] & 0xf) << 16) | Get16(p + 2);
  h->payload_len = Get16(p + 4);
  if (kIp6HeaderLen + h->payload_len > pkt.size()) return Ip6ParseError::kPayloadLen;
  h->next_header = p[6];
  h->hop_limit = p[7];
  h->src = IpAddr::FromBytes(p + 8);
  h->dst = IpAddr::FromBytes(p + 24);
  return Ip6ParseError::kOk;
}

void AppendIp6(std::string* out, const Ip6Header& h) {
  uint8_t b[kIp6HeaderLen];
  b[0] = uint8_t(0x60 | h.traffic_class >> 4);
  b[1] = uint8_t((h.traffic_class & 0xf) << 4 | ((h.flow_label >> 16) & 0xf));
  Put16(b + 2, uint16_t(h.flow_label));
  Put16(b + 4, h.payload_len);
  b[6] = h.next_header;
  b[7] = h.hop_limit;
  memcpy(b + 8, h.src.b.data(), 16);
  memcpy(b + 24, h.dst.b.data(), 16);
  out->append(reinterpret_cast<const char*>(b), sizeof b);
}

void FinishIcmp6(std::string* msg, const IpAddr& src, const IpAddr& dst) {
  Put16(U8(*msg) + 2, 0);
  uint32_t sum = PseudoHeaderSum(src, dst, kProtoIcmp6, uint32_t(msg->size()));
  Put16(U8(*msg) + 2, ChecksumFinish(ChecksumPartial(*msg, sum)));
}

bool ParseNd(std::string_view msg, NdMessage* m) {
  constexpr size_t kNdLen = 24;  // type, code, checksum, flags/reserved, target
  if (msg.size() < kNdLen) return false;
  const uint8_t* p = U8(msg);
  if (p[1] != 0) return false;
  m->type = p[0];
  m->flags = Get32(p + 4);
  m->target = IpAddr::FromBytes(p + 8);
  if (m->target.multicast()) return false;
  m->has_lladdr = false;
  uint8_t want = m->type == kIcmp6NeighborSolicit ? kNdOptSourceLinkAddr : kNdOptTargetLinkAddr;
  for (size_t i = kNdLen; i < msg.size();) {
    if (msg.size() - i < 2) return false;
    size_t len = size_t(p[i + 1]) * 8;
    if (len == 0 || i + len > msg.size()) return false;
    if (p[i] == want && len >= 8) {
      m->has_lladdr = true;
      memcpy(m->lladdr.data(), p + i + 2, 6);
    }
    i += len;
  }
  return true;
}

std::string BuildNd(const NdMessage& m) {
  std::string out(32, '\0');
  uint8_t* p = U8(out);
  p[0] = m.type;
  Put32(p + 4, m.flags);
  memcpy(p + 8, m.target.b.data(), 16);
  p[24] = m.type == kIcmp6NeighborSolicit ? kNdOptSourceLinkAddr : kNdOptTargetLinkAddr;
  p[25] = 1;  // 8 bytes
  memcpy(p + 26, m.lladdr.data(), 6);
  return out;
}

IpAddr SolicitedNode(const IpAddr& a) {
  IpAddr s;
  s.b[0] = 0xff;
  s.b[1] = 0x02;
  s.b[11] = 0x01;
  s.b[12] = 0xff;
  s.b[13] = a.b[13];
  s.b[14] = a.b[14];
  s.b[15] = a.b[15];
  return s;
}

MacAddr MulticastMac(const IpAddr& a) { return {0x33, 0x33, a.b[12], a.b[13], a.b[14], a.b[15]}; }

IpAddr LinkLocalFromMac(const MacAddr& mac) {
  IpAddr a;
  a.b[0] = 0xfe;
  a.b[1] = 0x80;
  a.b[8] = mac[0] ^ 0x02;
  a.b[9] = mac[1];
  a.b[10] = mac[2];
  a.b[11] = 0xff;
  a.b[12] = 0xfe;
  a.b[13] = mac[3];
  a.b[14] = mac[4];
  a.b[15] = mac[5];
  return a;
}

}  // namespace seedvisor::netstack
