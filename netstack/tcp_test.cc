// TCP against a hand-driven peer (exact segments): open, close, data,
// windows, window scaling, congestion control, timers, ports. SACK is in
// tcp_sack_test.cc, two stacks on a lossy wire in tcp_wire_test.cc.
#include <poll.h>
#include <time.h>

#include <cstdio>
#include <map>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"
#include "netstack/testing/passive_peer.h"

namespace seedvisor::netstack {
namespace {

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

TEST(Tcp, PassiveOpenDataBothWaysAndPeerClose) {
  OneStack s;
  Passive p(s);
  p.ack = p.iss + 1;
  EXPECT_EQ(p.conn->state(), TcpState::kEstablished);
  EXPECT_EQ(p.conn->remote()->ip, kPeerIp);
  EXPECT_EQ(p.conn->local().port, kPort);
  p.Data("hello");
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.flags, kTcpAck);
  EXPECT_EQ(a.tcp.ack, kPeerIss + 1 + 5);
  EXPECT_EQ(p.conn->Available(), 5u);
  EXPECT_EQ(p.Read(), "hello");
  ASSERT_TRUE(p.conn->Send("world").ok());
  Parsed d = s.Next();
  EXPECT_EQ(d.tcp.seq, p.iss + 1);
  EXPECT_EQ(d.payload, "world");
  EXPECT_TRUE(d.tcp.flags & kTcpPsh);
  EXPECT_EQ(d.ip.ttl, 64);
  EXPECT_TRUE(d.ip.frag & kIpFlagDF);
  // The peer acknowledges and closes its side.
  p.ack = p.iss + 6;
  p.Data("", 5, kTcpAck | kTcpFin);
  Parsed fa = s.Next();
  EXPECT_EQ(fa.tcp.ack, kPeerIss + 1 + 5 + 1);
  EXPECT_EQ(p.conn->state(), TcpState::kCloseWait);
  EXPECT_NE(p.conn->Readiness() & POLLRDHUP, 0u);
  EXPECT_EQ(p.Read(), "");  // EOF
  // Half-closed: we can still send.
  ASSERT_TRUE(p.conn->Send("more").ok());
  EXPECT_EQ(s.Next().payload, "more");
  p.conn->Close();
  Parsed fin = s.Next();
  EXPECT_TRUE(fin.tcp.flags & kTcpFin);
  EXPECT_EQ(fin.tcp.seq, p.iss + 1 + 5 + 4);
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 7, fin.tcp.seq + 1, kTcpAck, 65535));
  EXPECT_EQ(p.conn->state(), TcpState::kClosed);
  EXPECT_TRUE(s.Quiet());
}

