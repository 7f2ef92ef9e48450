#include "netstack/testing/harness.h"

#include <algorithm>
#include <cstring>

#include "gtest/gtest.h"

namespace seedvisor::netstack::testing {
namespace {

// An independent checksum (plain RFC 1071 loop) for the test's own frames.
uint16_t Csum(const std::string& b, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += uint32_t(uint8_t(b[i]) << 8 | uint8_t(b[i + 1]));
  if (b.size() % 2) sum += uint32_t(uint8_t(b.back()) << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}
void P16(std::string* s, uint16_t v) {
  s->push_back(char(v >> 8));
  s->push_back(char(v));
}
void P32(std::string* s, uint32_t v) {
  P16(s, uint16_t(v >> 16));
  P16(s, uint16_t(v));
}
std::string Eth(const MacAddr& dst, const MacAddr& src, uint16_t type) {
  std::string f(reinterpret_cast<const char*>(dst.data()), 6);
  f.append(reinterpret_cast<const char*>(src.data()), 6);
  P16(&f, type);
  return f;
}
uint32_t Pseudo(Ip4 s, Ip4 d, uint8_t proto, size_t len) {
  return (s.v >> 16) + (s.v & 0xffff) + (d.v >> 16) + (d.v & 0xffff) + proto + uint32_t(len);
}

}  // namespace

std::string PeerIpFrame(uint8_t proto, std::string_view l4, Ip4 src, Ip4 dst, uint16_t id,
                        uint16_t frag, uint8_t ttl) {
  std::string ip;
  ip.push_back(0x45);
  ip.push_back(0);
  P16(&ip, uint16_t(20 + l4.size()));
  P16(&ip, id);
  P16(&ip, frag);
  ip.push_back(char(ttl));
  ip.push_back(char(proto));
  P16(&ip, 0);
  P32(&ip, src.v);
  P32(&ip, dst.v);
  uint16_t c = Csum(ip);
  ip[10] = char(c >> 8);
  ip[11] = char(c);
  return Eth(kOurMac, kPeerMac, 0x0800) + ip + std::string(l4);
}

std::string PeerTcp(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                    uint16_t window, std::string_view payload, uint16_t mss) {
  std::string opts;
  if (mss) {
    opts = "\x02\x04";
    P16(&opts, mss);
  }
  return PeerTcpOpts(sport, dport, seq, ack, flags, window, opts, payload);
}

std::string PeerTcpOpts(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                        uint8_t flags, uint16_t window, std::string_view options,
                        std::string_view payload) {
  EXPECT_EQ(options.size() % 4, 0u);
  std::string t;
  P16(&t, sport);
  P16(&t, dport);
  P32(&t, seq);
  P32(&t, ack);
  t.push_back(char((5 + options.size() / 4) << 4));
  t.push_back(char(flags));
  P16(&t, window);
  P16(&t, 0);  // checksum
  P16(&t, 0);
  t += options;
  t += payload;
  uint16_t c = Csum(t, Pseudo(kPeerIp, kOurIp, 6, t.size()));
  t[16] = char(c >> 8);
  t[17] = char(c);
  return PeerIpFrame(6, t);
}

std::string TcpOptions(const std::string& frame) {
  size_t ip = kEthHeaderLen;
  size_t tcp = ip + (uint8_t(frame[ip]) & 0xf) * 4;
  size_t doff = (uint8_t(frame[tcp + 12]) >> 4) * 4;
  return frame.substr(tcp + 20, doff - 20);
}

std::string Be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string PeerUdp(uint16_t sport, uint16_t dport, std::string_view payload) {
  std::string u;
  P16(&u, sport);
  P16(&u, dport);
  P16(&u, uint16_t(8 + payload.size()));
  P16(&u, 0);
  u += payload;
  uint16_t c = Csum(u, Pseudo(kPeerIp, kOurIp, 17, u.size()));
  u[6] = char(c >> 8);
  u[7] = char(c);
  return PeerIpFrame(17, u);
}

std::string PeerArp(uint16_t op, Ip4 tpa, MacAddr tha) {
  std::string f = Eth(op == 1 ? kBroadcastMac : kOurMac, kPeerMac, 0x0806);
  P16(&f, 1);
  P16(&f, 0x0800);
  f.push_back(6);
  f.push_back(4);
  P16(&f, op);
  f.append(reinterpret_cast<const char*>(kPeerMac.data()), 6);
  P32(&f, kPeerIp.v);
  f.append(reinterpret_cast<const char*>(tha.data()), 6);
  P32(&f, tpa.v);
  return f;
}

Parsed ParseFrame(const std::string& f) {
  Parsed p;
  EXPECT_TRUE(ParseEth(f, &p.eth));
  std::string_view rest = std::string_view(f).substr(kEthHeaderLen);
  if (p.eth.type == kEtherTypeArp) {
    p.is_arp = true;
    EXPECT_TRUE(ParseArp(rest, &p.arp));
    return p;
  }
  EXPECT_EQ(p.eth.type, kEtherTypeIp4);
  p.is_ip = true;
  EXPECT_EQ(ParseIp4(rest, &p.ip), Ip4ParseError::kOk);
  std::string l4(rest.substr(p.ip.header_len, p.ip.total_len - p.ip.header_len));
  if (p.ip.frag_offset() != 0 || p.ip.more_fragments()) {
    p.payload = l4;
    return p;
  }
  if (p.ip.proto == kProtoTcp) {
    EXPECT_EQ(Csum(l4, Pseudo(p.ip.src, p.ip.dst, 6, l4.size())), 0) << "TCP checksum";
    EXPECT_TRUE(ParseTcp(l4, &p.tcp));
    p.payload = l4.substr(p.tcp.header_len);
  } else if (p.ip.proto == kProtoUdp) {
    EXPECT_EQ(Csum(l4, Pseudo(p.ip.src, p.ip.dst, 17, l4.size())), 0) << "UDP checksum";
    EXPECT_TRUE(ParseUdp(l4, &p.udp));
    p.payload = l4.substr(8);
  } else {
    EXPECT_EQ(Csum(l4), 0) << "ICMP checksum";
    p.payload = l4;
  }
  return p;
}

OneStack::OneStack(bool learn_peer, uint32_t mtu, bool sack, bool timestamps) {
  stack = std::make_unique<Stack>(StackOptions{.now_ns = clock.fn(),
                                               .secret_seed = 42,
                                               .timer_kick = nullptr,
                                               .tcp_sack = sack,
                                               .tcp_timestamps = timestamps});
  nic = stack->AddNic({"eth0", kOurMac, mtu}, &link).value();
  EXPECT_TRUE(stack->AddAddress(nic, {kOurIp, 24}).ok());
  if (learn_peer) {
    // The peer asks for us: we answer and learn its MAC (RFC 826 merge).
    Deliver(PeerArp(kArpRequest, kOurIp));
    link.frames.clear();
  }
}

OneStack::~OneStack() { stack.reset(); }

Parsed OneStack::Next() {
  for (;;) {
    auto f = link.Pop();
    EXPECT_TRUE(f.has_value()) << "the stack sent no frame";
    if (!f) return Parsed{};
    Parsed p = ParseFrame(*f);
    // The peer's neighbour entry expired (60 s): answer for the peer.
    if (answer_arp && p.is_arp && p.arp.op == kArpRequest && p.arp.tpa == kPeerIp) {
      Deliver(PeerArp(kArpReply, kOurIp, kOurMac));
      continue;
    }
    return p;
  }
}

std::vector<std::string> GsoCut(std::string_view frame, const TxOffload& o) {
  std::vector<std::string> out;
  const uint8_t* f = U8(frame);
  size_t ip = kEthHeaderLen;
  if (frame.size() < ip + kIp4MinHeaderLen || Get16(f + 12) != kEtherTypeIp4 || f[ip + 9] != kProtoTcp) {
    ADD_FAILURE() << "offloads on a frame that is no IPv4 TCP segment";
    return out;
  }
  size_t l4 = ip + size_t(f[ip] & 0xf) * 4;
  EXPECT_TRUE(o.csum_partial);
  EXPECT_EQ(o.csum_start, l4);
  EXPECT_EQ(o.csum_offset, 16);
  if (frame.size() < l4 + kTcpMinHeaderLen) return out;
  size_t hl = l4 + size_t(f[l4 + 12] >> 4) * 4;
  Ip4 src{Get32(f + ip + 12)}, dst{Get32(f + ip + 16)};
  // The field holds the folded pseudo-header sum over the whole segment,
  // from which the device's sum (and tcp_gso_segment()'s per-piece fix)
  // starts.
  EXPECT_EQ(Get16(f + l4 + 16),
            uint16_t(~ChecksumFinish(PseudoHeaderSum(src, dst, kProtoTcp, uint32_t(frame.size() - l4)))));
  std::string_view payload = frame.substr(hl);
  size_t step = payload.size();
  if (o.gso_size > 0) {
    EXPECT_EQ(o.hdr_len, hl);
    EXPECT_FALSE(o.gso_v6);
    EXPECT_GT(payload.size(), o.gso_size);
    step = o.gso_size;
  }
  uint32_t seq = Get32(f + l4 + 4);
  uint16_t id = Get16(f + ip + 4);
  for (size_t off = 0, k = 0; off < payload.size() || off == 0; off += step, ++k) {
    size_t n = std::min(step, payload.size() - off);
    std::string p(frame.substr(0, hl));
    p.append(payload.substr(off, n));
    uint8_t* b = U8(p);
    bool last = off + n >= payload.size();
    Put16(b + ip + 2, uint16_t(p.size() - ip));
    Put16(b + ip + 4, uint16_t(id + k));
    Put16(b + ip + 10, 0);
    Put16(b + ip + 10, ChecksumFinish(ChecksumPartial(std::string_view(p).substr(ip, l4 - ip))));
    Put32(b + l4 + 4, seq + uint32_t(off));
    if (!last) b[l4 + 13] &= uint8_t(~(kTcpPsh | kTcpFin));
    Put16(b + l4 + 16, 0);
    uint32_t sum = PseudoHeaderSum(src, dst, kProtoTcp, uint32_t(p.size() - l4));
    Put16(b + l4 + 16, ChecksumFinish(ChecksumPartial(std::string_view(p).substr(l4), sum)));
    out.push_back(std::move(p));
    if (last) break;
  }
  return out;
}

Wire::Wire(bool sack, bool timestamps) {
  ea_.w = eb_.w = this;
  for (auto [s, seed] : {std::pair{&a, 1}, {&b, 2}}) {
    *s = std::make_unique<Stack>(StackOptions{.now_ns = clock.fn(),
                                              .secret_seed = uint64_t(seed),
                                              .timer_kick = nullptr,
                                              .tcp_sack = sack,
                                              .tcp_timestamps = timestamps});
  }
  nic_a_ = a->AddNic({"eth0", kPeerMac, 1500}, &ea_).value();
  nic_b_ = b->AddNic({"eth0", kOurMac, 1500}, &eb_).value();
  EXPECT_TRUE(a->AddAddress(nic_a_, {kPeerIp, 24}).ok());
  EXPECT_TRUE(b->AddAddress(nic_b_, {kOurIp, 24}).ok());
}

Wire::~Wire() {
  a.reset();
  b.reset();
}

int Wire::Pump(int max) {
  int moved = 0;
  while (moved < max && (ea_.Ready() || eb_.Ready())) {
    if (ea_.Ready()) {
      std::string f = std::move(ea_.q.front().second);
      ea_.q.pop_front();
      bool drop = cut;
      Parsed p = ParseFrame(f);
      if (p.is_ip && p.ip.proto == kProtoTcp && !p.payload.empty()) {
        if (drop_a_data_at.count(a_data_frames++)) drop = true;
        if (!drop && drop_a_data > 0) {
          --drop_a_data;
          drop = true;
        }
      }
      if (!drop) b->DeliverFrame(nic_b_, f);
      ++moved;
    }
    if (eb_.Ready()) {
      std::string f = std::move(eb_.q.front().second);
      eb_.q.pop_front();
      if (!cut) a->DeliverFrame(nic_a_, f);
      ++moved;
    }
  }
  frames += uint64_t(moved);
  return moved;
}

void Wire::Run(int64_t ns) {
  Pump();
  for (int64_t t = 0; t < ns; t += 1'000'000) {
    clock.now += 1'000'000;
    a->Advance();
    b->Advance();
    Pump();
  }
}

}  // namespace seedvisor::netstack::testing
