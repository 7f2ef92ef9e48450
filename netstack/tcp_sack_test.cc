// TCP SACK (RFC 2018, RFC 6675) and D-SACK against a hand-driven peer,
// hostile SACK floods included.
#include <cstdio>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"
#include "netstack/testing/passive_peer.h"

namespace seedvisor::netstack {
namespace {

using testing::Be32;
using testing::OneStack;
using testing::Parsed;
using testing::Passive;
using testing::PeerTcp;
using testing::SackOpt;
using testing::TcpOptions;
using testing::kPeerIp;
using testing::kMss1460Ws7;
using testing::kPeerIss;
using testing::kPeerPort;
using testing::kPort;

const std::string kMss1460Sack("\x02\x04\x05\xb4\x01\x01\x04\x02", 8);

// Offered in our SYN (net.ipv4.tcp_sack), answered only to an offer,
// neither with tcp_sack off.
TEST(TcpSack, PermittedOfferedAndAnswered) {
  {
    OneStack s;
    Passive p(s, 0, 65535, 0, kMss1460Sack);
    ASSERT_TRUE(p.conn);
    EXPECT_EQ(p.synack_opts, kMss1460Sack);  // no window scale: none offered
    EXPECT_TRUE(p.conn->info().sack_ok);
  }
  {
    OneStack s;
    Passive p(s, 0, 65535, 0, std::string("\x02\x04\x05\xb4\x01\x03\x03\x07", 8));
    EXPECT_EQ(p.synack_opts, kMss1460Ws7);
    EXPECT_FALSE(p.conn->info().sack_ok);
  }
  {
    OneStack s(true, 1500, /*sack=*/false);
    auto c = s.stack->NewTcp();
    EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
    EXPECT_EQ(TcpOptions(s.link.frames.front()), kMss1460Ws7);
    s.Next();
    c->Close();
    Passive p(s, 0, 65535, 0, std::string("\x02\x04\x05\xb4\x01\x01\x04\x02\x01\x03\x03\x07", 12));
    EXPECT_EQ(p.synack_opts, kMss1460Ws7);
    EXPECT_FALSE(p.conn->info().sack_ok);
  }
}

// Every ACK while out-of-order data waits names it: the block with the
// latest segment first, then the rest from the highest.
TEST(TcpSack, BlocksForOutOfOrderData) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.ack = p.iss + 1;
  uint32_t base = kPeerIss + 1;
  auto ack_opts = [&] {
    EXPECT_FALSE(s.Quiet());
    std::string o = s.Quiet() ? "" : TcpOptions(s.link.frames.front());
    Parsed a = s.Next();
    EXPECT_EQ(a.tcp.ack, base);
    return o;
  };
  p.Data("BBBB", 4);
  EXPECT_EQ(ack_opts(), SackOpt({{base + 4, base + 8}}));
  p.Data("DDDD", 12);
  EXPECT_EQ(ack_opts(), SackOpt({{base + 12, base + 16}, {base + 4, base + 8}}));
  p.Data("FFFF", 20);
  p.s.Next();
  p.Data("CCCC", 8);  // joins B and D
  EXPECT_EQ(ack_opts(), SackOpt({{base + 4, base + 16}, {base + 20, base + 24}}));
  p.Data("AAAA", 0);
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.ack, base + 16);
  EXPECT_EQ(a.tcp.sack_count, 1);  // F is still out of order
  p.Data("EEEE", 16);
  a = s.Next();
  EXPECT_EQ(a.tcp.ack, base + 24);
  EXPECT_EQ(a.tcp.sack_count, 0);
  EXPECT_EQ(p.Read(), "AAAABBBBCCCCDDDDEEEEFFFF");
}