TEST(Tcp, ActiveOpenMssAndActiveCloseThroughTimeWait) {
  OneStack s;
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EALREADY));
  EXPECT_EQ(c->Readiness() & POLLOUT, 0u);
  Parsed syn = s.Next();
  EXPECT_EQ(syn.tcp.flags, kTcpSyn);
  EXPECT_EQ(syn.tcp.mss, 1460);
  uint16_t port = syn.tcp.src_port;
  EXPECT_GE(port, PortTable::kEphemeralLow);
  // The peer's SYN-ACK without an MSS option: RFC 9293's default 536.
  s.Deliver(PeerTcp(80, port, 5000, syn.tcp.seq + 1, kTcpSyn | kTcpAck, 65535));
  Parsed ack = s.Next();
  EXPECT_EQ(ack.tcp.ack, 5001u);
  EXPECT_EQ(c->state(), TcpState::kEstablished);
  EXPECT_NE(c->Readiness() & POLLOUT, 0u);
  EXPECT_EQ(c->TakeError(), 0);
  EXPECT_EQ(c->mss(), 536);
  c->SetNoDelay(true);  // else Nagle holds the short second segment
  ASSERT_TRUE(c->Send(std::string(1000, 'x')).ok());
  Parsed d1 = s.Next(), d2 = s.Next();
  EXPECT_EQ(d1.payload.size(), 536u);
  EXPECT_EQ(d2.payload.size(), 464u);
  uint32_t end = d2.tcp.seq + 464;
  s.Deliver(PeerTcp(80, port, 5001, end, kTcpAck, 65535));
  c->Close();
  Parsed fin = s.Next();
  EXPECT_EQ(fin.tcp.flags & kTcpFin, kTcpFin);
  EXPECT_EQ(c->state(), TcpState::kFinWait1);
  s.Deliver(PeerTcp(80, port, 5001, end + 1, kTcpAck, 65535));
  EXPECT_EQ(c->state(), TcpState::kFinWait2);
  s.Deliver(PeerTcp(80, port, 5001, end + 1, kTcpAck | kTcpFin, 65535));
  EXPECT_EQ(s.Next().tcp.ack, 5002u);
  EXPECT_EQ(c->state(), TcpState::kTimeWait);
  // A retransmitted FIN in TIME_WAIT is acknowledged again.
  s.Deliver(PeerTcp(80, port, 5001, end + 1, kTcpAck | kTcpFin, 65535));
  EXPECT_EQ(s.Next().tcp.ack, 5002u);
  s.Advance(TcpEndpoint::kTimeWaitNs - 1'000'000'000);
  EXPECT_EQ(c->state(), TcpState::kTimeWait);
  s.Advance(2'000'000'000);
  EXPECT_EQ(c->state(), TcpState::kClosed);
  // Past TIME_WAIT, the segment gets a reset.
  s.Deliver(PeerTcp(80, port, 5002, end + 1, kTcpAck, 65535));
  EXPECT_TRUE(s.Next().tcp.flags & kTcpRst);
}

TEST(Tcp, RefusedAndResetsForNoListener) {
  OneStack s;
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 81}).error(), Errno(EINPROGRESS));
  Parsed syn = s.Next();
  s.Deliver(PeerTcp(81, syn.tcp.src_port, 0, syn.tcp.seq + 1, kTcpRst | kTcpAck, 0));
  EXPECT_EQ(c->state(), TcpState::kClosed);
  EXPECT_NE(c->Readiness() & POLLERR, 0u);
  EXPECT_EQ(c->TakeError(), ECONNREFUSED);
  // A SYN to a closed port: RST|ACK acknowledging it.
  s.Deliver(PeerTcp(kPeerPort, 9, 777, 0, kTcpSyn, 65535));
  Parsed r = s.Next();
  EXPECT_EQ(r.tcp.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.tcp.ack, 778u);
  // An ACK to a closed port: RST with its sequence.
  s.Deliver(PeerTcp(kPeerPort, 9, 777, 4242, kTcpAck, 65535));
  r = s.Next();
  EXPECT_EQ(r.tcp.flags, kTcpRst);
  EXPECT_EQ(r.tcp.seq, 4242u);
  // A RST is never answered.
  s.Deliver(PeerTcp(kPeerPort, 9, 777, 0, kTcpRst, 0));
  EXPECT_TRUE(s.Quiet());
  c->Close();
}

TEST(Tcp, RstChecksRfc5961) {
  OneStack s;
  Passive p(s);
  // In the window but not exact: a challenge ACK, the connection stays.
  p.Data("", 100, kTcpRst);
  Parsed ch = s.Next();
  EXPECT_EQ(ch.tcp.flags, kTcpAck);
  EXPECT_EQ(ch.tcp.ack, kPeerIss + 1);
  EXPECT_EQ(p.conn->state(), TcpState::kEstablished);
  // Outside the window: ignored.
  p.Data("", 1u << 30, kTcpRst);
  EXPECT_TRUE(s.Quiet());
  // A SYN on the connection: challenge ACK too.
  p.Data("", 0, kTcpSyn);
  EXPECT_EQ(s.Next().tcp.flags, kTcpAck);
  EXPECT_EQ(p.conn->state(), TcpState::kEstablished);
  // Exact: reset.
  p.Data("", 0, kTcpRst);
  EXPECT_EQ(p.conn->state(), TcpState::kClosed);
  char b[4];
  EXPECT_EQ(p.conn->Recv(b, 4, false).error(), Errno(ECONNRESET));
  EXPECT_EQ(p.conn->Recv(b, 4, false).value(), 0u);
  EXPECT_EQ(p.conn->Send("x").error(), Errno(EPIPE));
  EXPECT_TRUE(s.Quiet());
}

TEST(Tcp, OutOfOrderQueueAndDuplicateAcks) {
  OneStack s;
  Passive p(s);
  p.ack = p.iss + 1;
  p.Data("BBBB", 4);
  Parsed dup = s.Next();
  EXPECT_EQ(dup.tcp.ack, kPeerIss + 1);  // still waiting for byte 0
  EXPECT_EQ(p.conn->Available(), 0u);
  p.Data("CCCC", 8);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1);
  p.Data("AAAA", 0);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 12);
  EXPECT_EQ(p.Read(), "AAAABBBBCCCC");
  // A retransmission overlapping old and new data keeps only the new part.
  p.Data("CCDDDD", 10);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 16);
  EXPECT_EQ(p.Read(), "DDDD");
  // A FIN that arrives before the data before it waits for it.
  p.Data("", 20, kTcpAck | kTcpFin);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 17);
  EXPECT_EQ(p.conn->state(), TcpState::kEstablished);
  p.Data("EEEE", 16);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 20 + 1);
  EXPECT_EQ(p.conn->state(), TcpState::kCloseWait);
  EXPECT_EQ(p.Read(), "EEEE");
  EXPECT_EQ(p.Read(), "");
  EXPECT_EQ(s.stack->stats().tcp_ooo_segments, 2u);
}

