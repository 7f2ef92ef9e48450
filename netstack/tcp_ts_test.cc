// TCP timestamps (RFC 7323 3-5) against a hand-driven peer: the option in
// Linux's layout, negotiation both ways, TSecr, the MSS it costs, PAWS,
// and RTT from TSecr where Karn's rule leaves no timed sample.
#include <string>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::Be32;
using testing::OneStack;
using testing::Parsed;
using testing::PeerTcpOpts;
using testing::TcpOptions;
using testing::kPeerIp;

constexpr uint16_t kPort = 80, kPeerPort = 40000;
constexpr uint32_t kPeerIss = 1000;

// NOP NOP TS, as Linux writes it outside a SYN.
std::string Ts(uint32_t val, uint32_t ecr) { return "\x01\x01\x08\x0a" + Be32(val) + Be32(ecr); }
// A SYN's options as Linux writes them: MSS 1460, SACK-permitted with the
// timestamps, NOP window scale 7.
std::string SynOpts(uint32_t val, uint32_t ecr) {
  return std::string("\x02\x04\x05\xb4\x04\x02\x08\x0a", 8) + Be32(val) + Be32(ecr) +
         "\x01\x03\x03\x07";
}

OneStack WithTimestamps() { return OneStack(true, 1500, true, /*timestamps=*/true); }

// A connection accepted on port 80 from a peer whose SYN offered
// timestamps with TSval `syn_val` (100) and whose ACK had `ack_val` (101).
struct Passive {
  explicit Passive(OneStack& s, uint32_t syn_val = 100, uint32_t ack_val = 101) : s(s) {
    listener = s.stack->NewTcp();
    EXPECT_TRUE(listener->Bind({Ip4{}, kPort}).ok());
    EXPECT_TRUE(listener->Listen(8).ok());
    s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, 65535, SynOpts(syn_val, 0)));
    EXPECT_FALSE(s.Quiet());
    if (!s.Quiet()) synack_opts = TcpOptions(s.link.frames.front());
    Parsed synack = s.Next();
    iss = synack.tcp.seq;
    synack_tsval = synack.tcp.tsval;
    Send(0, ack_val, {});
    auto c = listener->Accept();
    EXPECT_TRUE(c.ok());
    if (c.ok()) conn = *c;
  }
  ~Passive() {
    if (conn) conn->Close();
    listener->Close();
  }
  // A segment from the peer `off` bytes into its stream, with TSval `val`.
  void Send(uint32_t off, uint32_t val, std::string_view data, uint8_t flags = kTcpAck) {
    s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1 + off, iss + 1 + acked, flags, 65535,
                          Ts(val, synack_tsval), data));
  }
  OneStack& s;
  std::shared_ptr<TcpEndpoint> listener, conn;
  std::string synack_opts;
  uint32_t iss = 0, synack_tsval = 0;
  uint32_t acked = 0;  // of our stream, what the peer acknowledges
};

TEST(TcpTs, ActiveOpenOffersAndEchoesAndPaysTwelveBytesOfMss) {
  OneStack s = WithTimestamps();
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
  ASSERT_FALSE(s.Quiet());
  std::string syn_opts = TcpOptions(s.link.frames.front());
  Parsed syn = s.Next();
  ASSERT_TRUE(syn.tcp.ts);
  EXPECT_EQ(syn_opts, SynOpts(syn.tcp.tsval, 0));
  s.Advance(5'000'000);
  s.Deliver(PeerTcpOpts(80, syn.tcp.src_port, 5000, syn.tcp.seq + 1, kTcpSyn | kTcpAck, 65535,
                        SynOpts(7000, syn.tcp.tsval)));
  std::string ack_opts = TcpOptions(s.link.frames.front());
  Parsed ack = s.Next();
  EXPECT_EQ(ack_opts, Ts(syn.tcp.tsval + 5, 7000));  // a 1 ms clock
  EXPECT_TRUE(c->info().ts_ok);
  EXPECT_EQ(c->mss(), 1460 - 12);
  // The SYN-ACK was timed: 5 ms.
  EXPECT_EQ(c->info().srtt_ns, 5'000'000);
  c->SetNoDelay(true);
  ASSERT_TRUE(c->Send(std::string(3000, 'd')).ok());
  Parsed d = s.Next();
  EXPECT_EQ(d.payload.size(), 1448u);
  EXPECT_EQ(d.tcp.tsecr, 7000u);
  c->Close();
}

