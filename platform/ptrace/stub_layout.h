// Offsets of the stub's gadgets from its entry point (stub_amd64.S).
#ifndef SEEDVISOR_PLATFORM_PTRACE_STUB_LAYOUT_H_
#define SEEDVISOR_PLATFORM_PTRACE_STUB_LAYOUT_H_

#include <cstdint>

namespace seedvisor::platform::ptrace {

inline constexpr uint64_t kStubSyscallGadget = 0x20;
inline constexpr uint64_t kStubForkGadget = 0x30;
inline constexpr uint64_t kStubExitGadget = 0x40;
inline constexpr uint64_t kStubPark = 0x50;
inline constexpr uint64_t kStubScratchAddr = 0x100;
inline constexpr uint64_t kStubScratchSize = 4096;
// Where the stub is linked (-Ttext-segment); the guest lives below it.
inline constexpr uint64_t kStubBase = 0x7fffe0000000;

}  // namespace seedvisor::platform::ptrace

#endif  // SEEDVISOR_PLATFORM_PTRACE_STUB_LAYOUT_H_
