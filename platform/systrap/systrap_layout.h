// The systrap stub's fixed layout: gadget offsets (shared with the ptrace
// stub) plus the handler, and the shared region of per-thread slots.
//
// Region (mapped MAP_SHARED from a memfd at kRegionBase in the stub and
// anywhere in the sentry): kSlots slots of kSlotSize bytes, aligned to
// kSlotSize so that the handler finds its slot by masking its stack pointer.
// Slot 0 is a setup area for injected calls; slots 1.. belong to threads:
//
//   slot + 0        CommPage (the futex word and the event)
//   slot + 4 KiB .. slot + kSlotSize: the thread's sigaltstack, where the
//                   kernel writes the signal frame the sentry edits in place
//
// The guest can read and write the region (it lives in its address space),
// so the sentry treats everything in it as guest-controlled: pointers are
// checked against the slot before use. It lies above the guest's user range
// (UserTop), and the mapping itself is sealed (mseal) and MADV_DONTFORK:
// the guest can scribble on it but never unmap, replace or move it.
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_LAYOUT_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_LAYOUT_H_

#include <cstdint>

#include "platform/stub/stub_layout.h"

namespace seedvisor::platform::systrap {

using stub::kStubBase;
using stub::kStubExitGadget;
using stub::kStubForkGadget;
using stub::kStubPark;
using stub::kStubScratchAddr;
using stub::kStubSyscallGadget;
inline constexpr uint64_t kStubEnter = 0x180;
inline constexpr uint64_t kStubHandler = 0x200;
// The same handler for hosts whose kernel keeps user space from the FSGSBASE
// instructions (UserFsgsbase() false): it sets the guest's FS and GS bases
// with arch_prctl and knows them from what it set (kFsBaseHeld).
inline constexpr uint64_t kStubHandlerNoFsgsbase = 0x1f0;
inline constexpr uint64_t kStubRestorer = 0x380;
// Syscall-site patching (PATCHING.md): a patched site's slot jumps to the
// fast entry; `ud2`s the sentry recognises by their address.
inline constexpr uint64_t kStubFastFail = 0x3f0;   // GS is not a slot: rax = site id
inline constexpr uint64_t kStubFastSlow = 0x3f8;   // the sentry asked for a signal-frame exit
inline constexpr uint64_t kStubFastEntry = 0x400;

inline constexpr uint64_t kSlotSize = 0x8000;  // SLOT_MASK in stub_amd64.S
inline constexpr uint64_t kCommSize = 0x1000;
// One slot per thread of an address space, so this bounds the guest's
// threads per process (clone fails with EAGAIN beyond, as at Linux's
// threads-max). The region fills the 512 MiB below the stub's text; it is
// a sparse memfd, so only the slots in use cost memory.
inline constexpr int kSlots = 16384;
inline constexpr uint64_t kRegionSize = kSlotSize * kSlots;
// Below the stub's text; the guest's address space ends here.
inline constexpr uint64_t kRegionBase = kStubBase - 0x20000000;
static_assert(kRegionBase + kRegionSize <= kStubBase, "the region overlaps the stub");

// A fast event's frame (stub_amd64.S FAST_*), written by the fast entry
// into the upper half of the thread's slot. The fast stack lies below it,
// inside the sigaltstack, so that a kick taken on it nests below the stack
// (the kernel puts a frame under the current %rsp when it is already on the
// alternate stack) and never on this frame; a signal frame taken outside
// the fast path starts at the slot's top, above the gregs and the start of
// the XSAVE image, and never coexists with a fast event.
inline constexpr uint64_t kFastStackTop = 0x4000;
inline constexpr uint64_t kFastHeader = 0x4000;
inline constexpr uint64_t kFastGregs = 0x4100;  // 23 qwords in mcontext order (REG_R8 ..)
inline constexpr uint64_t kFastXsave = 0x4400;  // XSAVE image, 64-byte aligned
static_assert(kFastXsave % 64 == 0);
struct FastHeader {
  uint64_t id;          // stub -> sentry: the site's id (rax from the slot)
  uint64_t xmask;       // sentry -> stub: the components to XSAVE/XRSTOR
  uint32_t fp_dirty;    // sentry -> stub: XRSTOR the image before the exit
  uint32_t slow;        // sentry -> stub: exit through kStubFastSlow instead
};

// Where the stub writes the timespec of its own clock_gettime on a
// kStateCall (SystrapContext::OwnCpuClockNs), in the comm page's 4 KiB,
// past the CommPage and `enter`'s sigset.
inline constexpr uint64_t kCpuClockOff = 0x100;
// The FS and GS bases the thread's host kernel state holds, for the handler
// without FSGSBASE: read at `enter`, then what its arch_prctl calls set.
inline constexpr uint64_t kFsBaseHeld = 0x90;  // FS_HELD in stub_amd64.S
inline constexpr uint64_t kGsBaseHeld = 0x98;  // GS_HELD
static_assert(kGsBaseHeld + 8 <= kCpuClockOff);

// Whether the host kernel lets user space use RDFSBASE/WRFSBASE and their GS
// twins (AT_HWCAP2's HWCAP2_FSGSBASE, Linux >= 5.9 on a CPU that has them).
// Where it does not, the instructions may fault, or (seen in a PVM guest, the
// CPU's FSGSBASE on, the kernel's off) work until the kernel switches the
// thread out and back and restores the base it knows, losing what the stub
// wrote: the guest's TLS pointer turns 0. Then the stub uses arch_prctl and
// syscall-site patching (whose fast path needs WRGSBASE) stays off.
bool UserFsgsbase();

// Comm page states (the futex word).
inline constexpr uint32_t kStateIdle = 0;
inline constexpr uint32_t kStateEvent = 1;  // stub -> sentry: signo/info/uc are set
inline constexpr uint32_t kStateReply = 2;  // sentry -> stub: resume the guest
inline constexpr uint32_t kStateExit = 3;   // sentry -> stub: end this thread
inline constexpr uint32_t kStateGone = 4;   // stub: will not touch the slot again
inline constexpr uint32_t kStateCall = 5;   // sentry -> stub: make call_nr(args), then EVENT

// Offsets match stub_amd64.S.
struct CommPage {
  uint32_t state;
  uint32_t signo;
  uint64_t info;     // stub address of the siginfo in the frame
  uint64_t uc;       // stub address of the ucontext in the frame
  uint64_t fs_base;  // stub -> sentry: current; sentry -> stub: to install
  uint64_t gs_base;  // likewise
  // Set by a side before it sleeps on `state`; the other side calls
  // FUTEX_WAKE only then (each may spin first: systrap_handoff.h).
  uint32_t sentry_waiting;
  uint32_t stub_waiting;
  // kStateCall: a memory syscall the stub makes itself (anonymous mmap,
  // munmap, mprotect, madvise, msync, mremap: seccomp/stub_policy.cc), far
  // cheaper than ptrace injection. The result replaces no frame state.
  uint64_t call_nr;
  uint64_t call_args[6];
  int64_t call_ret;
  // sentry -> stub: TSC ticks to spin for the answer to the next post
  // before sleeping (the stub caps it at SPIN_MAX).
  uint64_t stub_spin;
  // stub -> sentry: the TSC when the stub posted. Guest-writable: used only
  // to tune this thread's own spin.
  uint64_t post_tsc;
};
static_assert(sizeof(CommPage) == 128);  // `enter`'s sigset lies at +128
static_assert(sizeof(CommPage) + 8 <= kCpuClockOff && kCpuClockOff + 16 <= kCommSize);

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_LAYOUT_H_
