// The x86-64 signal frame as the kernel builds it (arch/x86/kernel/signal.c,
// struct rt_sigframe): the guest's libc and debuggers read it, so the layout
// is ABI and pinned with static_asserts.
#ifndef SEEDVISOR_SENTRY_KERNEL_SIGNAL_FRAME_AMD64_H_
#define SEEDVISOR_SENTRY_KERNEL_SIGNAL_FRAME_AMD64_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>

namespace seedvisor::sentry {

// struct sigcontext (64-bit), uapi/asm/sigcontext.h.
struct SigContext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;  // guest address of the FP image (see FpFrameSize)
  uint64_t reserved1[8];
};
static_assert(sizeof(SigContext) == 256);

struct GuestStack {
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
};
static_assert(sizeof(GuestStack) == 24);

struct UContext {
  uint64_t uc_flags;
  uint64_t uc_link;
  GuestStack uc_stack;
  SigContext uc_mcontext;
  uint64_t uc_sigmask;
};
static_assert(offsetof(UContext, uc_mcontext) == 40);
static_assert(offsetof(UContext, uc_sigmask) == 296);

struct RtSigframe {
  uint64_t pretcode;  // sa_restorer: the handler returns there
  UContext uc;
  siginfo_t info;
};
static_assert(offsetof(RtSigframe, uc) == 8);
static_assert(offsetof(RtSigframe, info) == 312);

inline constexpr uint64_t kRedZone = 128;

// The frame's FP image (fpu__alloc_mathframe(), copy_fpstate_to_sigframe()):
// with XSAVE the whole user XSAVE image, its struct _fpx_sw_bytes (in the
// FXSAVE area's software bytes at 464) saying so, and FP_XSTATE_MAGIC2 after
// it; without XSAVE the 512-byte FXSAVE image. 64-byte aligned.
struct FpxSwBytes {
  uint32_t magic1;         // FP_XSTATE_MAGIC1
  uint32_t extended_size;  // xstate_size + 4 (the trailing magic2)
  uint64_t xfeatures;      // the components the image holds
  uint32_t xstate_size;    // the XSAVE image's size
  uint32_t padding[7];
};
static_assert(sizeof(FpxSwBytes) == 48);
inline constexpr uint32_t kFpXstateMagic1 = 0x46505853;
inline constexpr uint32_t kFpXstateMagic2 = 0x46505845;
inline constexpr uint64_t kUcFpXstate = 0x1;  // uc_flags: the frame has an XSAVE image

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_SIGNAL_FRAME_AMD64_H_