// RFC 6675 as sender: segments 1 and 4 of 0..7 are lost. The third
// duplicate ACK starts recovery with segment 1; segment 4 goes out as soon
// as the scoreboard has more than 2 segments SACKed above it, in the same
// round trip, without waiting for a partial ACK (NewReno would).
TEST(TcpSack, SenderRetransmitsEveryHoleInOneRoundTrip) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(8 * 1460, 'z')).ok());
  std::vector<uint32_t> seg;
  for (int i = 0; i < 8; ++i) seg.push_back(s.Next().tcp.seq);
  uint32_t end = seg[7] + 1460;
  auto ack = [&](uint32_t a, std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
    s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, a, kTcpAck, 65535,
                                   blocks.size() ? SackOpt(blocks) : std::string()));
  };
  ack(seg[1], {});                        // segment 0
  ack(seg[1], {{seg[2], seg[3]}});        // 2
  ack(seg[1], {{seg[2], seg[4]}});        // 3
  EXPECT_TRUE(s.Quiet());
  ack(seg[1], {{seg[5], seg[6]}, {seg[2], seg[4]}});  // 5: third duplicate
  Parsed r1 = s.Next();
  EXPECT_EQ(r1.tcp.seq, seg[1]);
  EXPECT_EQ(r1.payload.size(), 1460u);
  EXPECT_TRUE(s.Quiet());
  ack(seg[1], {{seg[5], seg[7]}, {seg[2], seg[4]}});  // 6: 4 not lost yet
  EXPECT_TRUE(s.Quiet());
  ack(seg[1], {{seg[5], end}, {seg[2], seg[4]}});  // 7: 3 segments above 4
  Parsed r4 = s.Next();
  EXPECT_EQ(r4.tcp.seq, seg[4]);
  EXPECT_EQ(r4.payload.size(), 1460u);
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().tcp_sack_recoveries, 1u);
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 0u);
  ack(end, {});
  EXPECT_EQ(p.conn->Unsent(), 0u);
  EXPECT_TRUE(s.Quiet());
}

// A hostile peer: thousands of 1-byte segments out of order, thousands
// of disjoint 1-byte SACK blocks. Both stay bounded; the connection works.
TEST(TcpSack, HostileOutOfOrderAndSackFloodsStayBounded) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.ack = p.iss + 1;
  for (uint32_t i = 0; i < 5000; ++i) {
    p.Data("x", 2 + 2 * i);
    s.link.frames.clear();
  }
  EXPECT_EQ(s.stack->stats().tcp_ooo_overflow, 5000u - TcpEndpoint::kMaxOooSegments);
  // The blocks of each ACK come from the ranges kept as segments came,
  // not from a walk of the whole queue (4096 entries per segment before).
  uint64_t scan = s.stack->stats().tcp_sack_scan;
  EXPECT_LE(scan, 5000u * 8);
  p.Data("a", 0);
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.ack, kPeerIss + 2);
  EXPECT_EQ(a.tcp.sack_count, 4);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(10 * 1460, 'y')).ok());
  s.link.frames.clear();
  uint32_t base = p.iss + 1;
  for (uint32_t i = 0; i < 2000; ++i) {
    std::string opt = "\x01\x01\x05\x22";
    for (uint32_t k = 0; k < 4; ++k) {
      uint32_t l = base + 1 + 2 * ((i * 4 + k) % 7000);
      opt += Be32(l) + Be32(l + 1);
    }
    s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 2, base, kTcpAck, 65535, opt));
    s.link.frames.clear();
  }
  EXPECT_EQ(p.conn->info().sack_ranges, TcpEndpoint::kMaxSackRanges);
  uint64_t scan2 = s.stack->stats().tcp_sack_scan - scan;
  std::printf("SACK ranges looked at: %llu for 5000 out-of-order segments, %llu for 2000 ACKs\n",
              (unsigned long long)scan, (unsigned long long)scan2);
  EXPECT_LE(scan2, 2000u * TcpEndpoint::kMaxSackRanges);
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 2, base + 10 * 1460, kTcpAck, 65535));
  EXPECT_EQ(p.conn->info().sack_ranges, 0u);
  EXPECT_EQ(p.conn->Unsent(), 0u);
}

