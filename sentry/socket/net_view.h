// The guest's view of its network: the interfaces, addresses and routes
// that netlink (netlink_route.h), the SIOCGIF* ioctls (if_ioctl.h) and
// /proc/net (net_proc.h) show, built once per question from one source so
// that all of them agree. With --network=sandbox the source is the
// sandbox's own stack (its lo and the NICs it took over); with
// --network=none it is the loopback-only namespace (lo with 127.0.0.1/8
// and ::1/128). --network=host asks the host and never gets here.
//
//   NetView v = StackView(net.stack());
//   if (const NetInterface* i = v.Find("eth0")) ... i->v4[0].addr ...
#ifndef SEEDVISOR_SENTRY_SOCKET_NET_VIEW_H_
#define SEEDVISOR_SENTRY_SOCKET_NET_VIEW_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "netstack/stack.h"

namespace seedvisor::sentry {

struct NetInterface {
  int index = 0;
  std::string name;
  bool loopback = false;
  netstack::MacAddr mac{};
  uint32_t mtu = 0;
  std::vector<netstack::AddrPrefix> v4;
  bool v6_loopback = false;  // ::1/128 (the loopback-only namespace has IPv6)
  std::vector<netstack::AddrPrefix> v6;  // other IPv6 addresses (global first, then link-local)
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;

  // dev_get_flags(): IFF_UP|IFF_RUNNING|IFF_LOWER_UP and IFF_LOOPBACK, or
  // IFF_BROADCAST|IFF_MULTICAST for Ethernet.
  uint32_t flags() const;
  uint16_t arp_type() const;  // ARPHRD_LOOPBACK or ARPHRD_ETHER
};

// One IPv4 route as fib_dump_info() describes it.
struct NetRoute {
  uint8_t table = 0;     // RT_TABLE_MAIN or RT_TABLE_LOCAL
  uint8_t type = 0;      // RTN_UNICAST or RTN_LOCAL
  uint8_t protocol = 0;  // RTPROT_KERNEL (from an address) or RTPROT_BOOT
  uint8_t scope = 0;     // RT_SCOPE_HOST, _LINK or _UNIVERSE
  netstack::AddrPrefix dst;
  netstack::Ip4 gateway;  // any(): none
  netstack::Ip4 prefsrc;  // any(): none
  int index = 0;          // the interface
};

// One IPv6 route as rt6_fill_node() describes it (scope is always
// universe for IPv6).
struct NetRoute6 {
  uint8_t table = 0;     // RT_TABLE_MAIN or RT_TABLE_LOCAL
  uint8_t type = 0;      // RTN_UNICAST, RTN_LOCAL or RTN_MULTICAST
  uint8_t protocol = 0;  // RTPROT_KERNEL (from an address) or RTPROT_BOOT
  netstack::AddrPrefix dst;  // IPv6 prefix length
  netstack::IpAddr gateway;  // zero(): none
  uint32_t metric = 0;       // 256 for a prefix route, 1024 default, 0 local
  int index = 0;             // the interface
};

struct NetView {
  std::vector<NetInterface> interfaces;  // by index, lo first
  std::vector<NetRoute> routes;          // main table, then local
  std::vector<NetRoute6> routes6;        // main table, then local, in fib6 walk order
  const NetInterface* Find(int index) const;
  const NetInterface* Find(std::string_view name) const;
};

NetView LoopbackOnlyView();
NetView StackView(netstack::Stack& stack);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NET_VIEW_H_
