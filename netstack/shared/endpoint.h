// What TCP and UDP endpoints have in common: their stack, addresses, the
// observer the socket layer installs to learn about readiness changes, and
// pending errors. Every field is guarded by the owning Stack's mutex.
#ifndef SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_
#define SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "netstack/shared/port_table.h"
#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

class Stack;

struct SockAddr {
  Ip4 ip;
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
  // The socket file this endpoint serves, as /proc/net shows it: its inode
  // number and the creator's uid (sock_i_ino(), sock_i_uid()).
  void SetOwner(uint64_t ino, uint32_t uid);

 protected:
  friend class Stack;
  // Queues the observer call for when the stack's lock is released.
  void NotifyLocked();
  int TakeErrorLocked() {
    int e = error_;
    error_ = 0;
    return e;
  }

  Stack* const stack_;
  std::function<void()> observer_;
  PortTable::User port_{};
  bool bound_ = false;
  bool owns_port_ = false;  // port_ is in the protocol's PortTable
  SockAddr local_{}, remote_{};
  int error_ = 0;  // pending SO_ERROR
  uint64_t owner_ino_ = 0;
  uint32_t owner_uid_ = 0;
  size_t rcvbuf_cap_ = 212992;
  size_t sndbuf_cap_ = 212992;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_ENDPOINT_H_
