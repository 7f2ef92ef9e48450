// A sandbox fork's own network device (issue 11, AFaaS's pooled veth): the
// caller of Fork (`seedsc fork --netns PATH`, seedd) takes over the
// interface of a network namespace it prepared, as boot does for a seed,
// and sends the seed two things in its Fork request: the interface's
// description in ForkRequest.net_device and its AF_PACKET socket with the
// request's own frame (SCM_RIGHTS on the caller's control connection: never
// a socket that another process could connect to first). The seed's forked
// child attaches that device to its copy of the stack in place of the
// seed's.
//
//   caller: auto dev = TakeOverNetns("/run/netns/pool7");
//           *req.mutable_net_device() = NetDeviceToProto(dev->info);
//           client->Call(kService, "Fork", req, &resp, timeout, {}, {dev->packet_fd});
//   seed:   int fd = ctx.fds.Take(0);
//           HostInterface i = *NetDeviceFromProto(req.net_device());
#ifndef SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_
#define SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "sentry/control/control.pb.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor::control {

v1::NetDevice NetDeviceToProto(const sentry::HostInterface& i);
// InvalidArgument naming the field that is wrong (a MAC of other than 6
// bytes, an address of other than 4 or 16, a prefix out of range).
absl::StatusOr<sentry::HostInterface> NetDeviceFromProto(const v1::NetDevice& d);

}  // namespace seedvisor::control

#endif  // SEEDVISOR_SENTRY_CONTROL_NET_DEVICE_H_