TEST(Tcp, ReceiveWindowLimitsAndReopens) {
  OneStack s;
  Passive p(s, 1460, 65535, 4000);
  p.Data(std::string(1000, 'a'));
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.window, 3000);
  // The peer overruns the window: only 3000 bytes are taken.
  p.Data(std::string(4000, 'b'), 1000);
  a = s.Next();
  EXPECT_EQ(a.tcp.ack, kPeerIss + 1 + 4000);
  EXPECT_EQ(a.tcp.window, 0);
  EXPECT_EQ(p.conn->Available(), 4000u);
  // Data in a zero window is dropped and acknowledged with the same ACK.
  p.Data("c", 4000);
  EXPECT_EQ(s.Next().tcp.ack, kPeerIss + 1 + 4000);
  // Reading opens the window and the stack says so.
  EXPECT_EQ(p.Read().size(), 4000u);
  Parsed upd = s.Next();
  EXPECT_EQ(upd.tcp.window, 4000);
  EXPECT_EQ(upd.tcp.ack, kPeerIss + 1 + 4000);
}

// Reading announces a window only when it at least doubled
// (tcp_cleanup_rbuf()): while the peer has half of it, the ACKs of its
// data tell it the rest.
TEST(Tcp, WindowUpdateWaitsForTheWindowToDouble) {
  OneStack s;
  Passive p(s, 1460, 65535, 16000);  // no window scaling: the peer offered none
  p.ack = p.iss + 1;
  char buf[8000];
  p.Data(std::string(6000, 'a'));
  EXPECT_EQ(s.Next().tcp.window, 10000);
  ASSERT_EQ(p.conn->Recv(buf, 2000, false).value(), 2000u);  // 12000 free, 10000 announced
  EXPECT_TRUE(s.Quiet());
  ASSERT_EQ(p.conn->Recv(buf, 3000, false).value(), 3000u);  // 15000 free
  EXPECT_TRUE(s.Quiet());
  p.Data(std::string(8000, 'b'), 6000);
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.ack, kPeerIss + 1 + 14000);
  EXPECT_EQ(a.tcp.window, 7000);
  ASSERT_EQ(p.conn->Recv(buf, 5000, false).value(), 5000u);  // 12000 free: not yet twice 7000
  EXPECT_TRUE(s.Quiet());
  ASSERT_EQ(p.conn->Recv(buf, 2000, false).value(), 2000u);  // 14000
  Parsed upd = s.Next();
  EXPECT_EQ(upd.tcp.window, 14000);
  EXPECT_EQ(upd.tcp.ack, kPeerIss + 1 + 14000);
}

TEST(Tcp, SenderRespectsPeerWindowAndProbesZeroWindow) {
  OneStack s;
  Passive p(s, 1460, 1000);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(3000, 'w')).ok());
  Parsed d = s.Next();
  EXPECT_EQ(d.payload.size(), 1000u);
  EXPECT_TRUE(s.Quiet());
  // ACK all with a zero window: nothing more is sent, a probe comes at RTO.
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, p.iss + 1001, kTcpAck, 0));
  EXPECT_TRUE(s.Quiet());
  s.Advance(1'100'000'000);
  Parsed probe = s.Next();
  EXPECT_EQ(probe.tcp.seq, p.iss + 1000);  // below the window: forces an ACK
  EXPECT_TRUE(probe.payload.empty());
  // The window opens: the rest flows.
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, p.iss + 1001, kTcpAck, 65535));
  EXPECT_EQ(s.Next().payload.size(), 1460u);
  EXPECT_EQ(s.Next().payload.size(), 540u);
}

// Slow start grows by every segment an ACK covers (tcp_slow_start()): one
// ACK for a whole flight of ten (a stretch ACK, as the host sends for a
// TSO frame it took whole, or a delayed ACK for two) lets twenty go next.
// With RFC 3465's L = 1 segment it let eleven go.
TEST(Tcp, SlowStartCountsEverySegmentAStretchAckCovers) {
  OneStack s;
  Passive p(s, 1000, 65535);
  ASSERT_TRUE(p.conn);
  p.conn->SetNoDelay(true);
  ASSERT_EQ(*p.conn->Send(std::string(60000, 's')), 60000u);
  auto flight = [&s] {
    int n = 0;
    while (!s.Quiet()) n += s.Next().payload.size() == 1000u;
    return n;
  };
  EXPECT_EQ(flight(), 10);  // the initial window (RFC 6928)
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, p.iss + 1 + 10000, kTcpAck, 65535));
  EXPECT_EQ(flight(), 20);
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, p.iss + 1 + 30000, kTcpAck, 65535));
  EXPECT_EQ(flight(), 30);  // the rest of the 60000 bytes
}

