// A user-space IPv4 and IPv6 stack: Ethernet, ARP, IPv4 (fragment
// reassembly and fragmentation), IPv6 with neighbour discovery, ICMP and
// ICMPv6 echo, UDP and TCP over both, plus a loopback interface (127.0.0.1,
// ::1).
//
// The Stack object is the *shared* part of AFaaS's split: protocol code,
// the demultiplexing and port tables, the timer wheel, the reassembly
// queue, counters. A seed builds it once; a host fork of the sentry copies
// it as plain memory (it owns no thread and no host fd). The *instance*
// part (netstack/instance/instance.h: NICs with their device, addresses,
// neighbours, routes, and the secrets) is what a fork changes: it attaches
// its own device and re-keys with RekeyAfterFork() before its guest runs.
//
// Threading: one mutex guards everything. Guest tasks (one sentry thread
// each) call endpoint methods; a device thread calls DeliverFrame(); some
// thread calls Advance() when NextTimerDeadline() passes. Observers run
// after the lock is released. No call blocks.
//
//   Stack stack({});
//   int eth0 = stack.AddNic({"eth0", mac, 1500}, &device).value();
//   stack.AddAddress(eth0, {MakeIp4(10, 0, 0, 2), 24});
//   stack.AddRoute({Ip4{}, 0}, MakeIp4(10, 0, 0, 1), eth0);
//   device-thread: stack.DeliverFrame(eth0, frame);
#ifndef SEEDVISOR_NETSTACK_STACK_H_
#define SEEDVISOR_NETSTACK_STACK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "netstack/instance/instance.h"
#include "netstack/shared/port_table.h"
#include "netstack/shared/reassembly.h"
#include "netstack/shared/tcp.h"
#include "netstack/shared/timer_wheel.h"
#include "netstack/shared/udp.h"
#include "netstack/shared/wire6.h"
#include "sentry/base/errno.h"