// SACK agreed, but the peer's duplicate ACKs carry no blocks (a peer that
// only says it can, or a middlebox that strips them): three of them still
// start a fast retransmit, and recovery is NewReno's (RFC 6582) with the
// scoreboard empty: a partial ACK resends the next hole at once, a full
// one ends it. The old code counted only ACKs that SACKed new data, so
// only the RTO recovered.
TEST(TcpSack, DuplicateAcksWithoutBlocksStillFastRetransmit) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  ASSERT_TRUE(p.conn->info().sack_ok);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(5 * 1460, 'n')).ok());
  std::vector<uint32_t> seg;
  for (int i = 0; i < 5; ++i) seg.push_back(s.Next().tcp.seq);
  uint32_t end = seg[4] + 1460;
  auto ack = [&](uint32_t a) {
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, a, kTcpAck, 65535));
  };
  ack(seg[1]);  // segment 0; 1 and 3 are lost
  ack(seg[1]);
  ack(seg[1]);
  EXPECT_TRUE(s.Quiet());
  ack(seg[1]);  // the third duplicate
  ASSERT_FALSE(s.Quiet()) << "no fast retransmit";
  Parsed r1 = s.Next();
  EXPECT_EQ(r1.tcp.seq, seg[1]);
  EXPECT_EQ(r1.payload.size(), 1460u);
  EXPECT_EQ(s.stack->stats().tcp_fast_retransmits, 1u);
  EXPECT_EQ(s.stack->stats().tcp_sack_recoveries, 0u);
  EXPECT_EQ(p.conn->info().sack_ranges, 0u);
  ack(seg[3]);  // partial: 3 is the next hole
  ASSERT_FALSE(s.Quiet());
  Parsed r3 = s.Next();
  EXPECT_EQ(r3.tcp.seq, seg[3]);
  EXPECT_EQ(r3.payload.size(), 1460u);
  EXPECT_TRUE(s.Quiet());
  ack(end);
  EXPECT_EQ(p.conn->Unsent(), 0u);
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 0u);
  EXPECT_EQ(s.stack->stats().tcp_retransmits, 2u);
}

// RFC 2883 as receiver: a duplicate is reported once, in the first block
// of the next ACK: a whole old segment, a duplicate of out-of-order data
// (then the block that holds it), the old half of a segment.
TEST(TcpSack, DsackReportsEachDuplicateOnce) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.ack = p.iss + 1;
  const uint32_t base = kPeerIss + 1;
  auto ack_opts = [&] {
    EXPECT_FALSE(s.Quiet());
    std::string o = s.Quiet() ? "" : TcpOptions(s.link.frames.front());
    if (!s.Quiet()) s.Next();
    return o;
  };
  p.Data("AAAA", 0);
  EXPECT_EQ(ack_opts(), "");
  p.Data("AAAA", 0);
  EXPECT_EQ(ack_opts(), SackOpt({{base, base + 4}}));
  p.Data("CCCC", 8);
  EXPECT_EQ(ack_opts(), SackOpt({{base + 8, base + 12}}));
  p.Data("CCCC", 8);
  EXPECT_EQ(ack_opts(), SackOpt({{base + 8, base + 12}, {base + 8, base + 12}}));
  p.Data("AABB", 2);
  EXPECT_EQ(ack_opts(), SackOpt({{base + 2, base + 4}, {base + 8, base + 12}}));
  EXPECT_EQ(p.Read(), "AAAABB");
  EXPECT_EQ(s.stack->stats().tcp_dsack_sent, 3u);
}

// RFC 2883 as sender: a first block below the ACK or inside the second is
// a D-SACK: counted (TCP_INFO's tcpi_dsack_dups), never new SACKed data,
// so three ACKs that carry only D-SACKs start no recovery.
TEST(TcpSack, DsackBlocksAreCountedNotSacked) {
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(4 * 1460, 'z')).ok());
  std::vector<uint32_t> seg;
  for (int i = 0; i < 4; ++i) seg.push_back(s.Next().tcp.seq);
  auto ack = [&](uint32_t a, std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
    s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, a, kTcpAck, 65535,
                                   SackOpt(blocks)));
  };
  ack(seg[1], {{seg[2], seg[3]}});
  EXPECT_EQ(p.conn->info().sack_ranges, 1u);
  ack(seg[1], {{seg[0], seg[1]}, {seg[2], seg[3]}});     // below the ACK
  ack(seg[1], {{seg[2], seg[2] + 100}, {seg[2], seg[3]}});  // inside the second
  ack(seg[1], {{seg[0], seg[0] + 100}});
  TcpEndpoint::Info i = p.conn->info();
  EXPECT_EQ(i.dsack_dups, 3u);
  EXPECT_EQ(i.sack_ranges, 1u);
  EXPECT_EQ(i.sacked_segs, 1u);
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().tcp_sack_recoveries, 0u);
  EXPECT_EQ(s.stack->stats().tcp_dsack_received, 3u);
}

