#include "shim/ttrpc/fuzz_server.h"

#include <cstdlib>
#include <string>

#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/ttrpc.pb.h"

namespace seedvisor::ttrpc {

void FuzzServerFrames(Server& server, const uint8_t* data, size_t size, size_t max_frame) {
  FrameDecoder dec(size % 2 ? max_frame : kMaxMessageSize);
  size_t cut = size ? data[0] % (size + 1) : 0;
  dec.Feed(reinterpret_cast<const char*>(data), cut);
  Frame f;
  for (int pass = 0; pass < 2; ++pass) {
    for (;;) {
      FrameDecoder::Result r = dec.Next(&f);
      if (r == FrameDecoder::kNeedMore) break;
      std::string out = r == FrameDecoder::kOversized ? Server::OversizedResponse(f.header)
                                                      : server.HandleFrame(f);
      if (r == FrameDecoder::kFrame && f.header.type == kTypeRequest) {
        FrameDecoder rd;
        rd.Feed(out.data(), out.size());
        Frame resp;
        Response parsed;
        if (rd.Next(&resp) != FrameDecoder::kFrame || rd.HasPartial() ||
            resp.header.stream_id != f.header.stream_id || resp.header.type != kTypeResponse ||
            !parsed.ParseFromString(resp.data)) {
          abort();
        }
      }
    }
    if (pass == 0) dec.Feed(reinterpret_cast<const char*>(data) + cut, size - cut);
  }
}

}  // namespace seedvisor::ttrpc