namespace seedvisor::netstack {

// Why frames and packets were dropped, and what was done. Names follow the
// reason; tests read them, /proc/net/snmp will.
struct Stats {
  uint64_t frames_in = 0, frames_out = 0;
  uint64_t eth_malformed = 0, eth_not_for_us = 0, eth_unknown_type = 0;
  uint64_t arp_malformed = 0, arp_replies_sent = 0, arp_requests_sent = 0;
  uint64_t arp_queue_overflow = 0, arp_failed = 0;
  uint64_t ip_truncated = 0, ip_bad_version = 0, ip_bad_header_len = 0, ip_bad_total_len = 0;
  uint64_t ip_bad_checksum = 0, ip_not_for_us = 0, ip_unknown_proto = 0, ip_bad_src = 0;
  uint64_t ip_no_route = 0, ip_frag_overlap = 0, ip_frag_too_big = 0, ip_frag_no_room = 0;
  uint64_t ip_frag_bad_len = 0, ip_frag_timeout = 0, ip_reassembled = 0, ip_fragmented = 0;
  uint64_t icmp_malformed = 0, icmp_echo_replies = 0, icmp_unreach_sent = 0;
  uint64_t udp_malformed = 0, udp_bad_checksum = 0, udp_no_port = 0, udp_rcvbuf_full = 0;
  uint64_t udp_errqueue_full = 0;
  uint64_t ping_delivered = 0, ping_no_socket = 0;  // echo replies to ping sockets
  uint64_t raw_delivered = 0;                       // copies to raw ICMP sockets
  uint64_t tcp_malformed = 0, tcp_bad_checksum = 0, tcp_rst_sent = 0, tcp_listen_overflow = 0;
  uint64_t tcp_retransmits = 0, tcp_fast_retransmits = 0, tcp_timeouts = 0;
  uint64_t tcp_bad_seq = 0, tcp_ooo_segments = 0, tcp_ooo_overflow = 0;
  uint64_t tcp_sack_recoveries = 0, tcp_sack_retransmits = 0;
  // SACK ranges looked at (the scoreboard as sender, the out-of-order
  // ranges as receiver): the work a peer's segments cause, bounded per
  // segment (tcp_sack.cc).
  uint64_t tcp_sack_scan = 0;
  uint64_t tcp_keepalive_probes = 0, tcp_keepalive_timeouts = 0;
  uint64_t tcp_paws_drops = 0;  // segments with an old timestamp (RFC 7323 5)
  uint64_t tcp_dsack_sent = 0, tcp_dsack_received = 0;  // RFC 2883 blocks
  // TCP segments of more than one MSS handed to a NIC to cut (TSO).
  uint64_t tcp_tso_frames = 0;
  uint64_t ip6_truncated = 0, ip6_bad_version = 0, ip6_bad_payload_len = 0, ip6_bad_src = 0;
  uint64_t ip6_not_for_us = 0, ip6_ext_header = 0, ip6_too_big = 0;
  uint64_t icmp6_malformed = 0, icmp6_echo_replies = 0, icmp6_unreach_sent = 0;
  uint64_t nd_malformed = 0, nd_solicits_sent = 0, nd_adverts_sent = 0;
};

// What the guest's views of the network show (netlink, SIOCGIF*,
// /proc/net): copies taken under the stack's lock (stack_view.cc).
struct NicInfo {
  int id = 0;
  std::string name;
  MacAddr mac{};
  uint32_t mtu = 0;
  bool loopback = false;
  std::vector<AddrPrefix> addrs;
  uint64_t rx_frames = 0, tx_frames = 0, rx_bytes = 0, tx_bytes = 0;
};

// One TCP or UDP socket as /proc/net/{tcp,udp} lists it. `state` uses
// Linux's numbering (include/net/tcp_states.h: TCP_ESTABLISHED 1 ..
// TCP_CLOSING 11); UDP is 1 when connected, else 7 (TCP_CLOSE).
struct SocketInfo {
  SockAddr local, remote;
  bool v6 = false;  // an AF_INET6 socket's: /proc/net/{tcp6,udp6}
  int state = 0;
  uint64_t tx_queue = 0, rx_queue = 0;
  uint32_t uid = 0;
  uint64_t ino = 0;  // 0: no socket file any more (orphaned, TIME_WAIT)
  // TCP only: the retransmission timeout, congestion window and slow-start
  // threshold in segments (-1 while in the initial slow start).
  int64_t rto_ns = 0;
  uint32_t cwnd = 0;
  int64_t ssthresh = -1;
};

struct StackOptions {
  // CLOCK_MONOTONIC in ns unless set (tests drive a manual clock).
  std::function<int64_t()> now_ns;
  // Non-zero: derive the secrets from it (reproducible tests); 0: getrandom.
  uint64_t secret_seed = 0;
  // Called (under the stack's lock; it must only signal) when a timer is
  // armed earlier than the deadline NextTimerDeadline() last gave: the
  // thread that drives Advance() must wake sooner.
  std::function<void()> timer_kick;
  // net.ipv4.tcp_sack: offer and use selective acknowledgments (RFC 2018).
  bool tcp_sack = true;
  // net.ipv4.tcp_timestamps: offer and use timestamps (RFC 7323 3-5).
  bool tcp_timestamps = true;
};

class Stack {
 public:
  static constexpr int kLoopbackNic = 1;
  static constexpr uint8_t kDefaultTtl = 64;  // net.ipv4.ip_default_ttl

  explicit Stack(StackOptions opts);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // ---- the instance part ----
  // A new Ethernet NIC on `link` (which must outlive the stack); its id.
  Result<int> AddNic(const NicConfig& cfg, LinkEndpoint* link);
  // Also adds the on-link route. An IPv6 NIC needs its link-local
  // address added like any other (the takeover copies the kernel's).
  Status AddAddress(int nic, AddrPrefix a);
  Status AddRoute(AddrPrefix dst, IpAddr gateway, int nic);
  // New secrets for this instance (after a sandbox fork). No allocation.
  void RekeyAfterFork();
  // A sandbox fork's device change: every NIC but lo goes, with its
  // neighbours and routes (the seed's devices are the seed's); AddNic then
  // attaches the fork's own. Sockets keep their addresses: one bound to
  // the seed's address is reached again only if the new device has it.
  void DetachDevices();
  std::vector<AddrPrefix> Addresses(int nic);
  // stack_view.cc: the NICs (lo first), the routes (longest prefix
  // first) and the sockets in the stack's tables, in a stable order.
  std::vector<NicInfo> Nics();
  std::vector<Route> Routes();
  std::vector<SocketInfo> TcpSockets();
  std::vector<SocketInfo> UdpSockets();