// A retransmission is of bytes sent before, never of the queue behind
// them: four 100-byte segments fill the peer's 400-byte window, more data
// waits, the first is lost and the rest SACKed. The whole-MSS resend from
// the hole's start (CVE-2019-11478 fix) stops at snd_max; the code before
// sent 1460 bytes, 1060 never sent, moving neither snd_nxt nor snd_max, so
// that the peer's ACK of them was dropped and the RTOs repeated.
TEST(TcpSack, RetransmissionNeverCarriesUnsentData) {
  OneStack s;
  Passive p(s, 0, 400, 0, kMss1460Sack);
  ASSERT_TRUE(p.conn);
  p.conn->SetNoDelay(true);
  for (char c : {'a', 'b', 'c', 'd'}) ASSERT_TRUE(p.conn->Send(std::string(100, c)).ok());
  ASSERT_TRUE(p.conn->Send(std::string(3000, 'q')).ok());  // waits for the window
  const uint32_t una = p.iss + 1;
  uint32_t sent_end = una;
  while (!s.Quiet()) {
    Parsed f = s.Next();
    uint32_t e = f.tcp.seq + uint32_t(f.payload.size());
    if (SeqGt(e, sent_end)) sent_end = e;
  }
  ASSERT_EQ(sent_end - una, 400u);
  auto ack = [&](uint32_t a, const std::string& opt) {
    s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, a, kTcpAck, 400, opt));
  };
  ack(una, SackOpt({{una + 100, una + 200}}));
  ack(una, SackOpt({{una + 100, una + 300}}));
  ack(una, SackOpt({{una + 100, una + 400}}));  // the third duplicate
  ASSERT_FALSE(s.Quiet()) << "no fast retransmit";
  size_t resent = 0;
  while (!s.Quiet()) {
    Parsed f = s.Next();
    if (f.payload.empty()) continue;
    ++resent;
    EXPECT_EQ(f.tcp.seq, una);
    EXPECT_LE(f.payload.size(), 400u) << "a retransmission carried data never sent";
  }
  EXPECT_EQ(resent, 1u);
  // The peer acknowledges what it got; the rest flows and completes.
  for (int i = 0; i < 40 && p.conn->Unsent() > 0; ++i) {
    ack(sent_end, std::string());
    while (!s.Quiet()) {
      Parsed f = s.Next();
      uint32_t e = f.tcp.seq + uint32_t(f.payload.size());
      if (SeqGt(e, sent_end)) sent_end = e;
    }
  }
  EXPECT_EQ(p.conn->Unsent(), 0u);
  EXPECT_EQ(sent_end - una, 3400u);
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 0u);
}

