// RuntimeSeeds' instances with a network device of their own (seedd
// --network=sandbox; UseNetwork in runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include "sentry/control/net_device.h"

namespace seedvisor::seedd {

absl::StatusOr<fri::v1::ForkResponse> RuntimeSeeds::ForkInstance(fri::v1::ForkRequest& fr,
                                                                 const VethPool::Device* dev) {
  if (dev == nullptr) return sb_.Fork(fr);
  // The packet socket goes with the Fork request on seedd's own connection
  // to the seed: no other process can take the device on the way.
  *fr.mutable_net_device() = control::NetDeviceToProto(dev->taken.info);
  return sb_.Fork(fr, dev->taken.packet_fd);
}

}  // namespace seedvisor::seedd
