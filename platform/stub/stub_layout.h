// Where the pieces every stub shares are (stub_common_amd64.inc): the gadget
// offsets from the stub's entry point, and where stubs are linked.
#ifndef SEEDVISOR_PLATFORM_STUB_STUB_LAYOUT_H_
#define SEEDVISOR_PLATFORM_STUB_STUB_LAYOUT_H_

#include <cstdint>

#include "sentry/base/usermem.h"

namespace seedvisor::platform::stub {

inline constexpr uint64_t kStubSyscallGadget = 0x20;  // syscall; int3
inline constexpr uint64_t kStubForkGadget = 0x30;     // clone; the child parks
inline constexpr uint64_t kStubExitGadget = 0x40;     // exit this host thread
inline constexpr uint64_t kStubPark = 0x50;           // wait to be attached
inline constexpr uint64_t kStubZygoteLoop = 0xf0;     // reap children forever
inline constexpr uint64_t kStubScratchAddr = 0x100;   // holds the scratch page's address
inline constexpr uint64_t kStubScratchSize = 4096;
inline constexpr uint64_t kStubAtomicGadget = 0x110;  // ATOMIC_UPDATE_32; int3
// The number a stub's call path (systrap, kvm) takes for ATOMIC_UPDATE_32
// rather than a host syscall: Context::AtomicUpdate32.
inline constexpr long kStubAtomicUpdate32Call = -2;
// A syscall stop's ip lies past the gadget's syscall instruction.
inline constexpr uint64_t kSyscallInsnSize = 2;
// Where every stub is linked (-Ttext-segment); the guest lives below it.
inline constexpr uint64_t kStubBase = 0x7fffe0000000;

// Where one running stub's fixed pieces are; the same in every stub forked
// from one zygote (no ASLR).
struct StubLayout {
  uint64_t entry = 0;    // gadgets are at fixed offsets from here
  uint64_t scratch = 0;  // a read-only page for injected syscall arguments
  UserAddr vdso;
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_STUB_LAYOUT_H_