// ---- window scaling (RFC 7323 2) ----

// Options as Linux writes them (no timestamps): MSS 1460, NOP NOP
// SACK-permitted, NOP, WS 7 (kMss1460Ws7: without the SACK-permitted).
const std::string kMss1460SackWs7("\x02\x04\x05\xb4\x01\x01\x04\x02\x01\x03\x03\x07", 12);

// We offer tcp_select_initial_window()'s shift for tcp_rmem[2] (6 MiB: 7)
// in an unscaled SYN; once the peer agrees, our windows go out shifted
// right by 7 and its windows count shifted left by its own shift.
TEST(TcpWscale, ActiveOpenOffersSevenAndScalesBothWays) {
  OneStack s;
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
  ASSERT_FALSE(s.Quiet());
  EXPECT_EQ(TcpOptions(s.link.frames.front()), kMss1460SackWs7);
  Parsed syn = s.Next();
  EXPECT_EQ(syn.tcp.wscale, 7);
  EXPECT_EQ(syn.tcp.window, 65535);  // a SYN's window is never scaled
  uint16_t port = syn.tcp.src_port;
  // The peer: MSS 1000, window scale 2, and a SYN-ACK window of 4000
  // (unscaled too).
  s.Deliver(testing::PeerTcpOpts(80, port, 5000, syn.tcp.seq + 1, kTcpSyn | kTcpAck, 4000,
                                 std::string("\x02\x04\x03\xe8\x01\x03\x03\x02", 8)));
  Parsed ack = s.Next();
  EXPECT_EQ(ack.tcp.window, 131072 >> 7);  // tcp_rmem[1] of room, in units of 128
  EXPECT_EQ(c->info().rcv_wscale, 7);
  EXPECT_EQ(c->info().snd_wscale, 2);
  // The peer's window field 1000 means 4000 bytes: four segments of 1000.
  s.Deliver(PeerTcp(80, port, 5001, syn.tcp.seq + 1, kTcpAck, 1000));
  c->SetNoDelay(true);
  ASSERT_TRUE(c->Send(std::string(10000, 's')).ok());
  size_t sent = 0;
  while (!s.Quiet()) sent += s.Next().payload.size();
  EXPECT_EQ(sent, 4000u);
  // The peer's data: our window shrinks by it but its right edge stays
  // (131072 - 2000 rounded up to 128, as tcp_select_window()).
  s.Deliver(PeerTcp(80, port, 5001, syn.tcp.seq + 1 + 4000, kTcpAck, 1000, std::string(2000, 'd')));
  Parsed a2 = s.Next();
  EXPECT_EQ(a2.tcp.ack, 5001u + 2000);
  EXPECT_EQ(a2.tcp.window, (131072 - 2000 + 127) / 128);
  c->Close();
}

// A listener answers an offer with its own shift; the peer's shift (10)
// scales every window after its SYN.
TEST(TcpWscale, PassiveOpenAnswersAnOffer) {
  OneStack s;
  Passive p(s, 0, 65535, 0, std::string("\x02\x04\x05\xb4\x01\x03\x03\x0a", 8));
  ASSERT_TRUE(p.conn);
  EXPECT_EQ(p.synack_opts, kMss1460Ws7);
  EXPECT_EQ(p.synack.tcp.window, 65535);
  EXPECT_EQ(p.conn->info().rcv_wscale, 7);
  EXPECT_EQ(p.conn->info().snd_wscale, 10);
  // Window 1 << 10: one segment of 1024 bytes (unscaled it would be 1 byte).
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, p.iss + 1, kTcpAck, 1));
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(3000, 'w')).ok());
  EXPECT_EQ(s.Next().payload.size(), 1024u);
  EXPECT_TRUE(s.Quiet());
  p.ack = p.iss + 1 + 1024;
  p.Data(std::string(1000, 'x'));
  Parsed a = s.Next();
  EXPECT_EQ(a.tcp.ack, kPeerIss + 1 + 1000);
  EXPECT_EQ(a.tcp.window, (131072 - 1000 + 127) / 128);
}

// RFC 7323 2.3: a shift above 14 is taken as 14.
TEST(TcpWscale, PeerShiftAboveFourteenIsFourteen) {
  OneStack s;
  Passive p(s, 0, 65535, 0, std::string("\x02\x04\x05\xb4\x01\x03\x03\x0f", 8));
  ASSERT_TRUE(p.conn);
  EXPECT_EQ(p.conn->info().snd_wscale, 14);
}

