#include "shim/ttrpc/frame.h"

#include <algorithm>

namespace seedvisor::ttrpc {
namespace {

void PutU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

uint32_t GetU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
         uint32_t{p[3]};
}

}  // namespace

void EncodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  PutU32(out, h.length);
  PutU32(out + 4, h.stream_id);
  out[8] = h.type;
  out[9] = h.flags;
}

FrameHeader DecodeHeader(const uint8_t in[kHeaderSize]) {
  FrameHeader h;
  h.length = GetU32(in);
  h.stream_id = GetU32(in + 4);
  h.type = in[8];
  h.flags = in[9];
  return h;
}

std::string EncodeFrame(uint32_t stream_id, uint8_t type, absl::string_view data,
                        uint8_t flags) {
  FrameHeader h{static_cast<uint32_t>(data.size()), stream_id, type, flags};
  std::string out(kHeaderSize, '\0');
  EncodeHeader(h, reinterpret_cast<uint8_t*>(out.data()));
  out.append(data.data(), data.size());
  return out;
}

void FrameDecoder::Feed(const char* data, size_t n) {
  if (skip_ > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(skip_, n));
    skip_ -= k;
    data += k;
    n -= k;
  }
  if (n > 0) buf_.append(data, n);
}

void FrameDecoder::Compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

FrameDecoder::Result FrameDecoder::Next(Frame* out) {
  if (skip_ > 0 || buf_.size() - pos_ < kHeaderSize) return kNeedMore;
  FrameHeader h = DecodeHeader(reinterpret_cast<const uint8_t*>(buf_.data() + pos_));
  if (h.length > max_) {
    // Skip the oversized body: what is buffered now, the rest as it arrives.
    pos_ += kHeaderSize;
    size_t have = buf_.size() - pos_;
    size_t k = static_cast<size_t>(std::min<uint64_t>(have, h.length));
    pos_ += k;
    skip_ = h.length - k;
    Compact();
    out->header = h;
    out->data.clear();
    return kOversized;
  }
  if (buf_.size() - pos_ - kHeaderSize < h.length) return kNeedMore;
  out->header = h;
  out->data.assign(buf_, pos_ + kHeaderSize, h.length);
  pos_ += kHeaderSize + h.length;
  Compact();
  return kFrame;
}

}  // namespace seedvisor::ttrpc
