// The per-instance part of a netstack: what one sandbox attaches after it
// was forked from a seed, as opposed to the shared part (protocol code,
// tables, timer wheel) that every fork inherits from the seed unchanged.
// An Instance holds the NICs (device, MAC, MTU, addresses, neighbour
// cache), the route table and the instance's secrets. It is plain data
// owned and locked by its Stack (netstack/stack.h).
#ifndef SEEDVISOR_NETSTACK_INSTANCE_INSTANCE_H_
#define SEEDVISOR_NETSTACK_INSTANCE_INSTANCE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netstack/instance/link_endpoint.h"
#include "netstack/shared/secrets.h"
#include "netstack/shared/timer_wheel.h"
#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

// An address with its prefix length (counted within its family: 0..32 for
// IPv4, 0..128 for IPv6).
struct AddrPrefix {
  constexpr AddrPrefix() = default;
  constexpr AddrPrefix(IpAddr a, int len, Ip4 b = Ip4{}) : addr(a), prefix_len(len), brd(b) {}
  IpAddr addr;
  int prefix_len = 32;
  // The broadcast address the interface was configured with (IFA_BROADCAST;
  // any(): none), as the guest's views show it. The stack accepts the
  // subnet's broadcast() either way, as Linux does. IPv4 only.
  Ip4 brd;
  int bits() const { return addr.is_v4() ? 96 + prefix_len : prefix_len; }
  bool Contains(const IpAddr& a) const {
    return a.is_v4() == addr.is_v4() && a.SamePrefix(addr, bits());
  }
  Ip4 broadcast() const {
    uint32_t mask = prefix_len >= 32 ? 0xffffffffu : ~(0xffffffffu >> prefix_len);
    return Ip4{addr.v4().v | ~mask};
  }
};

// What a packet the stack sends leaves to the device (link_endpoint.h's
// TxOffload, before the Ethernet header is known). Only TCP sets it, and
// only gso_size for a NIC that TakesOffloads(); IP completes a partial
// checksum itself for any other NIC.
struct PacketOffload {
  bool csum_partial = false;  // the TCP checksum holds the pseudo-header sum only
  uint16_t gso_size = 0;      // a TCP segment to cut into pieces of this size
};

// An IP packet waiting for its next hop's MAC.
struct PendingPacket {
  std::string packet;
  PacketOffload off;
};

// One neighbour, IPv4 (ARP, RFC 826) or IPv6 (Neighbor Discovery, RFC
// 4861), with Linux's neighbour states reduced to: resolving, reachable.
// Packets wait in `pending` while resolving.
struct ArpEntry {
  explicit ArpEntry(std::function<void()> on_timer) : timer(std::move(on_timer)) {}
  bool resolved = false;
  MacAddr mac{};
  int64_t confirmed_ns = 0;
  int requests_sent = 0;
  std::deque<PendingPacket> pending;  // IP packets waiting for the MAC
  Timer timer;                      // request retry, then expiry
};

struct NicConfig {
  std::string name;
  MacAddr mac{};
  uint32_t mtu = 1500;
};

struct Nic {
  int id = 0;
  std::string name;
  MacAddr mac{};
  uint32_t mtu = 1500;
  bool loopback = false;
  LinkEndpoint* link = nullptr;  // null for loopback
  std::vector<AddrPrefix> addrs;
  std::map<IpAddr, std::unique_ptr<ArpEntry>> arp;  // by neighbour address
  uint64_t rx_frames = 0, tx_frames = 0, rx_bytes = 0, tx_bytes = 0;
};

struct Route {
  AddrPrefix dst;
  IpAddr gateway;  // any(): on-link
  int nic = 0;
};

struct Instance {
  std::vector<std::unique_ptr<Nic>> nics;  // index = id - 1; nics[0] is lo
  std::vector<Route> routes;               // longest prefix first
  Secrets secrets;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_INSTANCE_INSTANCE_H_