// Without the peer's offer: no option in our SYN-ACK, windows unscaled
// both ways, ours at most 65535.
TEST(TcpWscale, NoScalingWithoutThePeersOffer) {
  OneStack s;
  Passive p(s);
  ASSERT_TRUE(p.conn);
  EXPECT_EQ(p.synack_opts, std::string("\x02\x04\x05\xb4", 4));
  EXPECT_EQ(p.synack.tcp.wscale, -1);
  EXPECT_EQ(p.conn->info().rcv_wscale, 0);
  EXPECT_EQ(p.conn->info().snd_wscale, 0);
  p.ack = p.iss + 1;
  p.Data(std::string(1000, 'x'));
  EXPECT_EQ(s.Next().tcp.window, 65535);
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1 + 1000, p.iss + 1, kTcpAck, 1000));
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(3000, 'w')).ok());
  EXPECT_EQ(s.Next().payload.size(), 1000u);
  EXPECT_TRUE(s.Quiet());

  // Active: a SYN-ACK without the option turns our offer off.
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
  Parsed syn = s.Next();
  EXPECT_EQ(syn.tcp.wscale, 7);
  s.Deliver(
      PeerTcp(80, syn.tcp.src_port, 5000, syn.tcp.seq + 1, kTcpSyn | kTcpAck, 65535, {}, 1460));
  EXPECT_EQ(s.Next().tcp.window, 65535);
  EXPECT_EQ(c->info().rcv_wscale, 0);
  c->Close();
}

// SO_RCVBUF fixes the buffer: the shift is the one that covers it
// (tcp_select_initial_window() with window_clamp = tcp_full_space()).
TEST(TcpWscale, ReceiveBufferSetByTheUserPicksTheShift) {
  for (auto [room, shift] : {std::pair<size_t, int>{32768, 0}, {65536, 1}, {1 << 20, 5},
                             {8 << 20, 8}}) {
    SCOPED_TRACE(room);
    OneStack s;
    auto c = s.stack->NewTcp();
    c->SetBufferSizes(room, 0);
    EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
    Parsed syn = s.Next();
    EXPECT_EQ(syn.tcp.wscale, shift);
    EXPECT_EQ(syn.tcp.window, std::min<size_t>(room, 65535));
    c->Close();
    Passive p(s, 0, 65535, room, std::string("\x02\x04\x05\xb4\x01\x03\x03\x02", 8));
    EXPECT_EQ(p.synack.tcp.wscale, shift);
  }
}

// ---- congestion control ----

// One connection driven round trip by round trip (100 ms) by a peer that
// acknowledges every segment, with SACK: MSS 100, slow start to 160
// segments, the first segment of round 5 lost. Returns the window (in
// segments) after each round from the loss on; `ssthresh` the threshold
// the loss set.
std::vector<double> WindowAfterLoss(const char* cc, int rounds, double* ssthresh) {
  OneStack s;
  Passive p(s, 0, 65535, 0, std::string("\x02\x04\x00\x64\x01\x01\x04\x02", 8));
  std::vector<double> w;
  if (!p.conn) return w;
  EXPECT_TRUE(p.conn->SetCongestionControl(cc).ok());
  EXPECT_EQ(p.conn->congestion_control(), cc);
  p.conn->SetNoDelay(true);
  constexpr double kMss = 100;
  std::string chunk(1 << 16, 'c');
  uint32_t peer_next = p.iss + 1;                  // the peer's RCV.NXT
  std::map<uint32_t, uint32_t> held;               // its out-of-order data
  for (int r = 0; r < 5 + rounds; ++r) {
    while (p.conn->Send(chunk).ok()) {
    }
    std::vector<Parsed> segs;
    while (!s.Quiet()) {
      Parsed f = s.Next();
      if (!f.payload.empty()) segs.push_back(f);
    }
    s.Advance(100'000'000);
    for (size_t i = 0; i < segs.size(); ++i) {
      if (r == 4 && i == 0) continue;  // lost
      uint32_t a = segs[i].tcp.seq, b = a + uint32_t(segs[i].payload.size());
      if (SeqLeq(a, peer_next)) {
        if (SeqGt(b, peer_next)) peer_next = b;
        for (auto it = held.begin(); it != held.end() && SeqLeq(it->first, peer_next);) {
          if (SeqGt(it->second, peer_next)) peer_next = it->second;
          it = held.erase(it);
        }
      } else {
        held[a] = b;
      }
      std::string opt;
      if (!held.empty()) {
        uint32_t l = held.begin()->first, e = held.begin()->second;
        for (auto& [x, y] : held) e = SeqGt(y, e) && SeqLeq(x, e) ? y : e;
        opt = SackOpt({{l, e}});
      }
      s.Deliver(
          testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, peer_next, kTcpAck, 65535, opt));
    }
    if (r == 4) *ssthresh = p.conn->info().ssthresh / kMss;
    if (r >= 4) w.push_back(p.conn->info().cwnd / kMss);
  }
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 0u);
  EXPECT_EQ(s.stack->stats().tcp_sack_recoveries, 1u);
  return w;
}

