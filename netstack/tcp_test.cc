// TCP against a hand-driven peer (exact segments) and between two stacks
// on a lossy wire (behaviour under loss and load).
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::OneStack;
using testing::Parsed;
using testing::Be32;
using testing::PeerTcp;
using testing::TcpOptions;
using testing::kOurIp;
using testing::kPeerIp;

constexpr uint16_t kPort = 80, kPeerPort = 40000;
constexpr uint32_t kPeerIss = 1000;

// A passive connection on the stack's port 80, established with the peer.
// `syn_opts`: the raw options of the peer's SYN (default: MSS peer_mss).
struct Passive {
  explicit Passive(OneStack& s, uint16_t peer_mss = 1460, uint16_t peer_window = 65535,
                   size_t rcvbuf = 0, std::string_view syn_opts = {})
      : s(s) {
    listener = s.stack->NewTcp();
    if (rcvbuf) listener->SetBufferSizes(rcvbuf, 0);
    EXPECT_TRUE(listener->Bind({Ip4{}, kPort}).ok());
    EXPECT_TRUE(listener->Listen(8).ok());
    if (syn_opts.empty()) {
      s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, peer_window, {}, peer_mss));
    } else {
      s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, peer_window, syn_opts));
    }
    EXPECT_FALSE(s.Quiet());
    if (!s.Quiet()) synack_opts = TcpOptions(s.link.frames.front());
    synack = s.Next();
    EXPECT_EQ(synack.tcp.flags, kTcpSyn | kTcpAck);
    EXPECT_EQ(synack.tcp.ack, kPeerIss + 1);
    EXPECT_EQ(synack.tcp.mss, 1460);  // our MTU 1500 - 40
    iss = synack.tcp.seq;
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1, iss + 1, kTcpAck, peer_window));
    auto c = listener->Accept();
    EXPECT_TRUE(c.ok());
    if (c.ok()) conn = *c;
    EXPECT_TRUE(s.Quiet());
  }
  ~Passive() {
    if (conn) conn->Close();
    listener->Close();
  }
  // A segment from the peer at its next sequence number.
  void Data(std::string_view d, uint32_t seq_off = 0, uint8_t flags = kTcpAck | kTcpPsh) {
    s.Deliver(PeerTcp(kPeerPort, kPort, kPeerIss + 1 + seq_off, ack, flags, 65535, d));
  }
  std::string Read() {
    char buf[70000];
    auto n = conn->Recv(buf, sizeof buf, false);
    return n.ok() ? std::string(buf, *n) : std::string("<") + std::to_string(n.error().value()) + ">";
  }
  OneStack& s;
  std::shared_ptr<TcpEndpoint> listener, conn;
  Parsed synack;
  std::string synack_opts;
  uint32_t iss = 0;
  uint32_t ack = 0;  // what the peer acknowledges (set by tests)
};

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

// ---- window scaling (RFC 7323 2) ----

// Options as Linux writes them (no timestamps): MSS 1460, NOP, WS 7; and
// with NOP NOP SACK-permitted between.
const std::string kMss1460Ws7("\x02\x04\x05\xb4\x01\x03\x03\x07", 8);
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
  s.Deliver(PeerTcp(80, syn.tcp.src_port, 5000, syn.tcp.seq + 1, kTcpSyn | kTcpAck, 65535, {}, 1460));
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

// ---- SACK (RFC 2018, RFC 6675) ----

// NOP NOP SACK with the blocks given.
std::string SackOpt(std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
  std::string o = "\x01\x01\x05";
  o.push_back(char(2 + 8 * blocks.size()));
  for (auto [l, r] : blocks) o += Be32(l) + Be32(r);
  return o;
}
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
      s.Deliver(testing::PeerTcpOpts(kPeerPort, kPort, kPeerIss + 1, peer_next, kTcpAck, 65535, opt));
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
  int64_t rto = 1'000'000'000, deadline = s.clock.now;
  for (int i = 0; i < TcpEndpoint::kSynRetries; ++i) {
    deadline += rto;
    s.Advance(deadline - 10'000'000 - s.clock.now);
    EXPECT_TRUE(s.Quiet()) << "retransmitted early, try " << i;
    s.Advance(deadline + 1'000'000 - s.clock.now);
    Parsed again = s.Next();
    EXPECT_EQ(again.tcp.flags, kTcpSyn);
    EXPECT_EQ(again.tcp.seq, first.tcp.seq);
    rto *= 2;
  }
  EXPECT_EQ(c->state(), TcpState::kSynSent);
  s.Advance(deadline + rto + 1'000'000 - s.clock.now);
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

// ---- two stacks on a wire ----

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 r(seed);
  for (char& c : s) c = char(r());
  return s;
}