TEST(TcpTs, PassiveOpenAnswersOnlyAnOffer) {
  OneStack s = WithTimestamps();
  {
    Passive p(s);
    ASSERT_TRUE(p.conn);
    EXPECT_EQ(p.synack_opts, SynOpts(p.synack_tsval, 100));
    EXPECT_TRUE(p.conn->info().ts_ok);
    // Every segment after echoes the latest TSval from the peer.
    p.Send(0, 150, "abcd", kTcpAck | kTcpPsh);
    EXPECT_EQ(TcpOptions(s.link.frames.front()), Ts(p.synack_tsval, 150));
    s.Next();
  }
  while (!s.Quiet()) s.Next();
  // A SYN without the option: none in the SYN-ACK nor after it.
  auto l = s.stack->NewTcp();
  ASSERT_TRUE(l->Bind({Ip4{}, 81}).ok());
  ASSERT_TRUE(l->Listen(8).ok());
  s.Deliver(PeerTcpOpts(kPeerPort + 1, 81, kPeerIss, 0, kTcpSyn, 65535,
                        std::string("\x02\x04\x05\xb4\x01\x03\x03\x07", 8)));
  EXPECT_EQ(TcpOptions(s.link.frames.front()), std::string("\x02\x04\x05\xb4\x01\x03\x03\x07", 8));
  Parsed synack = s.Next();
  EXPECT_FALSE(synack.tcp.ts);
  s.Deliver(PeerTcpOpts(kPeerPort + 1, 81, kPeerIss + 1, synack.tcp.seq + 1, kTcpAck, 512, {}));
  auto c = l->Accept();
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->info().ts_ok);
  EXPECT_EQ((*c)->mss(), 1460);
  (*c)->SetNoDelay(true);
  ASSERT_TRUE((*c)->Send("hi").ok());
  Parsed d = s.Next();
  EXPECT_FALSE(d.tcp.ts);
  EXPECT_EQ(d.payload, "hi");
  (*c)->Close();
  l->Close();
}

// RFC 7323 5.3: a segment whose TSval is older than TS.Recent is dropped
// and answered with an ACK; a RST is exempt.
TEST(TcpTs, PawsDropsAnOldSegmentButNotARst) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  p.Send(0, 200, "aaaa", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.tsecr, 200u);
  p.Send(4, 150, "bbbb", kTcpAck | kTcpPsh);  // an old duplicate from this connection's past
  Parsed dup = s.Next();
  EXPECT_EQ(dup.tcp.ack, kPeerIss + 1 + 4);
  EXPECT_EQ(dup.tcp.tsecr, 200u);
  EXPECT_EQ(p.conn->Available(), 4u);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
  p.Send(4, 201, "cccc", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 8);
  EXPECT_EQ(p.conn->Available(), 8u);
  p.Send(8, 1, {}, kTcpRst);
  EXPECT_EQ(p.conn->state(), TcpState::kClosed);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
}

// Linux's PAWS window (TCP_PAWS_WINDOW): a TSval one tick behind
// TS.Recent passes; two behind does not.
TEST(TcpTs, PawsLetsATsvalOneTickOldThrough) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  p.Send(0, 200, "aaaa", kTcpAck | kTcpPsh);
  s.Next();
  p.Send(4, 199, "bbbb", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 8);
  EXPECT_EQ(p.conn->Available(), 8u);
  p.Send(8, 198, "cccc", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 8);
  EXPECT_EQ(p.conn->Available(), 8u);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
}