// RFC 8312: after the loss at W_max = 160, CUBIC keeps 0.7 of it, grows
// fast, levels off near W_max at K = cbrt(160 * 0.3 / 0.4) = 4.93 s (49
// round trips), then grows faster again; Reno halves and adds one segment
// per round trip.
TEST(TcpCc, CubicWindowGrowthAfterALossAgainstReno) {
  double ss_cubic = 0, ss_reno = 0;
  std::vector<double> cubic = WindowAfterLoss("cubic", 70, &ss_cubic);
  std::vector<double> reno = WindowAfterLoss("reno", 70, &ss_reno);
  ASSERT_EQ(cubic.size(), 71u);
  ASSERT_EQ(reno.size(), 71u);
  EXPECT_NEAR(ss_cubic, 112, 1);
  EXPECT_NEAR(ss_reno, 80, 1);
  for (int i : {1, 10, 20, 30, 40, 45, 49, 55, 60, 70}) {
    std::printf("round %2d after the loss: cubic %6.1f reno %6.1f\n", i, cubic[i], reno[i]);
  }
  // Concave: the first ten round trips add far more than the ten before K.
  EXPECT_GT(cubic[11] - cubic[1], 4 * (cubic[49] - cubic[39]));
  // Back near W_max at K, and past it (convex) after.
  EXPECT_NEAR(cubic[50], 160, 8);
  EXPECT_GT(cubic[70] - cubic[60], cubic[50] - cubic[40]);
  // Reno: one segment per round trip.
  EXPECT_NEAR(reno[60] - reno[10], 50, 3);
  EXPECT_GT(cubic[30], reno[30] + 30);
}

TEST(TcpCc, CongestionControlByNameAndInheritedFromTheListener) {
  OneStack s;
  auto l = s.stack->NewTcp();
  EXPECT_EQ(l->congestion_control(), "cubic");  // Linux's default
  EXPECT_EQ(l->SetCongestionControl("bbr").error(), Errno(ENOENT));
  EXPECT_EQ(l->SetCongestionControl("").error(), Errno(ENOENT));
  ASSERT_TRUE(l->SetCongestionControl("reno").ok());
  ASSERT_TRUE(l->Bind({Ip4{}, kPort}).ok());
  ASSERT_TRUE(l->Listen(1).ok());
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, 65535, {}, 1460));
  Parsed sa = s.Next();
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, sa.tcp.seq + 1, kTcpAck, 65535));
  auto c = l->Accept();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->congestion_control(), "reno");
  (*c)->Close();
  l->Close();
}

TEST(Tcp, SynRetransmissionBacksOffThenTimesOut) {
  OneStack s;
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({kPeerIp, 80}).error(), Errno(EINPROGRESS));
  Parsed first = s.Next();
  // Linux's 1, 2, 4 ... s, each with the connection's jitter on top
  // (ArmRto: the retry's own, under an eighth of RTO).
  int64_t rto = 1'000'000'000, deadline = s.clock.now;
  for (int i = 0; i < TcpEndpoint::kSynRetries; ++i) {
    const int64_t jitter = c->RtoJitterNs(rto, i);
    EXPECT_GE(jitter, 0);
    EXPECT_LT(jitter, rto / 8);
    deadline += rto + jitter;
    s.Advance(deadline - 10'000'000 - s.clock.now);
    EXPECT_TRUE(s.Quiet()) << "retransmitted early, try " << i;
    s.Advance(deadline + 1'000'000 - s.clock.now);
    Parsed again = s.Next();
    EXPECT_EQ(again.tcp.flags, kTcpSyn);
    EXPECT_EQ(again.tcp.seq, first.tcp.seq);
    rto *= 2;
  }
  EXPECT_EQ(c->state(), TcpState::kSynSent);
  s.Advance(deadline + rto + c->RtoJitterNs(rto, TcpEndpoint::kSynRetries) - 10'000'000 - s.clock.now);
  EXPECT_EQ(c->state(), TcpState::kSynSent);
  s.Advance(20'000'000);
  EXPECT_EQ(c->state(), TcpState::kClosed);
  EXPECT_EQ(c->TakeError(), ETIMEDOUT);
  c->Close();
}

