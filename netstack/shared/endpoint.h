// What TCP and UDP endpoints have in common: their stack, addresses, the
// observer the socket layer installs to learn about readiness changes, and
// pending errors. Every field is guarded by the owning Stack's mutex.
#ifndef SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_
#define SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>

#include "netstack/shared/port_table.h"
#include "netstack/shared/wire.h"
#include "sentry/base/errno.h"

namespace seedvisor::netstack {

class Stack;

// An endpoint's address; IPv4 addresses are IPv4-mapped (ip_addr.h).
struct SockAddr {
  IpAddr ip;
  uint16_t port = 0;
  bool operator==(const SockAddr&) const = default;
};

class Endpoint {
 public:
  explicit Endpoint(Stack* stack) : stack_(stack) {}
  virtual ~Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Called (without the stack's lock) after the endpoint's readiness may
  // have changed; it must not block. Replaces any earlier observer.
  void SetObserver(std::function<void()> fn);
  int TakeError();  // SO_ERROR, cleared
  SockAddr local();
  // An AF_INET6 socket's endpoint (before bind or connect): its wildcard
  // covers IPv6, and IPv4 too unless `v6only` (IPV6_V6ONLY). An AF_INET
  // endpoint only ever holds IPv4(-mapped) addresses.
  // EINVAL once the endpoint has a port.
  Status SetFamily6(bool v6only);
  bool v6() const { return v6_; }
  // Whether this endpoint's wildcard address receives packets for `dst`.
  bool WildcardAccepts(const IpAddr& dst) const { return dst.is_v4() ? !v6only_ : v6_; }
  // sin6_scope_id of a link-local address `a` given to bind (`bind`) or
  // connect, 0 if none came (stack_scope.cc): the endpoint keeps its NIC
  // (sk_bound_dev_if) as __inet6_bind(), tcp_v6_connect() and
  // __ip6_datagram_connect() do. EINVAL for a scope other than the one it
  // has or for none at all, and for bind ENODEV for a NIC that does not
  // exist, EADDRNOTAVAIL for an address that NIC does not have.
  Status SetScope(const IpAddr& a, uint32_t scope_id, bool bind);
  // The sin6_scope_id the guest sees with `a`, an address of this
  // endpoint: its NIC for a link-local address (ipv6_iface_scope_id()).
  uint32_t ScopeOf(const IpAddr& a);

 protected:
  IpAddr Wildcard() const { return v6_ ? kIp6Any : IpAddr(Ip4{}); }
  // Whether this endpoint may talk to `peer`: an AF_INET endpoint only to
  // IPv4 (EAFNOSUPPORT), an IPV6_V6ONLY one only to IPv6 (ENETUNREACH, as
  // tcp_v6_connect()/udpv6_sendmsg()).
  int PeerFamilyError(const IpAddr& peer) const {
    if (peer.is_v4()) return v6only_ ? ENETUNREACH : 0;
    return v6_ ? 0 : EAFNOSUPPORT;
  }

 public:
  // The socket file this endpoint serves, as /proc/net shows it: its inode
  // number and the creator's uid (sock_i_ino(), sock_i_uid()).
  void SetOwner(uint64_t ino, uint32_t uid);
  // SO_REUSEPORT (port_table.h: bind rules; stack_demux.cc: which member
  // of a group takes a connection or datagram).
  void SetReusePort(bool on);
  bool reuse_port();

  // The IP header fields of what this endpoint sends: IP_TTL and IP_TOS
  // for IPv4 peers (inet->uc_ttl, inet->tos), IPV6_UNICAST_HOPS and
  // IPV6_TCLASS for IPv6 ones (np->hop_limit, np->tclass); an AF_INET6
  // socket has both sets. A TTL or hop limit of -1 is the default (64).
  struct IpTx {
    int ttl = -1;
    uint8_t tos = 0;
    int hops = -1;
    uint8_t tclass = 0;
    uint8_t TtlFor(const IpAddr& peer) const {
      int v = peer.is_v4() ? ttl : hops;
      return v < 0 ? kDefaultTtl : uint8_t(v);
    }
    uint8_t TosFor(const IpAddr& peer) const { return peer.is_v4() ? tos : tclass; }
  };
  static constexpr uint8_t kDefaultTtl = 64;  // ip_default_ttl, the devices' hop_limit
  void SetIpTx(const IpTx& tx);
  IpTx ip_tx();

 protected:
  friend class Stack;
  // Queues the observer call for when the stack's lock is released.
  void NotifyLocked();
  // Taking the error changes readiness (POLLERR): observers hear of it.
  int TakeErrorLocked() {
    int e = error_;
    error_ = 0;
    if (e) NotifyLocked();
    return e;
  }

  Stack* const stack_;
  std::function<void()> observer_;
  PortTable::User port_{};
  bool bound_ = false;
  bool owns_port_ = false;  // port_ is in the protocol's PortTable
  SockAddr local_{}, remote_{};
  bool v6_ = false, v6only_ = false;  // also in port_
  uint32_t bound_nic_ = 0;  // sk_bound_dev_if: a link-local address's NIC
  int error_ = 0;  // pending SO_ERROR
  uint64_t owner_ino_ = 0;
  uint32_t owner_uid_ = 0;
  size_t rcvbuf_cap_ = 212992;
  size_t sndbuf_cap_ = 212992;
  IpTx ip_tx_;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_
