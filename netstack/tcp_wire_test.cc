// TCP between two stacks on a lossy wire: behaviour under loss and load.
#include <poll.h>
#include <sys/socket.h>

#include <cstdio>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::kOurIp;

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

// Toward a NIC that cuts TCP segments (TSO: the sentry's packet socket
// with PACKET_VNET_HDR) a bulk sender hands it frames of many whole
// segments, checksum left to the device: they cut into segments of at
// most the MSS, every checksum right (GsoCut), the peer takes each whole
// as a host's stack takes a veth's GSO frame, the bytes arrive intact,
// and the sender's link sees a fraction of the frames it saw without TSO.
TEST(TcpWire, TsoFramesOfManySegmentsArriveIntact) {
  std::string up = Pattern(4 << 20, 3), down = Pattern(100000, 4);
  uint64_t writes[2] = {0, 0};
  for (bool tso : {false, true}) {
    WirePair p;
    ASSERT_TRUE(p.server);
    p.w.tso = tso;
    uint64_t before = p.w.a_writes();
    EXPECT_EQ(Transfer(p.w, *p.client, *p.server, up), up);
    writes[tso] = p.w.a_writes() - before;
    EXPECT_EQ(Transfer(p.w, *p.server, *p.client, down), down);
    if (tso) {
      EXPECT_GT(p.w.max_cut_payload, 0u);
      EXPECT_LE(p.w.max_cut_payload, p.client->info().snd_mss);
    }
    EXPECT_EQ(p.w.a->stats().tcp_retransmits, 0u);
    EXPECT_EQ(p.w.b->stats().tcp_bad_checksum, 0u);
    if (tso) {
      EXPECT_GT(p.w.a->stats().tcp_tso_frames, 0u);
    } else {
      EXPECT_EQ(p.w.a->stats().tcp_tso_frames, 0u);
    }
  }
  std::printf("4 MiB: %llu frames written without TSO, %llu with\n",
              (unsigned long long)writes[0], (unsigned long long)writes[1]);
  // Without: one per segment (4 MiB / 1448 = 2897 and the ACKs).
  EXPECT_GT(writes[0], 2897u);
  EXPECT_LT(writes[1], writes[0] / 8);
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
  std::printf("2 MiB, 6 losses, 20 ms RTT: SACK %lld ms (%llu timeouts), "
              "NewReno %lld ms (%llu timeouts)\n",
              (long long)(sack.ns / 1'000'000), (unsigned long long)sack.st.tcp_timeouts,
              (long long)(reno.ns / 1'000'000), (unsigned long long)reno.st.tcp_timeouts);
  // A burst of twelve: NewReno needs twelve round trips, SACK about one.
  std::set<uint64_t> burst;
  for (uint64_t i = 100; i < 112; ++i) burst.insert(i);
  Outcome sack12 = run(true, burst), reno12 = run(false, burst);
  EXPECT_EQ(sack12.st.tcp_timeouts, 0u);
  EXPECT_EQ(sack12.st.tcp_retransmits, 12u);
  EXPECT_LT(sack12.ns + 160'000'000, reno12.ns)
      << "sack " << sack12.ns << " ns, reno " << reno12.ns;
  std::printf("2 MiB, a burst of 12 lost, 20 ms RTT: SACK %lld ms (%llu timeouts), "
              "NewReno %lld ms (%llu timeouts)\n",
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
