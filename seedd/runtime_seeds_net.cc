// RuntimeSeeds' instances with a network device of their own (seedd
// --network=sandbox; UseNetwork in runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include "absl/strings/str_cat.h"
#include "sentry/control/net_device.h"

namespace seedvisor::seedd {

absl::StatusOr<fri::v1::ForkResponse> RuntimeSeeds::ForkInstance(fri::v1::ForkRequest& fr,
                                                                 const VethPool::Device* dev) {
  if (dev == nullptr) return sb_.Fork(fr);
  control::DeviceHandover handover;  // until the Fork returns: the seed has its copy then
  // Named by the device's slot, leased to this call alone: every runtime's
  // seeds share net_dir_ (a counter of this object's own would name one
  // path for a python and a node call at once, and swap their devices).
  std::string sock = absl::StrCat(net_dir_, "/slot", dev->slot);
  if (absl::Status s = handover.Start(sock, dev->taken.packet_fd); !s.ok()) return s;
  fr.set_net_device_socket(sock);
  *fr.mutable_net_device() = control::NetDeviceToProto(dev->taken.info);
  return sb_.Fork(fr);
}

}  // namespace seedvisor::seedd