  // ---- input and time ----
  // `csum_not_ready`: the host says the transport checksum was never
  // filled in (a frame from a local stack through a veth with checksum
  // offload: TP_STATUS_CSUMNOTREADY); it is not checked then.
  void DeliverFrame(int nic, std::string_view frame, bool csum_not_ready = false);
  void Advance();  // runs the timers that are due
  // The earliest timer deadline (-1: none); the caller sleeps until then
  // and is kicked (StackOptions::timer_kick) if an earlier one comes.
  int64_t NextTimerDeadline();
  int64_t Now() const { return now_ns_(); }

  std::shared_ptr<TcpEndpoint> NewTcp();
  std::shared_ptr<UdpEndpoint> NewUdp();
  // An ICMP (or, `v6`, ICMPv6) echo socket: udp.h, ping.cc.
  std::shared_ptr<UdpEndpoint> NewPing(bool v6);
  // A raw ICMP (`v6`: ICMPv6) socket: udp.h, ping.cc.
  std::shared_ptr<UdpEndpoint> NewRawIcmp(bool v6);
  Stats stats();

  // Holds the stack's lock; on release, runs the loopback queue and then
  // (unlocked) the observers that were notified. Endpoint methods take one.
  class Locked {
   public:
    explicit Locked(Stack* s);
    ~Locked();
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

   private:
    Stack* s_;
  };

 private:
  friend class TcpEndpoint;
  friend class UdpEndpoint;
  friend class Endpoint;

  struct RouteResult {
    Nic* nic;
    IpAddr next_hop;
    IpAddr src;  // the source address to use
  };
  using ConnKey = std::tuple<IpAddr, uint16_t, IpAddr, uint16_t>;  // local, remote
  // A transport packet's addresses, and what an ICMP error about it quotes.
  struct L3 {
    IpAddr src, dst;
    const Ip4Header* ip4 = nullptr;  // IPv4: the header
    std::string_view packet;         // IPv6: the whole packet
    int nic = 0;                     // the NIC it came in on
    uint8_t ttl = 0, tos = 0;        // TTL or hop limit, TOS or traffic class
  };

