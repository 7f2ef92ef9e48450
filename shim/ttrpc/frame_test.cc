#include "shim/ttrpc/frame.h"

#include <string>

#include "gtest/gtest.h"

namespace seedvisor::ttrpc {
namespace {

TEST(FrameTest, HeaderIsBigEndianAsOnTheWire) {
  // A request header seen between containerd and the runc shim.
  std::string f = EncodeFrame(1, kTypeRequest, std::string(0x4d, 'x'));
  ASSERT_EQ(f.size(), kHeaderSize + 0x4d);
  EXPECT_EQ(f.substr(0, kHeaderSize),
            std::string("\x00\x00\x00\x4d\x00\x00\x00\x01\x01\x00", 10));
  FrameHeader h = DecodeHeader(reinterpret_cast<const uint8_t*>(f.data()));
  EXPECT_EQ(h.length, 0x4du);
  EXPECT_EQ(h.stream_id, 1u);
  EXPECT_EQ(h.type, kTypeRequest);
  EXPECT_EQ(h.flags, 0);
}

TEST(FrameTest, HeaderRoundTripsLargeValues) {
  FrameHeader in{0x01020304, 0xfffffffd, 0x02, 0x81};
  uint8_t buf[kHeaderSize];
  EncodeHeader(in, buf);
  FrameHeader out = DecodeHeader(buf);
  EXPECT_EQ(out.length, in.length);
  EXPECT_EQ(out.stream_id, in.stream_id);
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.flags, in.flags);
}

TEST(FrameDecoderTest, ByteAtATime) {
  std::string wire = EncodeFrame(3, kTypeResponse, "hello") + EncodeFrame(5, kTypeRequest, "");
  FrameDecoder dec;
  Frame f;
  std::vector<Frame> got;
  for (char c : wire) {
    dec.Feed(&c, 1);
    while (dec.Next(&f) == FrameDecoder::kFrame) got.push_back(f);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.stream_id, 3u);
  EXPECT_EQ(got[0].header.type, kTypeResponse);
  EXPECT_EQ(got[0].data, "hello");
  EXPECT_EQ(got[1].header.stream_id, 5u);
  EXPECT_EQ(got[1].data, "");
  EXPECT_FALSE(dec.HasPartial());
}

TEST(FrameDecoderTest, TruncatedHeaderAndBodyNeedMore) {
  std::string wire = EncodeFrame(1, kTypeRequest, "abcdef");
  for (size_t cut = 1; cut < wire.size(); ++cut) {
    FrameDecoder dec;
    dec.Feed(wire.data(), cut);
    Frame f;
    EXPECT_EQ(dec.Next(&f), FrameDecoder::kNeedMore) << "cut at " << cut;
    EXPECT_TRUE(dec.HasPartial()) << "cut at " << cut;
    dec.Feed(wire.data() + cut, wire.size() - cut);
    ASSERT_EQ(dec.Next(&f), FrameDecoder::kFrame) << "cut at " << cut;
    EXPECT_EQ(f.data, "abcdef");
  }
}

TEST(FrameDecoderTest, OversizedIsSkippedAndTheStreamContinues) {
  const uint32_t big = kMaxMessageSize + 1;
  FrameHeader h{big, 7, kTypeRequest, 0};
  std::string wire(kHeaderSize, '\0');
  EncodeHeader(h, reinterpret_cast<uint8_t*>(wire.data()));
  FrameDecoder dec;
  dec.Feed(wire.data(), wire.size());
  Frame f;
  ASSERT_EQ(dec.Next(&f), FrameDecoder::kOversized);
  EXPECT_EQ(f.header.stream_id, 7u);
  EXPECT_EQ(f.header.length, big);
  // The body arrives in chunks and is dropped, followed by a good frame in
  // the same read as the body's tail.
  std::string chunk(1 << 20, 'z');
  uint32_t left = big;
  while (left > chunk.size()) {
    dec.Feed(chunk.data(), chunk.size());
    left -= chunk.size();
    EXPECT_EQ(dec.Next(&f), FrameDecoder::kNeedMore);
    EXPECT_TRUE(dec.HasPartial());
  }
  std::string tail = std::string(left, 'z') + EncodeFrame(9, kTypeRequest, "ok");
  dec.Feed(tail.data(), tail.size());
  ASSERT_EQ(dec.Next(&f), FrameDecoder::kFrame);
  EXPECT_EQ(f.header.stream_id, 9u);
  EXPECT_EQ(f.data, "ok");
  EXPECT_FALSE(dec.HasPartial());
}

TEST(FrameDecoderTest, OversizedBodyAlreadyBuffered) {
  FrameDecoder dec(/*max_size=*/4);
  std::string wire = EncodeFrame(1, kTypeRequest, "12345") + EncodeFrame(3, kTypeRequest, "1234");
  dec.Feed(wire.data(), wire.size());
  Frame f;
  ASSERT_EQ(dec.Next(&f), FrameDecoder::kOversized);
  EXPECT_EQ(f.header.stream_id, 1u);
  ASSERT_EQ(dec.Next(&f), FrameDecoder::kFrame);
  EXPECT_EQ(f.header.stream_id, 3u);
  EXPECT_EQ(f.data, "1234");  // exactly the maximum is fine
  EXPECT_EQ(dec.Next(&f), FrameDecoder::kNeedMore);
}

}  // namespace
}  // namespace seedvisor::ttrpc
