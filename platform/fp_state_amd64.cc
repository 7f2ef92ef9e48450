#include "platform/fp_state.h"

#include <cpuid.h>

#include <algorithm>
#include <cstring>

namespace seedvisor::platform {
namespace {

constexpr size_t kMxcsrOffset = 24;
constexpr size_t kMxcsrMaskOffset = 28;
constexpr size_t kXstateBvOffset = 512;
constexpr int kXtileData = 18;  // XFEATURE_XTILE_DATA: dynamic, not in the default user ABI

struct HostInfo {
  size_t size = FpState::kFxsaveSize;
  uint64_t features = FpState::kFeaturesFpSse;
  uint32_t mxcsr_mask = 0xffbf;
  // End (offset + size) of each XSAVE component in the standard format.
  uint32_t end[64] = {};
};

HostInfo Probe() {
  HostInfo h;
  alignas(16) uint8_t fx[512] = {};
  asm volatile("fxsave %0" : "=m"(fx));
  uint32_t mask;
  std::memcpy(&mask, fx + kMxcsrMaskOffset, sizeof(mask));
  if (mask != 0) h.mxcsr_mask = mask;  // 0: the default mask (Intel SDM 11.6.6)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return h;
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const uint64_t xcr0 = (uint64_t{hi} << 32 | lo) & ~(uint64_t{1} << kXtileData);
  h.features = xcr0;
  h.size = FpState::kXsaveHeaderEnd;
  h.end[0] = h.end[1] = FpState::kFxsaveSize;
  for (int i = 2; i < 64; ++i) {
    if (!(xcr0 & (uint64_t{1} << i))) continue;
    __cpuid_count(0xd, i, a, b, c, d);  // eax: size, ebx: offset
    h.end[i] = b + a;
    h.size = std::max<size_t>(h.size, h.end[i]);
  }
  return h;
}

const HostInfo& Host() {
  static const HostInfo info = Probe();
  return info;
}

}  // namespace

size_t FpState::HostSize() { return Host().size; }
uint64_t FpState::HostFeatures() { return Host().features; }

FpState::FpState() : bytes_(HostSize()) { Reset(); }

void FpState::Reset() {
  // memset, not std::fill with an int 0: that one is a byte loop in an
  // unoptimized build (2.7 KB, twice per signal: delivery and sigreturn).
  std::memset(bytes_.data(), 0, bytes_.size());
  std::memcpy(bytes_.data(), &kDefaultFcw, sizeof(kDefaultFcw));
  std::memcpy(bytes_.data() + kMxcsrOffset, &kDefaultMxcsr, sizeof(kDefaultMxcsr));
  if (bytes_.size() >= kXsaveHeaderEnd) {
    std::memcpy(bytes_.data() + kXstateBvOffset, &kFeaturesFpSse, sizeof(kFeaturesFpSse));
  }
}

uint32_t FpState::mxcsr() const {
  uint32_t v;
  std::memcpy(&v, bytes_.data() + kMxcsrOffset, sizeof(v));
  return v;
}

uint16_t FpState::fcw() const {
  uint16_t v;
  std::memcpy(&v, bytes_.data(), sizeof(v));
  return v;
}

uint64_t FpState::xstate_bv() const {
  if (bytes_.size() < kXsaveHeaderEnd) return kFeaturesFpSse;
  uint64_t v;
  std::memcpy(&v, bytes_.data() + kXstateBvOffset, sizeof(v));
  return v;
}

void FpState::CopyFrom(const uint8_t* src, size_t len, uint64_t src_features) {
  std::memset(bytes_.data(), 0, bytes_.size());
  if (len < kFxsaveSize) {
    Reset();
    return;
  }
  std::memcpy(bytes_.data(), src, kSwBytesOffset);
  const uint32_t m = mxcsr() & Host().mxcsr_mask;  // reserved bits make XRSTOR fault
  std::memcpy(bytes_.data() + kMxcsrOffset, &m, sizeof(m));
  if (bytes_.size() < kXsaveHeaderEnd) return;
  uint64_t bv = kFeaturesFpSse;
  if (len >= kXsaveHeaderEnd) {
    std::memcpy(&bv, src + kXstateBvOffset, sizeof(bv));
    bv &= src_features & HostFeatures();
    const size_t n = std::min(len, bytes_.size());
    // A component the source has no room for stays in its init state.
    for (int i = 2; i < 64; ++i) {
      if ((bv & (uint64_t{1} << i)) && Host().end[i] > n) bv &= ~(uint64_t{1} << i);
    }
    if (n > kXsaveHeaderEnd) {
      std::memcpy(bytes_.data() + kXsaveHeaderEnd, src + kXsaveHeaderEnd, n - kXsaveHeaderEnd);
    }
  }
  // The legacy area is always taken (what Linux's sigreturn does: the
  // frame's xstate_bv has FP|SSE set); a bare FXSAVE image leaves every
  // other component init.
  bv |= kFeaturesFpSse;
  std::memcpy(bytes_.data() + kXstateBvOffset, &bv, sizeof(bv));
}

void FpState::CopyTo(uint8_t* dst, size_t len, uint64_t dst_features) const {
  if (len < kFxsaveSize) return;
  std::memcpy(dst, bytes_.data(), kSwBytesOffset);
  if (len < kXsaveHeaderEnd) return;
  const size_t n = std::min(len, bytes_.size());
  uint64_t bv = (xstate_bv() & dst_features) | kFeaturesFpSse;
  for (int i = 2; i < 64; ++i) {
    if ((bv & (uint64_t{1} << i)) && Host().end[i] > n) bv &= ~(uint64_t{1} << i);
  }
  // The header: xstate_bv, then a zero xcomp_bv and reserved bytes.
  std::memset(dst + kXstateBvOffset, 0, kXsaveHeaderEnd - kXstateBvOffset);
  std::memcpy(dst + kXstateBvOffset, &bv, sizeof(bv));
  if (n > kXsaveHeaderEnd) {
    std::memcpy(dst + kXsaveHeaderEnd, bytes_.data() + kXsaveHeaderEnd, n - kXsaveHeaderEnd);
  }
}

}  // namespace seedvisor::platform