  // stack.cc
  Nic* GetNic(int id);
  void InsertRoute(const Route& r);
  // Every protocol timer is armed here, so that the driver learns of a
  // deadline earlier than the one it sleeps for.
  void ArmTimer(Timer* t, int64_t deadline_ns);
  bool IsLocalAddress(const IpAddr& a) const;
  // stack_scope.cc: link-local addresses belong to one NIC. The id of
  // the NIC (not lo) that has address `a`, 0 if none; whether NIC `nic`
  // has it.
  uint32_t NicOwning(const IpAddr& a) const;
  bool HasAddressOn(const IpAddr& a, uint32_t nic) const;
  // An IPv4 broadcast address of ours: 255.255.255.255, or an address's
  // subnet broadcast (prefix < 31) or configured one: Linux's RTN_BROADCAST
  // routes (fib_add_ifaddr()), 127.255.255.255 on lo among them.
  bool IsBroadcast(const IpAddr& a) const;
  // `oif` (a NIC id, 0: any) scopes a link-local `dst`: only that NIC's
  // routes and addresses count, as ip6_route_output() with
  // RT6_LOOKUP_F_IFACE (ENETUNREACH otherwise).
  Result<RouteResult> FindRoute(const IpAddr& dst, uint32_t oif = 0);
  // stack_link.cc: Ethernet and ARP.
  void HandleArp(Nic* nic, std::string_view pkt);
  // `packet` is IPv4 or IPv6, as `next_hop` is.
  // `off`: what SendIp left to the NIC (only to one that TakesOffloads()).
  void SendOnLink(Nic* nic, const IpAddr& next_hop, std::string packet, PacketOffload off = {});
  // The same for a packet after kEthHeaderLen bytes of room in `frame`,
  // where the Ethernet header is written (no copy when the neighbour is
  // known).
  void SendFramed(Nic* nic, const IpAddr& next_hop, std::string* frame, PacketOffload off);
  // True with `dst` set if `packet` can go to `next_hop` now; false if it
  // was queued instead (a copy: to loopback, or until the neighbour answers).
  bool NextHopMac(Nic* nic, const IpAddr& next_hop, std::string_view packet, PacketOffload off,
                  MacAddr* dst);
  void WriteEth(Nic* nic, const MacAddr& dst, uint16_t type, std::string_view packet,
                PacketOffload off = {});
  // A whole frame to the NIC's link, with what `off` leaves to it.
  void WriteLink(Nic* nic, std::string_view frame, PacketOffload off);
  void SendArp(Nic* nic, uint16_t op, const MacAddr& dst_mac, const MacAddr& tha, Ip4 tpa);
  void ArpTimer(Nic* nic, IpAddr ip);
  // `mac` answers for `ip` (ARP, or a neighbour advertisement): update the
  // entry (make one if `create`) and send what waited for it.
  void ConfirmNeighbor(Nic* nic, const IpAddr& ip, const MacAddr& mac, bool create);
  // stack_ip.cc: IPv4 and ICMP.
  void HandleIp(Nic* nic, std::string_view pkt);  // either version
  void HandleIp4(Nic* nic, std::string_view pkt);
  void HandleTransport(const Ip4Header& h, std::string_view payload, int nic);
  void HandleIcmp(const Ip4Header& h, std::string_view msg, int nic);
  void SendIcmpUnreachable(const Ip4Header& h, std::string_view ip_packet, uint8_t code);
  // Sends `payload` (a transport segment) from `src` to `dst`; ENETUNREACH
  // without a route, EMSGSIZE past 64 KiB.
  // IPv6 (`dst` not IPv4-mapped) goes to SendIp6. `off` (TCP only): a
  // checksum holding the pseudo-header sum only is completed here unless
  // the route's NIC TakesOffloads(); a segment to cut (gso_size) may
  // exceed the MTU only on such a NIC (EMSGSIZE elsewhere). `tos`: IPv4's
  // TOS or IPv6's traffic class.
  Status SendIp(const IpAddr& src, const IpAddr& dst, uint8_t proto, std::string_view payload,
                bool df, uint8_t ttl = kDefaultTtl, uint32_t flow_label = 0,
                PacketOffload off = {}, uint8_t tos = 0);
  // Whether the route to `dst` goes out of a NIC that TakesOffloads().
  bool OffloadsTo(const IpAddr& dst);
  // `off` as SendIp passes it on: a partial checksum completed in `pkt`
  // (its transport part starts at `l4`) unless `nic` takes offloads.
  PacketOffload OffloadFor(Nic* nic, std::string* pkt, size_t l4, PacketOffload off);
  void ReassemblyTimer();
  // stack_ip6.cc: IPv6, ICMPv6 and neighbour discovery.
  void HandleIp6(Nic* nic, std::string_view pkt);
  void HandleIcmp6(Nic* nic, const Ip6Header& h, std::string_view msg);
  void HandleNd(Nic* nic, const Ip6Header& h, std::string_view msg);
  void SendNeighborSolicit(Nic* nic, const IpAddr& target);
  void SendIcmp6Unreachable(const Ip6Header& h, std::string_view pkt, uint8_t code);
  // An ICMPv6 error message `msg` that came in header `h`.
  void Icmp6Error(const Ip6Header& h, std::string_view msg);
  // No fragmentation: a packet past the MTU is EMSGSIZE (TCP's MSS keeps
  // below it).
  Status SendIp6(const IpAddr& src, const IpAddr& dst, uint8_t proto, std::string_view payload,
                 uint8_t hop_limit, uint32_t flow_label, PacketOffload off = {},
                 uint8_t tclass = 0);
  // Transport demultiplexing (stack_demux.cc).
  void HandleTcp(const L3& ip, std::string_view seg);
  void HandleUdp(const L3& ip, std::string_view seg);
  // The listener a SYN from `sport` to `ip.dst`:`dport` goes to (null:
  // none): one bound to that address before a wildcard one, an AF_INET
  // one before an AF_INET6 one for IPv4; of a SO_REUSEPORT group that fits
  // as well, the member the flow's keyed hash picks (compute_score(),
  // inet_lhash2_lookup(), reuseport_select_sock()).
  std::shared_ptr<TcpEndpoint> FindListener(const L3& ip, uint16_t sport, uint16_t dport);
  // A reset for segment `h` that came from `src` to `dst`.
  void SendRstFor(const IpAddr& src, const IpAddr& dst, const TcpHeader& h, size_t payload_len);
  // What recvmsg's control messages say of a datagram that came as `ip`.
  RecvInfo RecvInfoOf(const L3& ip);
  UdpEndpoint* FindUdp(const IpAddr& dst, uint16_t dport, const IpAddr& src, uint16_t sport);
  // An ICMP or ICMPv6 error quoting `quoted`, a UDP datagram we sent (its
  // IP header's addresses, then the UDP header and what follows): to the
  // endpoint that sent it (__udp4_lib_err(), __udp6_lib_err()).
  void UdpIcmpError(const IpAddr& src, const IpAddr& dst, std::string_view quoted, IcmpError e,
                    bool hard);
  // ping.cc: an echo reply (`proto` ICMP or ICMPv6) to the ping socket of
  // its identifier; an ICMP error quoting `quoted`, an echo request we
  // sent from `src` to `dst`, to the socket that sent it.
  void HandleEchoReply(const L3& ip, uint8_t proto, std::string_view msg);
  // A copy of ICMP message `msg` (after `ip_header`: IPv4's, or empty) to
  // every raw socket of `proto` that takes it.
  void DeliverRawIcmp(const L3& ip, uint8_t proto, std::string_view ip_header,
                      std::string_view msg);
  void PingIcmpError(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                     std::string_view quoted, IcmpError e, bool hard);