// Moves `data` from `tx` to `rx` through the wire; returns what arrived.
std::string Transfer(testing::Wire& w, TcpEndpoint& tx, TcpEndpoint& rx, const std::string& data,
                     int64_t max_ns = 120'000'000'000) {
  std::string got;
  size_t sent = 0;
  char buf[65536];
  for (int64_t t = 0; t < max_ns && got.size() < data.size(); t += 1'000'000) {
    if (sent < data.size()) {
      auto n = tx.Send(std::string_view(data).substr(sent));
      if (n.ok()) sent += *n;
    }
    w.Pump();
    for (;;) {
      auto r = rx.Recv(buf, sizeof buf, false);
      if (!r.ok() || *r == 0) break;
      got.append(buf, *r);
    }
    w.clock.now += 1'000'000;
    w.a->Advance();
    w.b->Advance();
  }
  return got;
}

struct WirePair {
  testing::Wire w;
  std::shared_ptr<TcpEndpoint> listener, client, server;
  explicit WirePair(bool sack = true) : w(sack) {
    listener = w.b->NewTcp();
    EXPECT_TRUE(listener->Bind({Ip4{}, 5001}).ok());
    EXPECT_TRUE(listener->Listen(16).ok());
    client = w.a->NewTcp();
    EXPECT_EQ(client->Connect({kOurIp, 5001}).error(), Errno(EINPROGRESS));
    w.Run(10'000'000);
    auto s = listener->Accept();
    EXPECT_TRUE(s.ok());
    if (s.ok()) server = *s;
  }
  ~WirePair() {
    if (server) server->Close();
    client->Close();
    listener->Close();
    w.Run(200'000'000);
  }
};

TEST(TcpWire, BulkBothWaysIntact) {
  WirePair p;
  ASSERT_TRUE(p.server);
  std::string up = Pattern(1 << 20, 1), down = Pattern(300000, 2);
  EXPECT_EQ(Transfer(p.w, *p.client, *p.server, up), up);
  EXPECT_EQ(Transfer(p.w, *p.server, *p.client, down), down);
  EXPECT_EQ(p.w.a->stats().tcp_retransmits, 0u);
}

// Two stacks agree on shift 7; a reader that keeps up makes its receive
// buffer grow (tcp_rcv_space_adjust()) up to tcp_rmem[2]'s share, and the
// sender's buffer follows its congestion window; SO_RCVBUF/SO_SNDBUF
// stop both.
TEST(TcpWire, BuffersGrowWithTheTransferUnlessSet) {
  WirePair p;
  ASSERT_TRUE(p.server);
  EXPECT_EQ(p.client->info().rcv_wscale, 7);
  EXPECT_EQ(p.client->info().snd_wscale, 7);
  EXPECT_EQ(p.server->info().snd_wscale, 7);
  EXPECT_EQ(p.server->info().rcvbuf, TcpEndpoint::kRcvBufDefault);
  std::string up = Pattern(4 << 20, 5);
  EXPECT_EQ(Transfer(p.w, *p.client, *p.server, up), up);
  EXPECT_GT(p.server->info().rcvbuf, TcpEndpoint::kRcvBufDefault);
  EXPECT_LE(p.server->info().rcvbuf, TcpEndpoint::kRcvRoomMax);
  EXPECT_GT(p.client->info().sndbuf, TcpEndpoint::kSndBufDefault);
  EXPECT_LE(p.client->info().sndbuf, TcpEndpoint::kWmemMax);

  WirePair q;
  ASSERT_TRUE(q.server);
  q.server->SetBufferSizes(100000, 0);
  q.client->SetBufferSizes(0, 200000);
  EXPECT_EQ(Transfer(q.w, *q.client, *q.server, up), up);
  EXPECT_EQ(q.server->info().rcvbuf, 100000u);
  EXPECT_EQ(q.client->info().sndbuf, 200000u);
}

TEST(TcpWire, RecoversFromLoss) {
  WirePair p;
  ASSERT_TRUE(p.server);
  p.client->SetNoDelay(true);
  std::string data = Pattern(400000, 3);
  p.w.drop_a_data = 1;  // one segment lost mid-flight: fast retransmit
  std::string got;
  size_t sent = 0;
  char buf[65536];
  // Let a window's worth go out, losing the first of it.
  for (int i = 0; i < 50000 && got.size() < data.size(); ++i) {
    if (sent < data.size()) {
      auto n = p.client->Send(std::string_view(data).substr(sent));
      if (n.ok()) sent += *n;
    }
    if (i == 20) p.w.drop_a_data = 3;  // a burst: some of it needs the RTO
    p.w.Pump();
    for (;;) {
      auto r = p.server->Recv(buf, sizeof buf, false);
      if (!r.ok() || *r == 0) break;
      got.append(buf, *r);
    }
    p.w.clock.now += 1'000'000;
    p.w.a->Advance();
    p.w.b->Advance();
  }
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  Stats st = p.w.a->stats();
  EXPECT_GE(st.tcp_retransmits, 1u);
  EXPECT_GE(st.tcp_fast_retransmits + st.tcp_timeouts, 1u);
}

