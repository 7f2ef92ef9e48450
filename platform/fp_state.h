// FpState: a guest thread's FP/SSE/AVX state as data, independent of the
// host thread or stub that last ran it.
//
// The bytes are in the user ABI's XSAVE layout, the one the kernel writes
// into a signal frame's fpstate and ptrace's NT_X86_XSTATE regset returns:
//
//   0..511    the FXSAVE legacy area (FCW at 0, MXCSR at 24, st0-7 at 32,
//             xmm0-15 at 160); 464..511 are software-defined
//             (struct _fpx_sw_bytes in a signal frame) and not kept here
//   512..575  the XSAVE header: xstate_bv at 512; xcomp_bv 0 (standard,
//             non-compacted format)
//   576..     every user component the host's XCR0 enables, at the offsets
//             CPUID leaf 0xD gives (AVX: the ymm upper halves at 576)
//
// A bit clear in xstate_bv means that component is in its init state (its
// bytes are not meaningful). On a CPU without XSAVE the image is the
// 512-byte FXSAVE area alone. Platforms fill one with Context::GetFpState
// and load one with SetFpState; the sentry copies it on fork, writes it into
// and reads it back from guest signal frames.
//
//   FpState fp;                      // the init state (execve, handlers)
//   ctx.GetFpState(fp);              // the guest's current state
//   child_fp = fp;                   // fork: a copy
//   fp.CopyTo(frame, len, features); // into a signal frame
#ifndef SEEDVISOR_PLATFORM_FP_STATE_H_
#define SEEDVISOR_PLATFORM_FP_STATE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace seedvisor::platform {

class FpState {
 public:
  static constexpr size_t kFxsaveSize = 512;
  static constexpr size_t kXsaveHeaderEnd = 576;  // legacy area + header
  static constexpr size_t kSwBytesOffset = 464;   // struct _fpx_sw_bytes
  static constexpr uint64_t kFeaturesFpSse = 3;   // x87 | SSE
  static constexpr uint32_t kDefaultMxcsr = 0x1f80;
  static constexpr uint16_t kDefaultFcw = 0x37f;

  // The init state: FCW 0x37f, MXCSR 0x1f80, every register zero (what
  // execve() and a signal handler start with: fpu__clear_user_states()).
  FpState();

  // This host's image size and its user components as an XCR0 mask (AMX
  // tile data excluded: Linux leaves it out of the user ABI unless a process
  // asks for it with arch_prctl(ARCH_REQ_XCOMP_PERM), which we refuse).
  static size_t HostSize();
  static uint64_t HostFeatures();
  static bool HostHasXsave() { return HostSize() > kFxsaveSize; }

  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  uint32_t mxcsr() const;
  uint16_t fcw() const;
  // The components not in their init state (x87|SSE without XSAVE).
  uint64_t xstate_bv() const;

  void Reset();

  // Replaces this state with an image of `len` bytes in the layout above,
  // holding components `src_features` (a frame's or regset's xfeatures;
  // kFeaturesFpSse for a bare FXSAVE image, whose other components become
  // init). The bytes are untrusted (a guest may have written them): the
  // result is always safe to XRSTOR (MXCSR reserved bits cleared, xstate_bv
  // within HostFeatures(), a zero xcomp_bv and reserved header).
  void CopyFrom(const uint8_t* src, size_t len, uint64_t src_features);
  // Writes this state into an image of `len` bytes that has room for
  // components `dst_features`; bytes 464..511 of `dst` are left as they are
  // (the owner of the image fills them). x87 and SSE are always marked
  // present in xstate_bv, as Linux's save_xstate_epilog() does, so that an
  // edit of the legacy area (by a signal handler) takes effect.
  void CopyTo(uint8_t* dst, size_t len, uint64_t dst_features) const;

  bool operator==(const FpState& o) const { return bytes_ == o.bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace seedvisor::platform

#endif  // SEEDVISOR_PLATFORM_FP_STATE_H_
