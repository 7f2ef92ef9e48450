#include "sentry/socket/net_view.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>

#include <algorithm>

namespace seedvisor::sentry {

using netstack::AddrPrefix;
using netstack::Ip4;

uint32_t NetInterface::flags() const {
  uint32_t f = IFF_UP | IFF_RUNNING | IFF_LOWER_UP;
  return f | (loopback ? IFF_LOOPBACK : IFF_BROADCAST | IFF_MULTICAST);
}

uint16_t NetInterface::arp_type() const { return loopback ? ARPHRD_LOOPBACK : ARPHRD_ETHER; }

const NetInterface* NetView::Find(int index) const {
  for (const NetInterface& i : interfaces) {
    if (i.index == index) return &i;
  }
  return nullptr;
}

const NetInterface* NetView::Find(std::string_view name) const {
  for (const NetInterface& i : interfaces) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

namespace {

// The IPv6 routes a Linux namespace with these interfaces has: the stack's
// prefix and default routes in main (addrconf_prefix_route(): metric 256,
// RTPROT_KERNEL; a default route as `ip -6 route add` makes it: metric
// 1024, RTPROT_BOOT), and in local every own address (including lo's ::1)
// and ff00::/8 on each device with IPv6 (addrconf_add_mroute()). Each table
// in the order a dump walks the fib6 tree (fib6_walk(): a prefix after
// every longer prefix inside it, otherwise by address).
void AddRoutes6(const std::vector<netstack::Route>& stack_routes, NetView* v) {
  for (const netstack::Route& r : stack_routes) {
    if (r.dst.addr.is_v4() || !v->Find(r.nic)) continue;
    NetRoute6 out;
    out.table = RT_TABLE_MAIN;
    out.type = RTN_UNICAST;
    out.dst = r.dst;
    out.index = r.nic;
    if (r.gateway.any()) {
      out.protocol = RTPROT_KERNEL;
      out.metric = 256;
    } else {
      out.protocol = RTPROT_BOOT;
      out.metric = 1024;
      out.gateway = r.gateway;
    }
    v->routes6.push_back(out);
  }
  for (const NetInterface& i : v->interfaces) {
    auto local = [&](const netstack::IpAddr& a) {
      v->routes6.push_back({RT_TABLE_LOCAL, RTN_LOCAL, RTPROT_KERNEL, {a, 128}, {}, 0, i.index});
    };
    if (i.v6_loopback) local(netstack::kIp6Loopback);
    for (const AddrPrefix& a : i.v6) local(a.addr);
    if (!i.loopback && !i.v6.empty()) {
      netstack::IpAddr ff00;
      ff00.b[0] = 0xff;
      v->routes6.push_back({RT_TABLE_LOCAL, RTN_MULTICAST, RTPROT_KERNEL, {ff00, 8}, {}, 256, i.index});
    }
  }
  std::stable_sort(v->routes6.begin(), v->routes6.end(), [](const NetRoute6& x, const NetRoute6& y) {
    if (x.table != y.table) return x.table < y.table;
    int common = std::min(x.dst.prefix_len, y.dst.prefix_len);
    if (x.dst.addr.SamePrefix(y.dst.addr, common)) return x.dst.prefix_len > y.dst.prefix_len;
    return x.dst.addr < y.dst.addr;
  });
}

}  // namespace

NetView LoopbackOnlyView() {
  NetView v;
  NetInterface lo;
  lo.index = 1;
  lo.name = "lo";
  lo.loopback = true;
  lo.mtu = 65536;
  lo.v4.push_back({netstack::MakeIp4(127, 0, 0, 1), 8});
  lo.v6_loopback = true;
  v.interfaces.push_back(lo);
  AddRoutes6({}, &v);
  return v;
}

NetView StackView(netstack::Stack& stack) {
  NetView v;
  for (const netstack::NicInfo& n : stack.Nics()) {
    NetInterface i;
    i.index = n.id;
    i.name = n.name;
    i.loopback = n.loopback;
    i.mac = n.mac;
    i.mtu = n.mtu;
    for (const AddrPrefix& a : n.addrs) {
      if (a.addr.is_v4()) {
        i.v4.push_back(a);
      } else if (a.addr.loopback()) {
        i.v6_loopback = true;
      } else {
        i.v6.push_back(a);
      }
    }
    // ipv6_add_addr() puts link-local addresses last in the dump order.
    std::stable_partition(i.v6.begin(), i.v6.end(),
                          [](const AddrPrefix& a) { return !a.addr.link_local(); });
    i.rx_packets = n.rx_frames;
    i.tx_packets = n.tx_frames;
    i.rx_bytes = n.rx_bytes;
    i.tx_bytes = n.tx_bytes;
    v.interfaces.push_back(std::move(i));
  }
  // The stack keeps one table; Linux splits it: lo's 127.0.0.0/8 and every
  // own address are "local" routes (fib_add_ifaddr()), the rest "main".
  const std::vector<netstack::Route> stack_routes = stack.Routes();
  AddRoutes6(stack_routes, &v);
  for (const netstack::Route& r : stack_routes) {
    const NetInterface* i = v.Find(r.nic);
    if (!i || !r.dst.addr.is_v4()) continue;  // IPv6: AddRoutes6
    NetRoute out;
    out.dst = r.dst;
    out.index = r.nic;
    if (i->loopback) {
      out.table = RT_TABLE_LOCAL;
      out.type = RTN_LOCAL;
      out.protocol = RTPROT_KERNEL;
      out.scope = RT_SCOPE_HOST;
      out.prefsrc = netstack::MakeIp4(127, 0, 0, 1);
    } else if (r.gateway.any()) {
      out.table = RT_TABLE_MAIN;
      out.type = RTN_UNICAST;
      out.protocol = RTPROT_KERNEL;
      out.scope = RT_SCOPE_LINK;
      for (const AddrPrefix& a : i->v4) {
        if (a.Contains(r.dst.addr) && a.prefix_len == r.dst.prefix_len) out.prefsrc = a.addr.v4();
      }
    } else {
      out.table = RT_TABLE_MAIN;
      out.type = RTN_UNICAST;
      out.protocol = RTPROT_BOOT;
      out.scope = RT_SCOPE_UNIVERSE;
      out.gateway = r.gateway.v4();
    }
    v.routes.push_back(out);
  }
  for (const NetInterface& i : v.interfaces) {
    for (const AddrPrefix& a : i.v4) {
      v.routes.push_back({RT_TABLE_LOCAL, RTN_LOCAL, RTPROT_KERNEL, RT_SCOPE_HOST, {a.addr, 32},
                          Ip4{}, a.addr.v4(), i.index});
    }
  }
  // A dump walks each table's trie in key order (fib_table_dump()):
  // by address, the longer prefix first among equal addresses.
  std::stable_sort(v.routes.begin(), v.routes.end(), [](const NetRoute& x, const NetRoute& y) {
    if (x.table != y.table) return x.table < y.table;  // main (254), then local (255)
    if (x.dst.addr != y.dst.addr) return x.dst.addr < y.dst.addr;
    return x.dst.prefix_len > y.dst.prefix_len;
  });
  return v;
}

}  // namespace seedvisor::sentry
