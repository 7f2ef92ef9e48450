// Unit tests of the shared building blocks: checksums and header parsing,
// the timer wheel, the RTO estimator, reassembly, ports and secrets.
#include <vector>

#include "gtest/gtest.h"
#include "netstack/shared/byte_queue.h"
#include "netstack/shared/port_table.h"
#include "netstack/shared/reassembly.h"
#include "netstack/shared/rto.h"
#include "netstack/shared/secrets.h"
#include "netstack/shared/timer_wheel.h"
#include "netstack/shared/wire.h"

namespace seedvisor::netstack {
namespace {

TEST(Wire, ChecksumRfc1071Example) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  std::string b("\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", 8);
  EXPECT_EQ(ChecksumFinish(ChecksumPartial(b)), 0xffff - 0xddf2);
  // Odd length pads with a zero byte.
  EXPECT_EQ(ChecksumFinish(ChecksumPartial(std::string("\x01", 1))), 0xfeff);
}

TEST(Wire, Ip4HeaderRoundTripAndRejects) {
  Ip4Header h;
  h.total_len = 28;
  h.id = 7;
  h.ttl = 64;
  h.proto = kProtoUdp;
  h.src = MakeIp4(10, 0, 0, 1);
  h.dst = MakeIp4(10, 0, 0, 2);
  std::string p;
  AppendIp4(&p, h);
  p.append(8, 'x');
  Ip4Header g;
  ASSERT_EQ(ParseIp4(p, &g), Ip4ParseError::kOk);
  EXPECT_EQ(g.src, h.src);
  EXPECT_EQ(g.ttl, 64);
  std::string bad = p;
  bad[8] = 1;  // TTL changed, checksum not
  EXPECT_EQ(ParseIp4(bad, &g), Ip4ParseError::kChecksum);
  EXPECT_EQ(ParseIp4(p.substr(0, 19), &g), Ip4ParseError::kTruncated);
  EXPECT_EQ(ParseIp4(p.substr(0, 24), &g), Ip4ParseError::kTotalLen);
  bad = p;
  bad[0] = 0x65;
  EXPECT_EQ(ParseIp4(bad, &g), Ip4ParseError::kVersion);
  bad = p;
  bad[0] = 0x44;
  EXPECT_EQ(ParseIp4(bad, &g), Ip4ParseError::kHeaderLen);
}

TEST(Wire, TcpOptionsBounded) {
  TcpHeader h;
  h.src_port = 1;
  h.dst_port = 2;
  h.mss = 1460;
  std::string s;
  AppendTcp(&s, h, Ip4{1}, Ip4{2}, "");
  TcpHeader g;
  ASSERT_TRUE(ParseTcp(s, &g));
  EXPECT_EQ(g.mss, 1460);
  s[21] = 9;  // the option's length runs past the header
  EXPECT_FALSE(ParseTcp(s, &g));
  s[21] = 1;  // length < 2
  EXPECT_FALSE(ParseTcp(s, &g));
  EXPECT_FALSE(ParseTcp(s.substr(0, 19), &g));
}

TEST(TimerWheel, FiresInOrderCancelsAndHandlesJumps) {
  TimerWheel w(0);
  std::vector<int> fired;
  Timer t1([&] { fired.push_back(1); });
  Timer t2([&] { fired.push_back(2); });
  Timer t3([&] { fired.push_back(3); });
  w.Arm(&t1, 5'000'000);
  w.Arm(&t2, 3'000'000);
  w.Arm(&t3, 700'000'000);  // beyond one turn of the wheel (512 ms)
  w.Advance(2'000'000);
  EXPECT_TRUE(fired.empty());
  w.Advance(10'000'000);
  EXPECT_EQ(fired, (std::vector<int>{2, 1}));
  w.Advance(600'000'000);  // t3's slot came round once already: not yet due
  EXPECT_EQ(fired.size(), 2u);
  EXPECT_EQ(w.NextDeadline(), 700'000'000);
  w.Advance(5'000'000'000);
  EXPECT_EQ(fired, (std::vector<int>{2, 1, 3}));
  w.Arm(&t1, 6'000'000'000);
  w.Cancel(&t1);
  w.Advance(7'000'000'000);
  EXPECT_EQ(fired.size(), 3u);
  EXPECT_EQ(w.armed_count(), 0u);
}

TEST(TimerWheel, RearmingInTheCallbackDoesNotLoop) {
  TimerWheel w(0);
  int n = 0;
  Timer* self = nullptr;
  Timer t([&] {
    ++n;
    w.Arm(self, 0);  // "now" again
  });
  self = &t;
  w.Arm(&t, 1'000'000);
  w.Advance(1'000'000);
  EXPECT_EQ(n, 1);
  w.Advance(2'000'000);
  EXPECT_EQ(n, 2);
}

TEST(TimerWheel, CallbackMayDestroyAnotherDueTimer) {
  TimerWheel w(0);
  auto victim = std::make_unique<Timer>([] { FAIL() << "destroyed timer ran"; });
  Timer killer([&] { victim.reset(); });
  // The slot's list is newest first: the killer runs first.
  w.Arm(victim.get(), 1'000'000);
  w.Arm(&killer, 1'000'000);
  w.Advance(1'000'000);
  EXPECT_EQ(victim, nullptr);
  EXPECT_EQ(w.armed_count(), 0u);
}

TEST(Rto, Rfc6298Estimator) {
  RtoEstimator r;
  EXPECT_EQ(r.rto_ns(), 1'000'000'000);  // initial
  r.Sample(100'000'000);                 // SRTT 100, RTTVAR 50: 100 + 4*50
  EXPECT_EQ(r.srtt_ns(), 100'000'000);
  EXPECT_EQ(r.rto_ns(), 300'000'000);
  r.Sample(200'000'000);  // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 112.5
  EXPECT_EQ(r.srtt_ns(), 112'500'000);
  EXPECT_EQ(r.rttvar_ns(), 62'500'000);
  EXPECT_EQ(r.rto_ns(), 362'500'000);
  r.Backoff();
  EXPECT_EQ(r.rto_ns(), 725'000'000);
  for (int i = 0; i < 20; ++i) r.Backoff();
  EXPECT_EQ(r.rto_ns(), RtoEstimator::kMaxNs);
  RtoEstimator fast;
  fast.Sample(1'000'000);  // 1 ms RTT: clamped to Linux's 200 ms floor
  EXPECT_EQ(fast.rto_ns(), RtoEstimator::kMinNs);
}

Ip4Header Frag(uint16_t id, uint32_t off, bool more) {
  Ip4Header h;
  h.src = MakeIp4(10, 0, 0, 1);
  h.dst = MakeIp4(10, 0, 0, 2);
  h.proto = kProtoUdp;
  h.id = id;
  h.frag = uint16_t(off / 8) | (more ? kIpFlagMF : 0);
  return h;
}

TEST(Reassembly, OutOfOrderOverlapTimeoutAndSize) {
  Reassembler r;
  std::string a(16, 'a'), b(16, 'b'), c(5, 'c');
  EXPECT_EQ(r.Add(Frag(1, 32, false), c, 0).status, Reassembler::kIncomplete);
  EXPECT_EQ(r.Add(Frag(1, 0, true), a, 0).status, Reassembler::kIncomplete);
  auto done = r.Add(Frag(1, 16, true), b, 0);
  ASSERT_EQ(done.status, Reassembler::kComplete);
  EXPECT_EQ(done.datagram, a + b + c);
  EXPECT_EQ(r.pending(), 0u);
  // Overlap drops the whole datagram.
  EXPECT_EQ(r.Add(Frag(2, 0, true), a, 0).status, Reassembler::kIncomplete);
  EXPECT_EQ(r.Add(Frag(2, 8, true), a, 0).status, Reassembler::kOverlap);
  EXPECT_EQ(r.pending(), 0u);
  // A middle fragment that is not a multiple of 8.
  EXPECT_EQ(r.Add(Frag(3, 0, true), c, 0).status, Reassembler::kBadLength);
  // Past 64 KiB.
  EXPECT_EQ(r.Add(Frag(4, 65528, false), a, 0).status, Reassembler::kTooBig);
  // Expiry after 30 s.
  EXPECT_EQ(r.Add(Frag(5, 0, true), a, 0).status, Reassembler::kIncomplete);
  EXPECT_EQ(r.Expire(Reassembler::kTimeoutNs - 1), 0u);
  EXPECT_EQ(r.Expire(Reassembler::kTimeoutNs), 1u);
}

TEST(PortTable, LinuxBindRules) {
  PortTable t;
  PortTable::User any{Ip4{}}, one{MakeIp4(10, 0, 0, 2)}, other{MakeIp4(10, 0, 0, 3)};
  ASSERT_TRUE(t.Bind(80, &one));
  EXPECT_TRUE(t.Bind(80, &other));   // different addresses
  EXPECT_FALSE(t.Bind(80, &any));    // INADDR_ANY overlaps both
  t.Unbind(&one);
  t.Unbind(&other);
  any.reuse = true;
  one.reuse = true;
  ASSERT_TRUE(t.Bind(80, &any));
  EXPECT_TRUE(t.Bind(80, &one));  // both SO_REUSEADDR, neither listening
  t.Unbind(&one);
  any.listening = true;
  EXPECT_FALSE(t.Bind(80, &one));  // a listener is never shared
  PortTable::User e1{}, e2{};
  uint16_t p1 = t.BindEphemeral(12345, &e1), p2 = t.BindEphemeral(12345, &e2);
  EXPECT_GE(p1, PortTable::kEphemeralLow);
  EXPECT_LE(p1, PortTable::kEphemeralHigh);
  EXPECT_NE(p1, p2);
}

TEST(Secrets, KeysDecideIsnAndPorts) {
  Secrets a, b, c;
  a.RekeyFrom(1);
  b.RekeyFrom(1);
  c.RekeyFrom(2);
  Ip4 x = MakeIp4(10, 0, 0, 1), y = MakeIp4(10, 0, 0, 2);
  EXPECT_EQ(a.IsnOffset(x, 1000, y, 80), b.IsnOffset(x, 1000, y, 80));
  EXPECT_NE(a.IsnOffset(x, 1000, y, 80), c.IsnOffset(x, 1000, y, 80));
  EXPECT_NE(a.IsnOffset(x, 1000, y, 80), a.IsnOffset(x, 1001, y, 80));
  EXPECT_NE(a.PortOffset(x, y, 80), c.PortOffset(x, y, 80));
  Secrets r1, r2;
  r1.Rekey();
  r2.Rekey();
  EXPECT_NE(r1.IsnOffset(x, 1, y, 2), r2.IsnOffset(x, 1, y, 2));
}

// A queue with a pool gives consumed chunks back and takes them again, so
// a steady stream reuses its memory (the receive path's page faults).
TEST(ByteQueue, ChunksGoBackToThePoolAndComeOutOfIt) {
  ChunkPool pool;
  ByteQueue q(&pool);
  q.Append(std::string(ByteQueue::kChunk * 3, 'x'));
  EXPECT_EQ(pool.spare(), 0u);
  q.Consume(ByteQueue::kChunk + 1);  // the first chunk wholly
  EXPECT_EQ(pool.spare(), 1u);
  q.Append(std::string(ByteQueue::kChunk, 'y'));  // a fourth chunk: the spare one
  EXPECT_EQ(pool.spare(), 0u);
  EXPECT_EQ(q.size(), ByteQueue::kChunk * 3 - 1);
  EXPECT_EQ(q.Read(ByteQueue::kChunk * 2 - 2, 2), "xy");
  q.Consume(q.size());
  EXPECT_EQ(pool.spare(), 3u);
  // Never more than kMaxSpare.
  for (size_t i = 0; i < ChunkPool::kMaxSpare + 10; ++i) pool.Give(std::string(ByteQueue::kChunk, 'z'));
  EXPECT_EQ(pool.spare(), ChunkPool::kMaxSpare);
  EXPECT_TRUE(pool.Take().empty());  // handed out empty
}

TEST(ByteQueue, AppendReadConsumeAcrossChunks) {
  ByteQueue q;
  std::string big(ByteQueue::kChunk * 2 + 100, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7);
  q.Append(big);
  EXPECT_EQ(q.Read(ByteQueue::kChunk - 3, 10), big.substr(ByteQueue::kChunk - 3, 10));
  q.Consume(ByteQueue::kChunk + 5);
  EXPECT_EQ(q.size(), big.size() - ByteQueue::kChunk - 5);
  EXPECT_EQ(q.Read(0, q.size()), big.substr(ByteQueue::kChunk + 5));
}

}  // namespace
}  // namespace seedvisor::netstack
