// A passive TCP connection driven by hand: the stack listens on kPort,
// the hand-built peer (kPeerIp:kPeerPort, ISS kPeerIss) opens it with exact
// segments. Shared by the scripted-peer TCP tests.
#ifndef SEEDVISOR_NETSTACK_TESTING_PASSIVE_PEER_H_
#define SEEDVISOR_NETSTACK_TESTING_PASSIVE_PEER_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack::testing {

inline constexpr uint16_t kPort = 80, kPeerPort = 40000;
inline constexpr uint32_t kPeerIss = 1000;

// Our SYN's or SYN-ACK's options as Linux writes them without timestamps
// or SACK: MSS 1460, NOP, window scale 7.
inline const std::string kMss1460Ws7("\x02\x04\x05\xb4\x01\x03\x03\x07", 8);

// The peer's NOP NOP SACK option with the blocks given.
inline std::string SackOpt(std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
  std::string o = "\x01\x01\x05";
  o.push_back(char(2 + 8 * blocks.size()));
  for (auto [l, r] : blocks) o += Be32(l) + Be32(r);
  return o;
}

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
      s.Deliver(PeerTcpOpts(kPeerPort, kPort, kPeerIss, 0, kTcpSyn, peer_window, syn_opts));
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
    if (!n.ok()) return "<" + std::to_string(n.error().value()) + ">";
    return std::string(buf, *n);
  }
  OneStack& s;
  std::shared_ptr<TcpEndpoint> listener, conn;
  Parsed synack;
  std::string synack_opts;
  uint32_t iss = 0;
  uint32_t ack = 0;  // what the peer acknowledges (set by tests)
};

}  // namespace seedvisor::netstack::testing

#endif  // SEEDVISOR_NETSTACK_TESTING_PASSIVE_PEER_H_