// Six segments lost from one window on a wire with a 20 ms round trip,
// then a burst of twelve: with SACK every hole is resent in the first
// round trip of recovery; NewReno (tcp_sack off) learns of one hole per
// round trip (neither needs the RTO here: NewReno's partial ACKs re-arm it).
TEST(TcpWire, SackRecoversManyLossesFasterThanNewReno) {
  struct Outcome {
    int64_t ns = 0;
    Stats st;
  };
  auto run = [](bool sack, std::set<uint64_t> drops = {300, 303, 306, 309, 312, 315}) {
    WirePair p(sack);
    Outcome o;
    EXPECT_TRUE(p.server);
    if (!p.server) return o;
    EXPECT_EQ(p.client->info().sack_ok, sack);
    p.w.delay_ns = 10'000'000;
    p.w.drop_a_data_at = drops;
    std::string data = Pattern(2 << 20, 9);
    int64_t t0 = p.w.clock.now;
    std::string got = Transfer(p.w, *p.client, *p.server, data);
    o.ns = p.w.clock.now - t0;
    EXPECT_TRUE(got == data);
    o.st = p.w.a->stats();
    return o;
  };
  Outcome sack = run(true), reno = run(false);
  EXPECT_EQ(sack.st.tcp_timeouts, 0u);
  EXPECT_EQ(sack.st.tcp_sack_recoveries, 1u);
  EXPECT_EQ(sack.st.tcp_retransmits, 6u);  // the six holes, nothing twice
  EXPECT_EQ(reno.st.tcp_sack_recoveries, 0u);
  EXPECT_GE(reno.st.tcp_retransmits, 6u);
  // Four or more round trips (20 ms) saved.
  EXPECT_LT(sack.ns + 80'000'000, reno.ns) << "sack " << sack.ns << " ns, reno " << reno.ns;
  std::printf("2 MiB, 6 losses, 20 ms RTT: SACK %lld ms (%llu timeouts), NewReno %lld ms (%llu timeouts)\n",
              (long long)(sack.ns / 1'000'000), (unsigned long long)sack.st.tcp_timeouts,
              (long long)(reno.ns / 1'000'000), (unsigned long long)reno.st.tcp_timeouts);
  // A burst of twelve: NewReno needs twelve round trips, SACK about one.
  std::set<uint64_t> burst;
  for (uint64_t i = 100; i < 112; ++i) burst.insert(i);
  Outcome sack12 = run(true, burst), reno12 = run(false, burst);
  EXPECT_EQ(sack12.st.tcp_timeouts, 0u);
  EXPECT_EQ(sack12.st.tcp_retransmits, 12u);
  EXPECT_LT(sack12.ns + 160'000'000, reno12.ns) << "sack " << sack12.ns << " ns, reno " << reno12.ns;
  std::printf("2 MiB, a burst of 12 lost, 20 ms RTT: SACK %lld ms (%llu timeouts), NewReno %lld ms (%llu timeouts)\n",
              (long long)(sack12.ns / 1'000'000), (unsigned long long)sack12.st.tcp_timeouts,
              (long long)(reno12.ns / 1'000'000), (unsigned long long)reno12.st.tcp_timeouts);
}

// tcp_keepalive_timer(): idle for TCP_KEEPIDLE, then a probe every
// TCP_KEEPINTVL; a live peer answers each (the connection stays), a silent
// one gets TCP_KEEPCNT probes and the connection is reset with ETIMEDOUT.
TEST(TcpWire, KeepaliveProbesAnIdlePeerAndResetsASilentOne) {
  WirePair p;
  ASSERT_TRUE(p.server);
  TcpEndpoint::Keepalive k;
  EXPECT_FALSE(p.client->keepalive().on);
  EXPECT_EQ(p.client->keepalive().idle_s, 7200);
  k.on = true;
  k.idle_s = 10;
  k.intvl_s = 2;
  k.cnt = 3;
  p.client->SetKeepalive(k);
  p.w.Run(9'900'000'000);
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_probes, 0u);
  p.w.Run(200'000'000);
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_probes, 1u);
  // Answered: the next one comes a whole idle time later.
  p.w.Run(9'800'000'000);
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_probes, 1u);
  p.w.Run(40'000'000'000);
  EXPECT_GE(p.w.a->stats().tcp_keepalive_probes, 4u);
  EXPECT_EQ(p.client->state(), TcpState::kEstablished);
  EXPECT_EQ(p.w.b->stats().tcp_keepalive_probes, 0u);  // off by default
  // Data keeps it quiet: traffic is as good as an answer.
  uint64_t before = p.w.a->stats().tcp_keepalive_probes;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(p.server->Send("x").ok());
    p.w.Run(5'000'000'000);
    char c;
    ASSERT_TRUE(p.client->Recv(&c, 1, false).ok());
  }
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_probes, before);
  // The peer goes silent right after its last segment: 10 s idle, then 3
  // probes 2 s apart (10, 12, 14 s), then the reset (16 s).
  ASSERT_TRUE(p.server->Send("y").ok());
  p.w.Run(1'000'000);
  p.w.cut = true;
  p.w.Run(15'500'000'000);
  EXPECT_EQ(p.client->state(), TcpState::kEstablished);
  p.w.Run(1'000'000'000);
  EXPECT_EQ(p.client->state(), TcpState::kClosed);
  EXPECT_EQ(p.client->TakeError(), ETIMEDOUT);
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_probes, before + 3);
  EXPECT_EQ(p.w.a->stats().tcp_keepalive_timeouts, 1u);
  p.w.cut = false;
}

