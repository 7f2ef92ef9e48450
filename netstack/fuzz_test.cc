// Hostile input from the device: a few thousand malformed, truncated,
// oversized and mutated frames (deterministic: a fixed seed, or
// NETSTACK_FUZZ_SEED), with mutations re-checksummed half of the time so
// that they get past the IPv4 and transport checks into the protocol code.
// The stack must not crash or hang, every frame it sends must be well
// formed, and afterwards it must still answer a ping and a new connection.
#include <cstdlib>
#include <random>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::OneStack;
using testing::Parsed;
using testing::PeerTcp;

// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of a
// frame, where the headers are long enough to hold them.
void FixChecksums(std::string& f) {
  if (f.size() < kEthHeaderLen + kIp4MinHeaderLen || Get16(U8(f) + 12) != kEtherTypeIp4) return;
  uint8_t* ip = U8(f) + kEthHeaderLen;
  size_t ihl = size_t(ip[0] & 0xf) * 4;
  size_t avail = f.size() - kEthHeaderLen;
  if (ihl < kIp4MinHeaderLen || ihl > avail) return;
  Put16(ip + 10, 0);
  Put16(ip + 10, ChecksumFinish(ChecksumPartial(std::string_view(f).substr(kEthHeaderLen, ihl))));
  size_t total = std::min<size_t>(Get16(ip + 2), avail);
  if (total <= ihl) return;
  std::string_view l4 = std::string_view(f).substr(kEthHeaderLen + ihl, total - ihl);
  uint8_t* p = U8(f) + kEthHeaderLen + ihl;
  Ip4 src{Get32(ip + 12)}, dst{Get32(ip + 16)};
  size_t at;
  uint32_t sum = 0;
  if (ip[9] == kProtoTcp && l4.size() >= 20) {
    at = 16;
    sum = PseudoHeaderSum(src, dst, kProtoTcp, uint16_t(l4.size()));
  } else if (ip[9] == kProtoUdp && l4.size() >= 8) {
    at = 6;
    sum = PseudoHeaderSum(src, dst, kProtoUdp, uint16_t(l4.size()));
  } else if (ip[9] == kProtoIcmp && l4.size() >= 4) {
    at = 2;
  } else {
    return;
  }
  Put16(p + at, 0);
  Put16(p + at, ChecksumFinish(ChecksumPartial(l4, sum)));
}

