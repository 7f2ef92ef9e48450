// Test helpers: a manual clock, a link that records frames, a fake remote
// host that writes frames by hand (so that tests check the stack's bytes
// against independently built ones), and a wire joining two stacks.
#ifndef SEEDVISOR_NETSTACK_TESTING_HARNESS_H_
#define SEEDVISOR_NETSTACK_TESTING_HARNESS_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "netstack/stack.h"

namespace seedvisor::netstack::testing {

struct ManualClock {
  int64_t now = 1'000'000'000;
  std::function<int64_t()> fn() {
    return [this] { return now; };
  }
};

class RecordingLink : public LinkEndpoint {
 public:
  void WriteFrame(std::string_view f) override { frames.emplace_back(f); }
  std::deque<std::string> frames;
  std::optional<std::string> Pop() {
    if (frames.empty()) return std::nullopt;
    std::string f = std::move(frames.front());
    frames.pop_front();
    return f;
  }
};

inline constexpr MacAddr kOurMac = {0x02, 0, 0, 0, 0, 0x02};
inline constexpr MacAddr kPeerMac = {0x02, 0, 0, 0, 0, 0x01};
inline constexpr Ip4 kOurIp = MakeIp4(10, 0, 0, 2);
inline constexpr Ip4 kPeerIp = MakeIp4(10, 0, 0, 1);

// A parsed frame from the stack.
struct Parsed {
  EthHeader eth;
  ArpPacket arp;
  Ip4Header ip;
  TcpHeader tcp;
  UdpHeader udp;
  std::string payload;  // transport payload (ICMP: the whole message)
  bool is_arp = false, is_ip = false;
};
// Parses and checks every checksum; fails the current test if one is wrong.
Parsed ParseFrame(const std::string& f);

// Frames as the peer would send them, built here byte by byte.
std::string PeerIpFrame(uint8_t proto, std::string_view l4, Ip4 src = kPeerIp,
                        Ip4 dst = kOurIp, uint16_t id = 1, uint16_t frag = 0, uint8_t ttl = 64);
std::string PeerTcp(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                    uint16_t window, std::string_view payload = {}, uint16_t mss = 0);
// The same with `options` as raw bytes (a multiple of 4 long), written by
// the test byte by byte.
std::string PeerTcpOpts(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                        uint8_t flags, uint16_t window, std::string_view options,
                        std::string_view payload = {});
// The option bytes of the TCP segment in an IPv4 frame, as sent.
std::string TcpOptions(const std::string& frame);
// `v` as 4 big-endian bytes (option fields written by hand).
std::string Be32(uint32_t v);
std::string PeerUdp(uint16_t sport, uint16_t dport, std::string_view payload);
std::string PeerArp(uint16_t op, Ip4 tpa, MacAddr tha = {});

// A stack with eth0 = kOurIp/24 on a RecordingLink, the peer's MAC already
// known (so tests start past ARP unless they test it). Timestamps are off
// unless asked for (net.ipv4.tcp_timestamps=0): most tests script the
// segments' exact options without them.
struct OneStack {
  explicit OneStack(bool learn_peer = true, uint32_t mtu = 1500, bool sack = true,
                    bool timestamps = false);
  ~OneStack();
  ManualClock clock;
  RecordingLink link;
  std::unique_ptr<Stack> stack;
  int nic = 0;
  void Deliver(const std::string& f) { stack->DeliverFrame(nic, f); }
  void Advance(int64_t ns) {
    clock.now += ns;
    stack->Advance();
  }
  // The next frame the stack sent, parsed; fails if none. ARP requests for
  // the peer are answered (and skipped) while answer_arp is set.
  bool answer_arp = true;
  Parsed Next();
  bool Quiet() const { return link.frames.empty(); }
};

// What the host does with a frame a stack left offloads to (an IPv4 TCP
// segment: a PacketLink's virtio_net_hdr): cut into gso_size pieces as
// tcp_gso_segment() does (sequence numbers, IP ids and lengths, PSH and
// FIN on the last piece only) and every checksum completed. Fails the
// current test if `o` does not describe the frame (header lengths, the
// pseudo-header sum in the checksum field).
std::vector<std::string> GsoCut(std::string_view frame, const TxOffload& o);

// Two stacks (10.0.0.1 and 10.0.0.2) joined by a wire that can drop or
// hold frames.
class Wire {
 public:
  // `sack`, `timestamps`: the stacks' net.ipv4.tcp_sack and tcp_timestamps.
  explicit Wire(bool sack = true, bool timestamps = true);
  ~Wire();
  ManualClock clock;
  std::unique_ptr<Stack> a, b;
  // Delivers queued frames that are due until none are left (or `max`
  // were moved). Returns how many.
  int Pump(int max = 100000);
  // Moves time forward in 1 ms steps, pumping, for `ns`.
  void Run(int64_t ns);
  // One-way delay: a frame is delivered `delay_ns` after it was sent.
  int64_t delay_ns = 0;
  // Drop the next frame a sends that carries TCP payload, `n` times.
  int drop_a_data = 0;
  // Drop the frames a sends that carry TCP payload by their index among
  // those (0: the first data frame a sent).
  std::set<uint64_t> drop_a_data_at;
  uint64_t a_data_frames = 0;
  // Drop everything in both directions while set.
  bool cut = false;
  uint64_t frames = 0;
  // Both links take offloads (TSO and partial checksums). As a veth
  // does, a frame goes to the other stack whole (its checksum completed);
  // GsoCut checks that it can be cut.
  bool tso = false;
  uint64_t a_writes() const { return ea_.writes; }  // frames a handed its link
  size_t max_cut_payload = 0;  // the largest piece GsoCut made

 private:
  struct End : LinkEndpoint {
    Wire* w = nullptr;
    std::deque<std::pair<int64_t, std::string>> q;  // due time, frame
    uint64_t writes = 0;
    void WriteFrame(std::string_view f) override {
      ++writes;
      q.emplace_back(w->clock.now + w->delay_ns, f);
    }
    bool TakesOffloads() const override { return w->tso; }
    void WriteOffloadedFrame(std::string_view f, const TxOffload& o) override {
      ++writes;
      for (const std::string& piece : GsoCut(f, o)) {
        w->max_cut_payload = std::max(w->max_cut_payload, ParseFrame(piece).payload.size());
      }
      TxOffload whole = o;
      whole.gso_size = 0;
      std::vector<std::string> one = GsoCut(f, whole);
      if (!one.empty()) q.emplace_back(w->clock.now + w->delay_ns, std::move(one[0]));
    }
    bool Ready() const { return !q.empty() && q.front().first <= w->clock.now; }
  };
  End ea_, eb_;
  int nic_a_ = 0, nic_b_ = 0;
};

}  // namespace seedvisor::netstack::testing

#endif  // SEEDVISOR_NETSTACK_TESTING_HARNESS_H_
