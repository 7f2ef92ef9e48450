// Where a NIC's frames go: the per-instance device. In the sentry this is a
// packet socket on the sandbox's veth (attached after a fork); in tests a
// recorder. WriteFrame is called with the stack's lock held and must not
// call back into the stack; it must not block (drop instead, as a full
// device queue would).
#ifndef SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_
#define SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_

#include <string_view>

namespace seedvisor::netstack {

class LinkEndpoint {
 public:
  virtual ~LinkEndpoint() = default;
  // One complete Ethernet frame (no FCS).
  virtual void WriteFrame(std::string_view frame) = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_