TEST(Fuzz, HostileFramesNeitherCrashNorHang) {
  uint64_t seed = 0x5eed;
  if (const char* e = getenv("NETSTACK_FUZZ_SEED")) seed = strtoull(e, nullptr, 0);
  std::mt19937_64 rng(seed);
  OneStack s;
  auto listener = s.stack->NewTcp();
  ASSERT_TRUE(listener->Bind({Ip4{}, 80}).ok());
  ASSERT_TRUE(listener->Listen(64).ok());
  auto udp = s.stack->NewUdp();
  ASSERT_TRUE(udp->Bind({Ip4{}, 53}).ok());
  // One established connection whose sequence space mutations can hit.
  s.Deliver(PeerTcp(40000, 80, 100, 0, kTcpSyn, 65535, {}, 1460));
  Parsed sa = s.Next();
  uint32_t iss = sa.tcp.seq;
  s.Deliver(PeerTcp(40000, 80, 101, iss + 1, kTcpAck, 65535));
  auto conn = listener->Accept().value();
  ASSERT_TRUE(conn->Send("server data").ok());
  s.link.frames.clear();

  std::string echo = std::string("\x08\x00\x00\x00\x00\x01\x00\x01", 8) + "abcdefgh";
  Put16(U8(echo) + 2, ChecksumFinish(ChecksumPartial(echo)));
  const std::vector<std::string> seeds = {
      testing::PeerArp(kArpRequest, testing::kOurIp),
      testing::PeerArp(kArpReply, testing::kOurIp, testing::kOurMac),
      testing::PeerIpFrame(kProtoIcmp, echo),
      testing::PeerUdp(1000, 53, "query"),
      PeerTcp(40001, 80, 5, 0, kTcpSyn, 65535, {}, 1460),
      PeerTcp(40000, 80, 101, iss + 1, kTcpAck | kTcpPsh, 65535, "client data"),
      PeerTcp(40000, 80, 101, iss + 12, kTcpAck | kTcpFin, 0),
      PeerTcp(40000, 80, 101, iss + 1, kTcpRst, 0),
      testing::PeerIpFrame(kProtoUdp, std::string(16, 'f'), testing::kPeerIp, testing::kOurIp, 9,
                           kIpFlagMF),
      testing::PeerIpFrame(kProtoUdp, std::string(8, 'g'), testing::kPeerIp, testing::kOurIp, 9, 2),
  };
  constexpr int kFrames = 6000;
  uint64_t sent_frames = 0;
  for (int i = 0; i < kFrames; ++i) {
    std::string f;
    int kind = int(rng() % 6);
    const std::string& base = seeds[rng() % seeds.size()];
    switch (kind) {
      case 0: {  // random bytes behind a plausible Ethernet header
        f = base.substr(0, kEthHeaderLen);
        size_t n = rng() % 1600;
        for (size_t k = 0; k < n; ++k) f.push_back(char(rng()));
        break;
      }
      case 1:  // truncated
        f = base.substr(0, rng() % (base.size() + 1));
        break;
      case 2:  // bit flips
      case 3: {
        f = base;
        int flips = 1 + int(rng() % 8);
        for (int k = 0; k < flips; ++k) U8(f)[rng() % f.size()] ^= uint8_t(1u << (rng() % 8));
        break;
      }
      case 4: {  // header fields overwritten with extreme values
        f = base;
        size_t at = kEthHeaderLen + rng() % std::min<size_t>(60, f.size() - kEthHeaderLen);
        static const uint8_t kExtremes[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x45, 0x4f, 0x40};
        U8(f)[at] = kExtremes[rng() % sizeof kExtremes];
        if (rng() % 2) U8(f)[std::min(at + 1, f.size() - 1)] = uint8_t(rng());
        break;
      }
      case 5: {  // oversized: a jumbo frame with length fields at their maximum
        f = base;
        f.append(60000 + rng() % 10000, char(rng()));
        if (f.size() > kEthHeaderLen + 4) Put16(U8(f) + kEthHeaderLen + 2, 0xffff);
        break;
      }
    }
    if (kind >= 2 && rng() % 2) FixChecksums(f);
    s.Deliver(f);
    if (rng() % 50 == 0) s.Advance(int64_t(rng() % 5'000'000'000));
    // Whatever the stack answers must be well formed (ParseFrame checks
    // every checksum), and no bigger than the MTU.
    while (auto out = s.link.Pop()) {
      ++sent_frames;
      EXPECT_LE(out->size(), kEthHeaderLen + 1500);
      Parsed p = testing::ParseFrame(*out);
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "bad frame after input " << i << " (seed " << seed << ")";
        return;
      }
    }
  }
  RecordProperty("frames_answered", std::to_string(sent_frames));
  // Still alive: a ping and a fresh connection work.
  s.Deliver(testing::PeerIpFrame(kProtoIcmp, echo));
  Parsed pong = s.Next();
  EXPECT_EQ(pong.ip.proto, kProtoIcmp);
  EXPECT_EQ(uint8_t(pong.payload[0]), kIcmpEchoReply);
  s.Deliver(PeerTcp(45000, 80, 7, 0, kTcpSyn, 65535, {}, 1460));
  Parsed sa2 = s.Next();
  EXPECT_EQ(sa2.tcp.flags, kTcpSyn | kTcpAck);
  conn->Close();
  listener->Close();
  udp->Close();
}

}  // namespace
}  // namespace seedvisor::netstack