// CVE-2019-11478's class. The peer SACKs every other byte of the first
// 2 KB in flight (255 ACKs, 1020 one-byte ranges) while the pipe is full,
// then frees the pipe with one ACK that SACKs the rest. Every ACK may
// release at most a congestion window of segments (cwnd / MSS), each a
// whole MSS from a hole's start unless it ends the data: never the
// thousand one-byte retransmissions the holes' shape asks for (the old
// code sent 1025 frames for the last ACK, 1021 of them one byte long).
struct TinyHoleAttack {
  size_t acks = 0, frames = 0, most = 0, short_frames = 0, over_cwnd = 0;
  uint64_t scan = 0;  // Stats::tcp_sack_scan
};
TinyHoleAttack RunTinyHoleAttack() {
  TinyHoleAttack r;
  OneStack s;
  Passive p(s, 0, 65535, 0, kMss1460Sack);
  if (!p.conn) return r;
  p.conn->SetNoDelay(true);
  constexpr uint32_t kMss = 1460, kData = 20 * kMss;
  EXPECT_TRUE(p.conn->Send(std::string(kData, 'h')).ok());
  uint32_t una = p.iss + 1, data_end = una + kData;
  uint32_t flight = 0;
  while (!s.Quiet()) flight += uint32_t(s.Next().payload.size());
  EXPECT_EQ(flight, 10 * kMss);  // the initial window
  uint32_t sent_end = una + flight;
  auto ack = [&](const std::string& opt) {
    uint32_t allowed = std::max<uint32_t>(p.conn->info().cwnd / kMss, 1);
    s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, una, kTcpAck, 65535, opt));
    ++r.acks;
    size_t n = 0;
    while (!s.Quiet()) {
      Parsed f = s.Next();
      if (f.payload.empty()) continue;
      ++n;
      uint32_t e = f.tcp.seq + uint32_t(f.payload.size());
      if (SeqGt(e, sent_end)) sent_end = e;
      if (f.payload.size() < kMss && e != data_end) ++r.short_frames;
    }
    if (n > allowed) ++r.over_cwnd;
    r.frames += n;
    r.most = std::max(r.most, n);
  };
  for (uint32_t i = 0; i < 255; ++i) {
    std::string opt = "\x01\x01\x05\x22";
    for (uint32_t k = 0; k < 4; ++k) {
      uint32_t l = una + 1 + 2 * (4 * i + k);
      opt += Be32(l) + Be32(l + 1);
    }
    ack(opt);
  }
  EXPECT_EQ(p.conn->info().sack_ranges, 1020u);
  EXPECT_EQ(s.stack->stats().tcp_sack_recoveries, 1u);
  ack(SackOpt({{una + 4000, una + flight}}));
  r.scan = s.stack->stats().tcp_sack_scan;
  // The connection still completes: the peer acknowledges all it got.
  for (int i = 0; i < 40 && p.conn->Unsent() > 0; ++i) {
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, sent_end, kTcpAck, 65535));
    while (!s.Quiet()) {
      Parsed f = s.Next();
      uint32_t e = f.tcp.seq + uint32_t(f.payload.size());
      if (SeqGt(e, sent_end)) sent_end = e;
    }
  }
  EXPECT_EQ(p.conn->Unsent(), 0u);
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 0u);
  return r;
}

TEST(TcpSack, TinyHolesReleaseWholeSegmentsAtMostACwndPerAck) {
  TinyHoleAttack r = RunTinyHoleAttack();
  std::printf("%zu ACKs released %zu frames (at most %zu from one), %zu shorter than the MSS\n",
              r.acks, r.frames, r.most, r.short_frames);
  EXPECT_EQ(r.acks, 256u);
  EXPECT_EQ(r.over_cwnd, 0u);
  EXPECT_EQ(r.short_frames, 0u);
  EXPECT_LE(r.frames, 20u);  // the data is 20 segments
}

// The same attack 40 times over (10,240 hostile ACKs): each ACK looks at
// about one scoreboard's worth of ranges (at most 1024), counted, not
// timed (the old code looked at ~3 million per releasing ACK: for every
// one-byte hole it resent, it walked the scoreboard three times).
TEST(TcpSack, TenThousandHostileAcksCostBoundedWork) {
  timespec t0, t1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  TinyHoleAttack sum;
  for (int round = 0; round < 40; ++round) {
    TinyHoleAttack r = RunTinyHoleAttack();
    sum.acks += r.acks;
    sum.frames += r.frames;
    sum.over_cwnd += r.over_cwnd;
    sum.short_frames += r.short_frames;
    sum.scan += r.scan;
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
  double cpu_s = double(t1.tv_sec - t0.tv_sec) + 1e-9 * double(t1.tv_nsec - t0.tv_nsec);
  std::printf("%zu hostile ACKs: %llu scoreboard ranges looked at (%.0f per ACK), %zu frames, "
              "%.3f s CPU (the test's, frames built and parsed included)\n",
              sum.acks, (unsigned long long)sum.scan, double(sum.scan) / double(sum.acks),
              sum.frames, cpu_s);
  EXPECT_EQ(sum.acks, 40u * 256);
  EXPECT_EQ(sum.over_cwnd, 0u);
  EXPECT_EQ(sum.short_frames, 0u);
  EXPECT_LE(sum.scan, uint64_t(sum.acks) * TcpEndpoint::kMaxSackRanges);
}

}  // namespace
}  // namespace seedvisor::netstack
