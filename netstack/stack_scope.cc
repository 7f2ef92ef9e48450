// IPv6 scope ids (RFC 4007): a link-local address means something only on
// one link, so a socket that binds or connects to one names the NIC
// (sin6_scope_id) and keeps it, as Linux's sk_bound_dev_if; the guest
// sees the NIC's index (= its id here, as netlink and SIOCGIFINDEX say)
// beside such an address in getsockname, getpeername, accept and recvfrom.
#include "netstack/stack.h"

namespace seedvisor::netstack {

uint32_t Stack::NicOwning(const IpAddr& a) const {
  for (const auto& nic : inst_.nics) {
    if (nic->loopback) continue;
    for (const AddrPrefix& p : nic->addrs) {
      if (p.addr == a) return uint32_t(nic->id);
    }
  }
  return 0;
}

bool Stack::HasAddressOn(const IpAddr& a, uint32_t nic) const {
  if (nic < 1 || nic > inst_.nics.size()) return false;
  for (const AddrPrefix& p : inst_.nics[nic - 1]->addrs) {
    if (p.addr == a) return true;
  }
  return false;
}

Status Endpoint::SetScope(const IpAddr& a, uint32_t scope_id, bool bind) {
  Stack::Locked l(stack_);
  if (!a.link_local()) return {};  // a scope of another address is ignored
  uint32_t nic = bound_nic_;
  if (scope_id != 0) {
    // "If interface is set while binding, indices must coincide."
    if (nic != 0 && nic != scope_id) return Errno(EINVAL);
    nic = scope_id;
  }
  // "Binding to link-local address requires an interface" (and so does a
  // connect: tcp_v6_connect(), __ip6_datagram_connect()).
  if (nic == 0) return Errno(EINVAL);
  if (bind) {
    // __inet6_bind(): dev_get_by_index_rcu(), then ipv6_chk_addr() on it.
    if (nic > stack_->inst_.nics.size()) return Errno(ENODEV);
    if (!stack_->HasAddressOn(a, nic)) return Errno(EADDRNOTAVAIL);
  }
  // A connect keeps the scope even if no route then leads there (Linux
  // sets sk_bound_dev_if before its route lookup).
  bound_nic_ = nic;
  return {};
}

uint32_t Endpoint::ScopeOf(const IpAddr& a) {
  Stack::Locked l(stack_);
  return a.link_local() ? bound_nic_ : 0;
}

}  // namespace seedvisor::netstack
