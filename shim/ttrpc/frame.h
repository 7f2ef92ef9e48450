// ttrpc framing: a 10-byte header (length u32 BE, stream id u32 BE, type u8,
// flags u8) followed by `length` bytes of protobuf.
//
//   FrameDecoder dec;
//   dec.Feed(buf, n);
//   Frame f;
//   while (dec.Next(&f) == FrameDecoder::kFrame) Handle(f);
//
// Frames over kMaxMessageSize are never buffered: the decoder skips their
// bytes as they arrive and reports kOversized once, with the header, so the
// server can answer RESOURCE_EXHAUSTED on that stream and keep serving (as
// ttrpc's channel.recv does).
#ifndef SEEDVISOR_SHIM_TTRPC_FRAME_H_
#define SEEDVISOR_SHIM_TTRPC_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace seedvisor::ttrpc {

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxMessageSize = 4 << 20;  // ttrpc messageLengthMax

enum MessageType : uint8_t {
  kTypeRequest = 1,
  kTypeResponse = 2,
  kTypeData = 3,  // ttrpc >= 1.2 streaming; containerd 1.6 never sends it
};

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

struct Frame {
  FrameHeader header;
  std::string data;
};

void EncodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]);
FrameHeader DecodeHeader(const uint8_t in[kHeaderSize]);

// Header + data in one buffer, ready to write.
std::string EncodeFrame(uint32_t stream_id, uint8_t type, absl::string_view data,
                        uint8_t flags = 0);

// Incremental decoder over a byte stream (one per connection).
class FrameDecoder {
 public:
  enum Result { kNeedMore, kFrame, kOversized };

  explicit FrameDecoder(uint32_t max_size = kMaxMessageSize) : max_(max_size) {}

  void Feed(const char* data, size_t n);
  // kFrame: *out holds a whole frame. kOversized: out->header is the
  // oversized frame's header and data is empty; its bytes are being skipped.
  Result Next(Frame* out);
  // True when bytes of an incomplete frame are buffered or being skipped:
  // at EOF that means the peer sent a truncated frame.
  bool HasPartial() const { return pos_ < buf_.size() || skip_ > 0; }

 private:
  void Compact();

  uint32_t max_;
  std::string buf_;
  size_t pos_ = 0;    // start of unconsumed bytes in buf_
  uint64_t skip_ = 0;  // bytes of an oversized frame still to discard
};

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_FRAME_H_
