// FRI over ttrpc: registers the seedvisor.fri.v1.FRI methods (fri.proto) on
// a ttrpc server, each a thin call into fri::Sandboxes.
//
//   ttrpc::Server server;
//   fri::RegisterFri(server, sandboxes);
//   server.Listen("unix://" + state_dir + "/fri.sock");
//   std::thread([&] { server.Serve(); });
#ifndef SEEDVISOR_FRI_SERVER_H_
#define SEEDVISOR_FRI_SERVER_H_

#include "fri/sandboxes.h"
#include "fri/service_name.h"
#include "shim/ttrpc/server.h"

namespace seedvisor::fri {

void RegisterFri(ttrpc::Server& server, Sandboxes& sandboxes);

}  // namespace seedvisor::fri

#endif  // SEEDVISOR_FRI_SERVER_H_
