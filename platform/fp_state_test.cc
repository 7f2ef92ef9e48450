#include "platform/fp_state.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace seedvisor::platform {
namespace {

uint64_t Bv(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p + 512, sizeof(v));
  return v;
}

TEST(FpStateTest, DefaultIsInitState) {
  FpState fp;
  std::printf("host: XSAVE image %zu bytes, features %#llx\n", FpState::HostSize(),
              static_cast<unsigned long long>(FpState::HostFeatures()));
  EXPECT_EQ(fp.size(), FpState::HostSize());
  EXPECT_EQ(fp.mxcsr(), 0x1f80u);
  EXPECT_EQ(fp.fcw(), 0x37f);
  EXPECT_EQ(fp.xstate_bv(), FpState::kFeaturesFpSse);
}

TEST(FpStateTest, CopyRoundTripsAnImage) {
  std::vector<uint8_t> img(FpState::HostSize());
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 13 + 1);
  const uint32_t mxcsr = 0x7f80;
  std::memcpy(img.data() + 24, &mxcsr, 4);
  if (FpState::HostHasXsave()) {
    const uint64_t bv = FpState::HostFeatures();
    std::memcpy(img.data() + 512, &bv, 8);
    std::memset(img.data() + 520, 0, 56);
  }
  FpState fp;
  fp.CopyFrom(img.data(), img.size(), FpState::HostFeatures());
  EXPECT_EQ(fp.mxcsr(), 0x7f80u);
  std::vector<uint8_t> out(img.size());
  fp.CopyTo(out.data(), out.size(), FpState::HostFeatures());
  EXPECT_EQ(std::memcmp(out.data(), img.data(), 464), 0);  // legacy area
  if (FpState::HostHasXsave()) {
    EXPECT_EQ(std::memcmp(out.data() + 512, img.data() + 512, out.size() - 512), 0);
  }
}

TEST(FpStateTest, CopyFromSanitizesUntrustedBytes) {
  if (!FpState::HostHasXsave()) GTEST_SKIP() << "no XSAVE on this CPU";
  std::vector<uint8_t> img(FpState::HostSize(), 0xff);  // every bit set
  FpState fp;
  fp.CopyFrom(img.data(), img.size(), ~uint64_t{0});
  // Only bits this CPU's MXCSR_MASK allows (else LDMXCSR/XRSTOR would #GP).
  alignas(16) uint8_t fx[512] = {};
  asm volatile("fxsave %0" : "=m"(fx));
  uint32_t mask;
  std::memcpy(&mask, fx + 28, 4);
  if (mask == 0) mask = 0xffbf;
  EXPECT_EQ(fp.mxcsr() & ~mask, 0u) << "MXCSR reserved bits kept";
  EXPECT_NE(fp.mxcsr(), 0u);
  EXPECT_EQ(fp.xstate_bv() & ~FpState::HostFeatures(), 0u);
  for (size_t i = 520; i < 576; ++i) EXPECT_EQ(fp.data()[i], 0) << "header byte " << i;
  for (size_t i = 464; i < 512; ++i) EXPECT_EQ(fp.data()[i], 0) << "software byte " << i;
}

TEST(FpStateTest, FxsaveSourceLeavesExtendedStateInit) {
  if (!FpState::HostHasXsave()) GTEST_SKIP() << "no XSAVE on this CPU";
  std::vector<uint8_t> img(FpState::HostSize(), 0);
  uint64_t bv = FpState::HostFeatures();
  std::memcpy(img.data() + 512, &bv, 8);
  FpState fp;
  fp.CopyFrom(img.data(), img.size(), FpState::HostFeatures());
  EXPECT_EQ(fp.xstate_bv(), FpState::HostFeatures());
  fp.CopyFrom(img.data(), 512, FpState::kFeaturesFpSse);
  EXPECT_EQ(fp.xstate_bv(), FpState::kFeaturesFpSse);
}

TEST(FpStateTest, CopyToMarksFpSsePresentAndLimitsToDestination) {
  if (!FpState::HostHasXsave()) GTEST_SKIP() << "no XSAVE on this CPU";
  FpState fp;
  std::vector<uint8_t> dst(FpState::HostSize(), 0xee);
  fp.CopyTo(dst.data(), dst.size(), FpState::kFeaturesFpSse);
  EXPECT_EQ(Bv(dst.data()), FpState::kFeaturesFpSse);
  for (size_t i = 464; i < 512; ++i) EXPECT_EQ(dst[i], 0xee) << "software byte " << i;
  for (size_t i = 520; i < 576; ++i) EXPECT_EQ(dst[i], 0) << "header byte " << i;
}

}  // namespace
}  // namespace seedvisor::platform