TEST(Tcp, RetransmitsOnTimeoutWithRttEstimate) {
  OneStack s;
  Passive p(s);
  p.conn->SetNoDelay(true);
  // One RTT sample of 100 ms: RTO = 100 + 4 * 50 = 300 ms.
  ASSERT_TRUE(p.conn->Send("a").ok());
  Parsed d = s.Next();
  s.Advance(100'000'000);
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, d.tcp.seq + 1, kTcpAck, 65535));
  EXPECT_LT(p.conn->rto_ns(), 1'000'000'000);
  int64_t rto = p.conn->rto_ns();
  ASSERT_TRUE(p.conn->Send("bcd").ok());
  Parsed d2 = s.Next();
  s.Advance(rto - 20'000'000);
  EXPECT_TRUE(s.Quiet());
  s.Advance(40'000'000);
  Parsed re = s.Next();
  EXPECT_EQ(re.tcp.seq, d2.tcp.seq);
  EXPECT_EQ(re.payload, "bcd");
  EXPECT_EQ(p.conn->rto_ns(), 2 * rto);  // backed off
  EXPECT_EQ(s.stack->stats().tcp_timeouts, 1u);
}

TEST(Tcp, FastRetransmitOnThreeDuplicateAcks) {
  OneStack s;
  Passive p(s);
  p.conn->SetNoDelay(true);
  ASSERT_TRUE(p.conn->Send(std::string(5 * 1460, 'f')).ok());
  std::vector<Parsed> segs;
  for (int i = 0; i < 5; ++i) segs.push_back(s.Next());
  uint32_t lost = segs[1].tcp.seq;
  // The first arrives; the second is lost; 3 later ones make duplicate ACKs.
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, lost, kTcpAck, 65535));
  for (int i = 0; i < 2; ++i) {
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, lost, kTcpAck, 65535));
    EXPECT_TRUE(s.Quiet());
  }
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, lost, kTcpAck, 65535));
  Parsed re = s.Next();  // at once, not after an RTO
  EXPECT_EQ(re.tcp.seq, lost);
  EXPECT_EQ(re.payload.size(), 1460u);
  EXPECT_EQ(s.stack->stats().tcp_fast_retransmits, 1u);
  // A partial ACK (NewReno) retransmits the next hole too.
  s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, segs[3].tcp.seq, kTcpAck, 65535));
  Parsed re2 = s.Next();
  EXPECT_EQ(re2.tcp.seq, segs[3].tcp.seq);
}

// RFC 6582's "recover" starts at the ISS. It started at 0, so an ISS in
// the upper half of the sequence space looked like a recovery still in
// progress and three duplicate ACKs did nothing (half of all connections
// waited for the RTO). The two clocks give ISSs 2^31 apart.
TEST(Tcp, FastRetransmitWhateverTheIss) {
  for (int64_t shift : {int64_t{0}, int64_t{1} << 37}) {
    OneStack s(true, 1500, /*sack=*/false);
    s.clock.now += shift;
    Passive p(s);
    ASSERT_TRUE(p.conn);
    SCOPED_TRACE(p.iss);
    p.conn->SetNoDelay(true);
    ASSERT_TRUE(p.conn->Send(std::string(5 * 1460, 'f')).ok());
    uint32_t first = s.Next().tcp.seq;
    for (int i = 1; i < 5; ++i) s.Next();
    for (int i = 0; i < 3; ++i) {
      s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, first, kTcpAck, 65535));
    }
    ASSERT_FALSE(s.Quiet());
    EXPECT_EQ(s.Next().tcp.seq, first);
    EXPECT_EQ(s.stack->stats().tcp_fast_retransmits, 1u);
  }
}

TEST(Tcp, ListenBacklogDropsWhenTheAcceptQueueIsFull) {
  OneStack s;
  auto l = s.stack->NewTcp();
  ASSERT_TRUE(l->Bind({Ip4{}, kPort}).ok());
  ASSERT_TRUE(l->Listen(0).ok());  // Linux still queues one (sk_acceptq_is_full: >)
  auto connect = [&](uint16_t port) {
    s.Deliver(PeerTcp(port, kPort, 1, 0, kTcpSyn, 65535, {}, 1460));
    if (s.Quiet()) return false;
    Parsed sa = s.Next();
    s.Deliver(PeerTcp(port, kPort, 2, sa.tcp.seq + 1, kTcpAck, 65535));
    return true;
  };
  EXPECT_TRUE(connect(1001));
  EXPECT_NE(l->Readiness() & POLLIN, 0u);
  EXPECT_FALSE(connect(1002));  // SYN dropped, no answer
  EXPECT_EQ(s.stack->stats().tcp_listen_overflow, 1u);
  auto c = l->Accept();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->remote()->port, 1001);
  EXPECT_EQ(l->Accept().error(), Errno(EAGAIN));
  EXPECT_TRUE(connect(1003));
  // Closing the listener resets what it had queued.
  l->Close();
  Parsed rst = s.Next();
  EXPECT_TRUE(rst.tcp.flags & kTcpRst);
  EXPECT_EQ(rst.tcp.dst_port, 1003);
  (*c)->Close();
}

