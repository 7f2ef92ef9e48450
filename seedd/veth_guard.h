// What a pooled device's guest may reach on the host end's side
// (seedd/veth_pool.h; netstack/README.md, "The veth pool's host ends").
//
// A host end lives in seedd's network namespace (the host's, as a rule)
// with the subnet's .1, and Linux delivers what arrives on any interface
// to any local address and to every socket bound to the wildcard: without
// a rule a guest would reach each service of the host that listens on
// 0.0.0.0 or :: (sshd, seedd's own API, a database) at its host end's
// address. GuardHostEnds() installs netfilter rules in the caller's
// namespace (iptables and ip6tables, chain SVPOOL-<prefix>, jumped to
// first from INPUT) so that what comes in on <prefix>* is accepted only
// when it is for an address of that host end itself (addrtype LOCAL with
// --limit-iface-in: not the node's LAN address, not another host end's,
// which a guest reaches with its host end as the gateway) and a socket of
// its own takes it: an established connection (the answers to a
// connection the host opened to the guest) or a listener bound to that
// host end's address itself (a service given to guests on purpose), as the
// `socket` match decides (xt_socket; it ignores wildcard listeners, but
// finds a listener on any local address, hence the first rule). Other TCP
// to the host end's address is answered with a reset (the guest's connect
// fails with ECONNREFUSED at once), the rest dropped, and nothing from a
// host end is forwarded. IPv6 neighbour discovery (hop limit 255) passes,
// so the same holds for the host end's link-local address.
//
//   SV_RETURN_IF_ERROR(GuardHostEnds("svp"));  // before the first device
//   ...
//   UnguardHostEnds("svp");  // when no device is left
#ifndef SEEDVISOR_SEEDD_VETH_GUARD_H_
#define SEEDVISOR_SEEDD_VETH_GUARD_H_

#include <string>

#include "absl/status/status.h"

namespace seedvisor::seedd {

// Installs (again: it replaces what an earlier run left) the rules for
// host ends named <prefix>*. Root (CAP_NET_ADMIN). An error says which
// command failed and what it printed; IPv6's rules may only be missing
// where the kernel has no IPv6. Pools of one prefix in a process share
// the rules: each call after the first only counts.
absl::Status GuardHostEnds(const std::string& prefix);
// Undoes one successful GuardHostEnds(): the last removes the rules
// (errors ignored).
void UnguardHostEnds(const std::string& prefix);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_VETH_GUARD_H_
