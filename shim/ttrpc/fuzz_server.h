// The body of a ttrpc fuzz target (shim/ttrpc/fuzz_frame.cc, fri/fuzz_fri.cc):
// feeds `data` to a frame decoder in two pieces (reassembly), hands every
// frame to `server` as its connection loop would, and aborts unless every
// request frame gets exactly one well-formed response frame on its stream.
// Frames over `max_frame` (when size is odd; else kMaxMessageSize) take the
// oversized path.
//
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     seedvisor::ttrpc::FuzzServerFrames(MyServer(), data, size, 64);
//     return 0;
//   }
#ifndef SEEDVISOR_SHIM_TTRPC_FUZZ_SERVER_H_
#define SEEDVISOR_SHIM_TTRPC_FUZZ_SERVER_H_

#include <cstddef>
#include <cstdint>

#include "shim/ttrpc/server.h"

namespace seedvisor::ttrpc {

void FuzzServerFrames(Server& server, const uint8_t* data, size_t size, size_t max_frame);

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_FUZZ_SERVER_H_