TEST(Tcp, BindRulesAndTimeWaitHoldsThePort) {
  OneStack s;
  auto a = s.stack->NewTcp(), b = s.stack->NewTcp();
  ASSERT_TRUE(a->Bind({Ip4{}, 8080}).ok());
  EXPECT_EQ(b->Bind({Ip4{}, 8080}).error(), Errno(EADDRINUSE));
  EXPECT_EQ(b->Bind({MakeIp4(10, 9, 9, 9), 8081}).error(), Errno(EADDRNOTAVAIL));
  a->Close();
  ASSERT_TRUE(b->Bind({Ip4{}, 8080}).ok());
  b->Close();
  // A connection in TIME_WAIT keeps its port: binding it fails unless both
  // the new socket and the old connection (from its listener) have
  // SO_REUSEADDR (inet_csk_bind_conflict()).
  for (bool reuse : {false, true}) {
    SCOPED_TRACE(reuse ? "listener with SO_REUSEADDR" : "plain listener");
    auto l = s.stack->NewTcp();
    l->SetReuseAddr(reuse);
    ASSERT_TRUE(l->Bind({Ip4{}, kPort}).ok());
    ASSERT_TRUE(l->Listen(1).ok());
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, 65535, {}, 1460));
    Parsed sa = s.Next();
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, sa.tcp.seq + 1, kTcpAck, 65535));
    auto conn = l->Accept().value();
    conn->Close();
    Parsed fin = s.Next();
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, fin.tcp.seq + 1, kTcpAck | kTcpFin, 65535));
    s.Next();
    ASSERT_EQ(conn->state(), TcpState::kTimeWait);
    l->Close();
    auto plain = s.stack->NewTcp(), reusing = s.stack->NewTcp();
    reusing->SetReuseAddr(true);
    EXPECT_EQ(plain->Bind({Ip4{}, kPort}).error(), Errno(EADDRINUSE));
    EXPECT_EQ(reusing->Bind({Ip4{}, kPort}).ok(), reuse);
    if (reuse) {
      EXPECT_TRUE(reusing->Listen(1).ok());  // a restarted server
    }
    reusing->Close();
    s.Advance(TcpEndpoint::kTimeWaitNs + 1'000'000'000);
    EXPECT_EQ(conn->state(), TcpState::kClosed);
    EXPECT_TRUE(plain->Bind({Ip4{}, kPort}).ok());
    plain->Close();
  }
}

TEST(Tcp, DataToAClosedSocketIsReset) {
  OneStack s;
  Passive p(s);
  p.Data("unread");
  s.Next();
  p.conn->Close();  // unread data: RST, not FIN (tcp_close())
  Parsed r = s.Next();
  EXPECT_TRUE(r.tcp.flags & kTcpRst);
  EXPECT_EQ(p.conn->state(), TcpState::kClosed);
}

TEST(Tcp, LoopbackConnectionNeverTouchesTheLink) {
  OneStack s;
  auto l = s.stack->NewTcp();
  ASSERT_TRUE(l->Bind({MakeIp4(127, 0, 0, 1), 8080}).ok());
  ASSERT_TRUE(l->Listen(4).ok());
  auto c = s.stack->NewTcp();
  EXPECT_EQ(c->Connect({MakeIp4(127, 0, 0, 1), 8080}).error(), Errno(EINPROGRESS));
  EXPECT_EQ(c->state(), TcpState::kEstablished);  // loopback ran on unlock
  EXPECT_EQ(c->mss(), 65495);
  auto srv = l->Accept();
  ASSERT_TRUE(srv.ok());
  std::string big(200000, 'L');
  size_t sent = 0, got = 0;
  char buf[65536];
  while (got < big.size()) {
    if (sent < big.size()) {
      auto n = c->Send(std::string_view(big).substr(sent));
      if (n.ok()) sent += *n;
    }
    auto r = (*srv)->Recv(buf, sizeof buf, false);
    if (r.ok()) got += *r;
    ASSERT_TRUE(r.ok() || r.error() == Errno(EAGAIN));
  }
  EXPECT_EQ(got, big.size());
  c->Close();
  (*srv)->Close();
  l->Close();
  EXPECT_TRUE(s.Quiet());
}

}  // namespace
}  // namespace seedvisor::netstack