// A peer whose SYN carries TSval 0 and whose later TSvals have the top bit
// set: TS.Recent 0 rejects nothing, so the handshake completes and data
// flows; TS.Recent then follows the peer's clock and PAWS works again.
TEST(TcpTs, PawsIgnoresATsRecentOfZero) {
  OneStack s = WithTimestamps();
  Passive p(s, 0, 0x90000000);
  ASSERT_TRUE(p.conn);
  EXPECT_EQ(p.conn->state(), TcpState::kEstablished);
  p.Send(0, 0x90000001, "abcd", kTcpAck | kTcpPsh);
  Parsed ack = s.Next();
  EXPECT_EQ(ack.tcp.ack, kPeerIss + 1 + 4);
  EXPECT_EQ(ack.tcp.tsecr, 0x90000001u);
  EXPECT_EQ(p.conn->Available(), 4u);
  p.Send(4, 0x80000000, "efgh", kTcpAck | kTcpPsh);  // old now that TS.Recent is the peer's
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 4);
  EXPECT_EQ(p.conn->Available(), 4u);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
}

// tcp_disordered_ack(): a pure duplicate ACK that changes no window,
// overtaken by a later one, passes if it lags by less than an RTO of the
// peer's clock (1 s at 1200 Hz here); one lagging more is dropped.
TEST(TcpTs, PawsLetsAReorderedPureAckThrough) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  p.Send(0, 200, "aaaa", kTcpAck | kTcpPsh);
  s.Next();
  p.Send(4, 300, {});
  EXPECT_TRUE(s.Quiet());
  p.Send(4, 290, {});  // sent before the one above
  EXPECT_TRUE(s.Quiet());
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 0u);
  p.Send(4, 300 - 1300, {});  // far older than an RTO
  EXPECT_FALSE(s.Quiet());
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 4);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
}

// TS.Recent left alone for TCP_PAWS_WRAP (2147 s on Linux 6.8 and later)
// rejects nothing any more.
TEST(TcpTs, PawsForgetsAnIdleTsRecent) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  p.Send(0, 200, "aaaa", kTcpAck | kTcpPsh);
  s.Next();
  s.Advance(2146LL * 1'000'000'000);
  while (!s.Quiet()) s.Next();
  p.Send(4, 100, "bbbb", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 4);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
  s.Advance(1'000'000'000);
  while (!s.Quiet()) s.Next();
  p.Send(4, 100, "bbbb", kTcpAck | kTcpPsh);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 8);
  EXPECT_EQ(p.conn->Available(), 8u);
  EXPECT_EQ(s.stack->stats().tcp_paws_drops, 1u);
}

// Karn's rule leaves a retransmitted segment untimed; its ACK's TSecr,
// the retransmission's TSval, still measures the round trip: 30 ms.
TEST(TcpTs, RttFromTsecrAfterARetransmission) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  EXPECT_EQ(p.conn->info().srtt_ns, 0);  // the handshake's, on a clock that stood still
  ASSERT_TRUE(p.conn->Send(std::string(100, 'x')).ok());
  s.Next();
  s.Advance(p.conn->rto_ns() + 1'000'000);
  Parsed re = s.Next();
  ASSERT_EQ(re.payload.size(), 100u);
  s.Advance(30'000'000);
  p.acked = 100;
  p.s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, p.iss + 101, kTcpAck, 65535,
                          Ts(300, re.tcp.tsval)));
  EXPECT_EQ(p.conn->info().srtt_ns, 30'000'000 / 8);
  EXPECT_EQ(p.conn->info().min_rtt_ns, 0);
}

// Without a retransmission the timed samples are the only ones: an ACK
// past the timed segment is not measured from its TSecr (1 ms ticks),
// as Linux takes TSecr only where its own timing has nothing.
TEST(TcpTs, NoTsecrSampleWithoutARetransmission) {
  OneStack s = WithTimestamps();
  Passive p(s);
  ASSERT_TRUE(p.conn);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(2 * 1448, 'x')).ok());
  Parsed a = s.Next(), b = s.Next();
  s.Advance(10'000'000);
  s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, p.iss + 1 + 1448, kTcpAck, 65535,
                        Ts(300, a.tcp.tsval)));
  EXPECT_EQ(p.conn->info().srtt_ns, 10'000'000 / 8);  // the timed segment
  s.Advance(10'000'000);
  s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, p.iss + 1 + 2896, kTcpAck, 65535,
                        Ts(301, b.tcp.tsval)));
  EXPECT_EQ(p.conn->info().srtt_ns, 10'000'000 / 8);
}

}  // namespace
}  // namespace seedvisor::netstack
