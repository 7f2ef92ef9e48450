// Which local (address, port) pairs a protocol's endpoints hold, with
// Linux's bind rules (inet_csk_bind_conflict(), udp_lib_lport_inuse()): two
// bindings of one port conflict when their addresses overlap (equal, or
// either is a wildcard covering the other's family: INADDR_ANY covers IPv4,
// an AF_INET6 socket's :: IPv6 and, unless IPV6_V6ONLY, IPv4), unless both set SO_REUSEADDR and, for TCP, the
// one already there is not listening, or both set SO_REUSEPORT and belong
// to the same user (inet_bind_conflict(), udp_lib_lport_inuse()): a
// SO_REUSEPORT group, whose members share what comes to that address. Ephemeral ports come from 32768-60999
// (ip_local_port_range) in the order RFC 6056 algorithm 3 gives: a keyed
// hash of the peer picks where the search starts, so a peer cannot guess
// the next port and two forks (re-keyed) search differently.
//
//   PortTable ports;
//   PortTable::User u{.ip = addr, .reuse = true};
//   if (!ports.Bind(port, &u)) return Errno(EADDRINUSE);
#ifndef SEEDVISOR_NETSTACK_SHARED_PORT_TABLE_H_
#define SEEDVISOR_NETSTACK_SHARED_PORT_TABLE_H_

#include <cstdint>
#include <map>

#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

class PortTable {
 public:
  static constexpr uint16_t kEphemeralLow = 32768, kEphemeralHigh = 60999;

  struct User {
    IpAddr ip;
    bool v6 = false;      // an AF_INET6 socket's binding: its wildcard covers IPv6,
    bool v6only = false;  // and IPv4 too unless IPV6_V6ONLY
    bool reuse = false;
    bool listening = false;  // TCP: a listener never shares with SO_REUSEADDR
    bool reuseport = false;  // SO_REUSEPORT
    uint32_t uid = 0;        // the socket's owner (sk_uid)
    uint16_t port = 0;       // set by Bind
  };
  // Binds `u` to `port` unless a conflicting user holds it.
  bool Bind(uint16_t port, User* u);
  // Picks a free ephemeral port starting at `offset` (a Secrets hash) plus
  // a counter; binds `u` to it. 0 if the range is exhausted.
  uint16_t BindEphemeral(uint32_t offset, User* u);
  // Adds `u` on `port` without a conflict check: a connection accepted by a
  // listener holds the listener's port too (and keeps it in TIME_WAIT).
  void AddShared(uint16_t port, User* u);
  void Unbind(User* u);
  bool Conflicts(uint16_t port, const User& u) const;
  size_t size() const { return users_.size(); }

 private:
  std::multimap<uint16_t, User*> users_;
  uint32_t next_ = 0;  // RFC 6056 "next_ephemeral"
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_PORT_TABLE_H_
