// Taking over a network namespace's interfaces for the sandbox's own stack
// (--network=sandbox with a namespace that has a device, as runsc does):
// read each Ethernet interface's MAC, MTU, IPv4 address, IPv6 addresses
// (link-local and global) and default routes, open an AF_PACKET socket
// bound to it, and take the addresses away from the host interface (the
// IPv4 one deleted, IPv6 switched off there with disable_ipv6), so that
// the host kernel no longer answers for them (no ARP or neighbour
// advertisements, no RSTs for the sandbox's ports): from then on the
// sentry's stack is the only one with those addresses.
//
// All of it runs before the sentry installs its seccomp filter (socket and
// netlink writes are not something the guest's syscalls can reach).
//
//   SV: auto ifs = ListHostInterfaces();    // in the sandbox's namespace
//   for (auto& i : *ifs) { int fd = *OpenPacketSocket(i.index); RemoveHostAddress(i); }
#ifndef SEEDVISOR_SENTRY_SOCKET_NET_TAKEOVER_H_
#define SEEDVISOR_SENTRY_SOCKET_NET_TAKEOVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "netstack/instance/instance.h"
#include "netstack/shared/wire.h"

namespace seedvisor::sentry {

struct HostInterface {
  std::string name;
  int index = 0;
  netstack::MacAddr mac{};
  uint32_t mtu = 1500;
  netstack::Ip4 addr;  // the first IPv4 address; any(): none
  int prefix_len = 32;
  netstack::Ip4 broadcast;  // SIOCGIFBRDADDR: any() if the address has none
  netstack::Ip4 gateway;  // the default route through it, if any
  // IPv6 addresses (/proc/net/if_inet6) and the default route's next hop
  // through this interface (/proc/net/ipv6_route; any(): none).
  std::vector<netstack::AddrPrefix> v6;
  netstack::IpAddr gateway6;
};

// Ethernet interfaces of the current network namespace that have an IPv4
// or IPv6 address (loopback and address-less ones are left alone).
absl::StatusOr<std::vector<HostInterface>> ListHostInterfaces();
// An AF_PACKET socket (O_NONBLOCK|O_CLOEXEC) bound to `ifindex`, all
// protocols.
absl::StatusOr<int> OpenPacketSocket(int ifindex);
// Deletes the interface's IPv4 address from the host (RTM_DELADDR) and
// turns IPv6 off on it (net.ipv6.conf.NAME.disable_ipv6, which drops its
// IPv6 addresses; the packet socket still sees IPv6 frames). A
// disable_ipv6 that cannot be written (read-only /proc/sys) is one warning
// line, not an error.
absl::Status RemoveHostAddress(const HostInterface& i);

// One interface taken over: its packet socket (owned by whoever attaches
// it: NetService::AttachInterfaces) and what the stack needs to serve it.
struct TakenInterface {
  HostInterface info;
  int packet_fd = -1;
};
// The whole takeover of the current namespace's interfaces, short of the
// stack: list, open a packet socket on each, remove the host's address.
// Needs CAP_NET_RAW and CAP_NET_ADMIN (`seedsc boot` calls it before it
// drops its capabilities). On failure the sockets opened so far are closed.
absl::StatusOr<std::vector<TakenInterface>> TakeOverInterfaces();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NET_TAKEOVER_H_
