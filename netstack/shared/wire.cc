#include "netstack/shared/wire.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>

namespace seedvisor::netstack {

std::string FormatIp4(Ip4 a) {
  char buf[16];
  snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.v >> 24, (a.v >> 16) & 0xff, (a.v >> 8) & 0xff,
           a.v & 0xff);
  return buf;
}

std::string FormatIp(const IpAddr& a) {
  if (a.is_v4()) return FormatIp4(a.v4());
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a.b.data(), buf, sizeof buf);
  return buf;
}

std::string FormatMac(const MacAddr& m) {
  char buf[18];
  snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

uint32_t ChecksumPartial(std::string_view data, uint32_t sum) {
  const uint8_t* p = U8(data);
  size_t n = data.size();
  while (n >= 2) {
    sum += Get16(p);
    p += 2;
    n -= 2;
    if (sum & 0x80000000u) sum = (sum & 0xffff) + (sum >> 16);
  }
  if (n) sum += uint32_t(p[0]) << 8;
  return sum;
}

uint16_t ChecksumFinish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

uint32_t PseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto, uint32_t len) {
  if (src.is_v4() && dst.is_v4()) {
    uint32_t s = src.v4().v, d = dst.v4().v;
    return (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + proto + (len & 0xffff);
  }
  uint32_t sum = (len >> 16) + (len & 0xffff) + proto;
  for (int i = 0; i < 16; i += 2) sum += Get16(&src.b[i]) + Get16(&dst.b[i]);
  return sum;
}

bool ParseEth(std::string_view frame, EthHeader* h) {
  if (frame.size() < kEthHeaderLen) return false;
  const uint8_t* p = U8(frame);
  memcpy(h->dst.data(), p, 6);
  memcpy(h->src.data(), p + 6, 6);
  h->type = Get16(p + 12);
  return true;
}

void AppendEth(std::string* out, const EthHeader& h) {
  uint8_t b[kEthHeaderLen];
  memcpy(b, h.dst.data(), 6);
  memcpy(b + 6, h.src.data(), 6);
  Put16(b + 12, h.type);
  out->append(reinterpret_cast<const char*>(b), sizeof b);
}

bool ParseArp(std::string_view pkt, ArpPacket* a) {
  if (pkt.size() < kArpLen) return false;
  const uint8_t* p = U8(pkt);
  if (Get16(p) != 1 || Get16(p + 2) != kEtherTypeIp4 || p[4] != 6 || p[5] != 4) return false;
  a->op = Get16(p + 6);
  if (a->op != kArpRequest && a->op != kArpReply) return false;
  memcpy(a->sha.data(), p + 8, 6);
  a->spa = Ip4{Get32(p + 14)};
  memcpy(a->tha.data(), p + 18, 6);
  a->tpa = Ip4{Get32(p + 24)};
  return true;
}

void AppendArp(std::string* out, const ArpPacket& a) {
  uint8_t b[kArpLen];
  Put16(b, 1);
  Put16(b + 2, kEtherTypeIp4);
  b[4] = 6;
  b[5] = 4;
  Put16(b + 6, a.op);
  memcpy(b + 8, a.sha.data(), 6);
  Put32(b + 14, a.spa.v);
  memcpy(b + 18, a.tha.data(), 6);
  Put32(b + 24, a.tpa.v);
  out->append(reinterpret_cast<const char*>(b), sizeof b);
}

Ip4ParseError ParseIp4(std::string_view pkt, Ip4Header* h) {
  if (pkt.size() < kIp4MinHeaderLen) return Ip4ParseError::kTruncated;
  const uint8_t* p = U8(pkt);
  if ((p[0] >> 4) != 4) return Ip4ParseError::kVersion;
  h->header_len = uint8_t((p[0] & 0xf) * 4);
  if (h->header_len < kIp4MinHeaderLen || h->header_len > pkt.size()) {
    return Ip4ParseError::kHeaderLen;
  }
  h->tos = p[1];
  h->total_len = Get16(p + 2);
  if (h->total_len < h->header_len || h->total_len > pkt.size()) return Ip4ParseError::kTotalLen;
  if (ChecksumFinish(ChecksumPartial(pkt.substr(0, h->header_len))) != 0) {
    return Ip4ParseError::kChecksum;
  }
  h->id = Get16(p + 4);
  h->frag = Get16(p + 6);
  h->ttl = p[8];
  h->proto = p[9];
  h->src = Ip4{Get32(p + 12)};
  h->dst = Ip4{Get32(p + 16)};
  return Ip4ParseError::kOk;
}

void AppendIp4(std::string* out, const Ip4Header& h) {
  uint8_t b[kIp4MinHeaderLen] = {};
  b[0] = 0x45;
  b[1] = h.tos;
  Put16(b + 2, h.total_len);
  Put16(b + 4, h.id);
  Put16(b + 6, h.frag);
  b[8] = h.ttl;
  b[9] = h.proto;
  Put32(b + 12, h.src.v);
  Put32(b + 16, h.dst.v);
  Put16(b + 10, ChecksumFinish(ChecksumPartial(
                    std::string_view(reinterpret_cast<const char*>(b), sizeof b))));
  out->append(reinterpret_cast<const char*>(b), sizeof b);
}

bool ParseUdp(std::string_view seg, UdpHeader* h) {
  if (seg.size() < kUdpHeaderLen) return false;
  const uint8_t* p = U8(seg);
  h->src_port = Get16(p);
  h->dst_port = Get16(p + 2);
  h->len = Get16(p + 4);
  h->checksum = Get16(p + 6);
  return h->len >= kUdpHeaderLen && h->len <= seg.size();
}

bool ParseTcp(std::string_view seg, TcpHeader* h) {
  if (seg.size() < kTcpMinHeaderLen) return false;
  const uint8_t* p = U8(seg);
  h->src_port = Get16(p);
  h->dst_port = Get16(p + 2);
  h->seq = Get32(p + 4);
  h->ack = Get32(p + 8);
  h->header_len = uint8_t((p[12] >> 4) * 4);
  if (h->header_len < kTcpMinHeaderLen || h->header_len > seg.size()) return false;
  h->flags = p[13] & 0x3f;
  h->window = Get16(p + 14);
  h->urgent = Get16(p + 18);
  h->mss = 0;
  h->wscale = -1;
  h->sack_permitted = false;
  h->sack_count = 0;
  h->ts = false;
  h->tsval = h->tsecr = 0;
  size_t i = kTcpMinHeaderLen;
  while (i < h->header_len) {
    uint8_t kind = p[i];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // no-op
      ++i;
      continue;
    }
    if (i + 1 >= h->header_len) return false;
    uint8_t len = p[i + 1];
    if (len < 2 || i + len > h->header_len) return false;
    const uint8_t* o = p + i + 2;
    if (kind == 2) {
      if (len != 4) return false;
      h->mss = Get16(o);
    } else if (kind == 3 && len == 3) {
      h->wscale = int8_t(std::min<uint8_t>(o[0], 127));
    } else if (kind == 4 && len == 2) {
      h->sack_permitted = true;
    } else if (kind == 5 && len >= 10 && (len - 2) % 8 == 0) {
      h->sack_count = uint8_t(std::min<size_t>((len - 2) / 8, kTcpMaxSackBlocks));
      for (size_t k = 0; k < h->sack_count; ++k) {
        h->sack[k] = {Get32(o + 8 * k), Get32(o + 8 * k + 4)};
      }
    } else if (kind == 8 && len == 10) {
      h->ts = true;
      h->tsval = Get32(o);
      h->tsecr = Get32(o + 4);
    }
    i += len;
  }
  return true;
}

