// A sandbox fork's own network device (issue 11, AFaaS's pooled veth): the
// caller of Fork (`seedsc fork --netns PATH`) takes over the interface of
// a network namespace it prepared, as boot does for a seed, and hands the
// seed two things: the interface's description in ForkRequest.net_device
// and its AF_PACKET socket over a unix socket it listens on
// (ForkRequest.net_device_socket). The seed's forked child attaches that
// device to its copy of the stack in place of the seed's.
//
//   caller: auto dev = TakeOverNetns("/run/netns/pool7");
//           DeviceHandover h;  // listens at sock until the Fork ends
//           RETURN_IF_ERROR(h.Start(sock, dev->packet_fd));
//           req.set_net_device_socket(sock);
//           req.mutable_net_device() = NetDeviceToProto(dev->info);
//   seed:   int fd = *ReceiveFdFromSocket(req.net_device_socket());
//           HostInterface i = *NetDeviceFromProto(req.net_device());
#ifndef SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_
#define SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_

#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "sentry/control/control.pb.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor::control {

v1::NetDevice NetDeviceToProto(const sentry::HostInterface& i);
// InvalidArgument naming the field that is wrong (a MAC of other than 6
// bytes, an address of other than 4 or 16, a prefix out of range).
absl::StatusOr<sentry::HostInterface> NetDeviceFromProto(const v1::NetDevice& d);

// Connects to the unix socket at `path` and receives one fd (SCM_RIGHTS).
absl::StatusOr<int> ReceiveFdFromSocket(const std::string& path);

// The caller's side: listens on the unix socket `path` and sends
// `packet_fd` (a copy: the caller keeps its own) to the first peer that
// connects, the seed while its Fork runs. The destructor stops listening
// and removes the socket; it does not close packet_fd. Used by `seedsc fork
// --netns` and by seedd's instances with a pooled device (seedd/veth_pool.h).
class DeviceHandover {
 public:
  DeviceHandover() = default;
  DeviceHandover(const DeviceHandover&) = delete;
  DeviceHandover& operator=(const DeviceHandover&) = delete;
  ~DeviceHandover();
  // InternalError when `path` is too long for a unix socket or cannot be
  // bound.
  absl::Status Start(const std::string& path, int packet_fd);

 private:
  std::string path_;
  int listener_ = -1;
  std::thread thread_;
};

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_
