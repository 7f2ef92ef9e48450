#ifndef SEEDVISOR_SENTRY_SOCKET_LINUX_IPV6_REFERENCE_H_
#define SEEDVISOR_SENTRY_SOCKET_LINUX_IPV6_REFERENCE_H_

// The IPv6 configuration that the /proc/net and NETLINK_ROUTE tests compare
// with what Linux (6.18) showed in a network namespace set up the same way:
// eth0 with fd00:219::2/64 and the link-local fe80::508d:c1ff:feea:ebc4/64,
// and a default route via fd00:219::1. Test code only.

#include <arpa/inet.h>

#include "gtest/gtest.h"
#include "netstack/stack.h"

namespace seedvisor::sentry {

// Gives NIC `eth0` of `stack` that configuration.
inline ::testing::AssertionResult AddLinuxIpv6Reference(netstack::Stack& stack, int eth0) {
  netstack::IpAddr global, link_local, gateway;
  inet_pton(AF_INET6, "fd00:219::2", global.b.data());
  inet_pton(AF_INET6, "fe80::508d:c1ff:feea:ebc4", link_local.b.data());
  inet_pton(AF_INET6, "fd00:219::1", gateway.b.data());
  for (netstack::AddrPrefix a : {netstack::AddrPrefix{global, 64}, netstack::AddrPrefix{link_local, 64}}) {
    if (!stack.AddAddress(eth0, a).ok()) return ::testing::AssertionFailure() << "AddAddress";
  }
  if (!stack.AddRoute({netstack::kIp6Any, 0}, gateway, eth0).ok()) {
    return ::testing::AssertionFailure() << "AddRoute (default via fd00:219::1)";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_LINUX_IPV6_REFERENCE_H_