void AppendTcp(std::string* out, const TcpHeader& h, const IpAddr& src, const IpAddr& dst,
               std::string_view payload, bool csum_partial) {
  uint8_t opt[40];
  size_t ol = 0;
  if (h.mss) {
    opt[ol++] = 2;
    opt[ol++] = 4;
    Put16(opt + ol, h.mss);
    ol += 2;
  }
  if (h.ts) {
    opt[ol++] = h.sack_permitted ? 4 : 1;
    opt[ol++] = h.sack_permitted ? 2 : 1;
    opt[ol++] = 8;
    opt[ol++] = 10;
    Put32(opt + ol, h.tsval);
    Put32(opt + ol + 4, h.tsecr);
    ol += 8;
  } else if (h.sack_permitted) {
    opt[ol++] = 1;
    opt[ol++] = 1;
    opt[ol++] = 4;
    opt[ol++] = 2;
  }
  if (h.wscale >= 0) {
    opt[ol++] = 1;
    opt[ol++] = 3;
    opt[ol++] = 3;
    opt[ol++] = uint8_t(h.wscale);
  }
  size_t blocks = std::min<size_t>(h.sack_count, (sizeof opt - ol - 4) / 8);
  if (blocks) {
    opt[ol++] = 1;
    opt[ol++] = 1;
    opt[ol++] = 5;
    opt[ol++] = uint8_t(2 + 8 * blocks);
    for (size_t k = 0; k < blocks; ++k) {
      Put32(opt + ol, h.sack[k].left);
      Put32(opt + ol + 4, h.sack[k].right);
      ol += 8;
    }
  }
  size_t hl = kTcpMinHeaderLen + ol;  // every option above is a multiple of 4 bytes
  size_t start = out->size();
  out->resize(start + hl);
  uint8_t* b = U8(*out) + start;
  memset(b, 0, kTcpMinHeaderLen);
  memcpy(b + kTcpMinHeaderLen, opt, ol);
  Put16(b, h.src_port);
  Put16(b + 2, h.dst_port);
  Put32(b + 4, h.seq);
  Put32(b + 8, h.ack);
  b[12] = uint8_t((hl / 4) << 4);
  b[13] = h.flags;
  Put16(b + 14, h.window);
  Put16(b + 18, h.urgent);
  out->append(payload);
  std::string_view seg(out->data() + start, hl + payload.size());
  uint32_t sum = PseudoHeaderSum(src, dst, kProtoTcp, uint16_t(seg.size()));
  // Partial: the folded pseudo-header sum, which the device completes.
  Put16(U8(*out) + start + 16,
        csum_partial ? uint16_t(~ChecksumFinish(sum)) : ChecksumFinish(ChecksumPartial(seg, sum)));
}

}  // namespace seedvisor::netstack