  std::function<int64_t()> now_ns_;
  std::function<void()> timer_kick_;
  bool tcp_sack_ = true;
  bool tcp_timestamps_ = true;
  int64_t driver_wakes_at_ = -1;  // what NextTimerDeadline() last said (-1: never)
  absl::Mutex mu_;
  Instance inst_;
  TimerWheel wheel_;
  Reassembler reasm_;
  Timer reasm_timer_;
  Stats stats_;
  uint16_t ip_id_ = 0;
  bool skip_l4_csum_ = false;  // while delivering a csum_not_ready frame
  std::deque<std::string> loopback_queue_;
  // The send path's buffers, reused under the lock: a fresh 64 KiB string
  // per TSO frame cost more than the frame (glibc gave each freed one back
  // with madvise(MADV_DONTNEED): a TLB shootdown on every core, and page
  // faults to touch it again).
  std::string tx_payload_;  // TcpEndpoint::SendQueueBytes: data to send
  std::string tx_segment_;  // TcpEndpoint::SendSegment: the TCP segment
  ChunkPool chunk_pool_;    // every TCP connection's send and receive queues
  std::string tx_frame_;    // SendIp: Ethernet room, then the IP packet
  std::vector<std::function<void()>> notify_;

  PortTable tcp_ports_, udp_ports_;
  std::map<ConnKey, std::shared_ptr<TcpEndpoint>> tcp_conns_;
  // Listeners by local port; several (one per address) may share a port.
  std::multimap<uint16_t, std::shared_ptr<TcpEndpoint>> tcp_listeners_;
  std::multimap<uint16_t, UdpEndpoint*> udp_bound_;
  // Ping sockets by echo identifier, of both families, the last bound
  // first (ping_get_port() adds at the head of its hash chain, and
  // ping_lookup() takes the first that fits); the rover picks identifiers
  // for sockets that did not bind one.
  std::multimap<uint16_t, UdpEndpoint*> ping_bound_;
  uint16_t ping_rover_ = 0;
  std::multimap<uint8_t, UdpEndpoint*> raw_icmp_;  // raw sockets by protocol
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_STACK_H_