// A listener's keepalive settings pass to the connections it accepts.
TEST(TcpWire, KeepaliveIsInheritedFromTheListener) {
  testing::Wire w;
  auto l = w.b->NewTcp();
  ASSERT_TRUE(l->Bind({Ip4{}, 5002}).ok());
  TcpEndpoint::Keepalive k{true, 30, 5, 2};
  l->SetKeepalive(k);
  ASSERT_TRUE(l->Listen(4).ok());
  auto c = w.a->NewTcp();
  EXPECT_EQ(c->Connect({kOurIp, 5002}).error(), Errno(EINPROGRESS));
  w.Run(10'000'000);
  auto s = l->Accept();
  ASSERT_TRUE(s.ok());
  TcpEndpoint::Keepalive got = (*s)->keepalive();
  EXPECT_TRUE(got.on);
  EXPECT_EQ(got.idle_s, 30);
  EXPECT_EQ(got.intvl_s, 5);
  EXPECT_EQ(got.cnt, 2);
  w.Run(31'000'000'000);
  EXPECT_EQ(w.b->stats().tcp_keepalive_probes, 1u);
  (*s)->Close();
  c->Close();
  l->Close();
  w.Run(200'000'000);
}

TEST(TcpWire, HalfCloseBothDirections) {
  WirePair p;
  ASSERT_TRUE(p.server);
  ASSERT_TRUE(p.client->Send("request").ok());
  ASSERT_TRUE(p.client->Shutdown(SHUT_WR).ok());
  p.w.Run(5'000'000);
  char buf[64];
  auto n = p.server->Recv(buf, sizeof buf, false);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "request");
  EXPECT_EQ(p.server->Recv(buf, sizeof buf, false).value(), 0u);
  EXPECT_EQ(p.client->Send("x").error(), Errno(EPIPE));
  // The server still answers on its open half.
  ASSERT_TRUE(p.server->Send("response").ok());
  p.w.Run(5'000'000);
  n = p.client->Recv(buf, sizeof buf, false);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "response");
  p.server->Close();
  p.w.Run(5'000'000);
  EXPECT_EQ(p.client->Recv(buf, sizeof buf, false).value(), 0u);
  EXPECT_EQ(p.client->state(), TcpState::kTimeWait);
  EXPECT_EQ(p.server->state(), TcpState::kClosed);
  EXPECT_NE(p.client->Readiness() & POLLHUP, 0u);
}

TEST(TcpWire, ManyConnectionsGetDistinctPortsAndAllClose) {
  testing::Wire w;
  auto l = w.b->NewTcp();
  ASSERT_TRUE(l->Bind({Ip4{}, 7}).ok());
  ASSERT_TRUE(l->Listen(200).ok());
  std::vector<std::shared_ptr<TcpEndpoint>> cs, ss;
  std::set<uint16_t> ports;
  for (int i = 0; i < 100; ++i) {
    auto c = w.a->NewTcp();
    EXPECT_EQ(c->Connect({kOurIp, 7}).error(), Errno(EINPROGRESS));
    cs.push_back(c);
  }
  w.Run(5'000'000);
  for (auto& c : cs) {
    EXPECT_EQ(c->state(), TcpState::kEstablished);
    ports.insert(c->local().port);
    auto s = l->Accept();
    ASSERT_TRUE(s.ok());
    ss.push_back(*s);
  }
  EXPECT_EQ(ports.size(), 100u);
  for (auto& c : cs) c->Close();
  for (auto& s : ss) s->Close();
  w.Run(TcpEndpoint::kTimeWaitNs + 2'000'000'000);
  for (auto& c : cs) EXPECT_EQ(c->state(), TcpState::kClosed);
  for (auto& s : ss) EXPECT_EQ(s->state(), TcpState::kClosed);
  l->Close();
}

}  // namespace
}  // namespace seedvisor::netstack
