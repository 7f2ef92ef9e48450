// Syscall-site patching for systrap (design: PATCHING.md beside this file):
// the byte-level pieces, kept free of processes and memory so that they are
// tested on their own.
//
// A guest site `mov $nr,%eax; syscall` (b8 imm32 0f 05) that trapped becomes
// `jmp *abs32` (ff 24 25 abs32): a jump through the first qword of a
// per-site slot in a trampoline table below 2 GiB. Nothing is pushed on the
// guest stack, so the red zone below %rsp survives. The table lies where the
// third byte of abs32 is 0x06, an invalid opcode in 64-bit mode: that byte
// lands exactly where the old `syscall` began, so a thread that jumps to
// the old `syscall` (or had already run the old `mov`) traps with SIGILL at
// site+5 and IllegalAtSite() tells the sentry what to do with it.
//
//   SitePatch p;
//   if (IsPatchableSite(bytes_before_rip, orig_rax)) {
//     auto jump = EncodeJump(kTableBase + 64 * i);   // checked encoding
//     for (const auto& step : PlanRewrite(old_bytes, *jump)) { write; sync_core; }
//   }
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSCALL_PATCH_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSCALL_PATCH_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace seedvisor::platform::systrap {

inline constexpr int kSiteSize = 7;  // b8 imm32 0f 05
using SiteBytes = std::array<uint8_t, kSiteSize>;

// The only encoding in 64-bit mode that fills no defined instruction:
// `push %es` (0x06) is invalid there (Intel SDM vol. 2, opcode map, i64).
inline constexpr uint8_t kInvalidOpcode = 0x06;

// Where trampoline tables may lie: abs32's third byte is kInvalidOpcode and
// its fourth is 0, so [0x60000, 0x70000). Above mmap_min_addr (0x10000) and
// below a non-PIE executable's usual 0x400000.
inline constexpr uint32_t kTableLow = 0x00060000;
inline constexpr uint32_t kTableHigh = 0x00070000;

// Whether the 7 bytes that end at a trapped syscall's return address are
// `mov $nr,%eax; syscall` for the number the guest asked for. It says
// nothing about whether byte 0 starts an instruction (PATCHING.md, "the
// one accepted risk").
bool IsPatchableSite(const SiteBytes& bytes, uint64_t trapped_nr);

// `jmp *slot` for a slot qword at `slot`, or nullopt if the slot lies
// outside [kTableLow, kTableHigh), is not 8-aligned, or has a second
// address byte of 0 (see IllegalAtSite: a half-written imm32 must never
// read as a syscall number).
std::optional<SiteBytes> EncodeJump(uint32_t slot);

// The bytes at a slot: its own code address (the qword the site jumps
// through), then `mov $id,%eax; jmp *entry_qword`, which enters the stub's
// fast entry with the site's id in rax. The sentry takes the syscall number
// and the return address from its own SiteTable by that id, never from the
// guest-readable table. rax, rcx and r11 are what `syscall` itself
// clobbers, so the slot and the entry may use them.
inline constexpr int kSlotBytes = 32;
std::optional<std::array<uint8_t, kSlotBytes>> EncodeSlot(uint32_t slot, uint32_t id,
                                                          uint32_t entry_qword);
// Offsets of the slot's instructions: an event whose rip is slot + one of
// these happened before the fast entry ran (PATCHING.md, signals).
inline constexpr uint32_t kSlotMovOffset = 8;   // rip = site, nothing changed
inline constexpr uint32_t kSlotJmpOffset = 13;  // rax = id: as at site+5 with rax = nr

// One step of a cross-modifying write: single-byte stores (each atomic),
// after which the writer serializes every CPU running the address space
// (membarrier MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, from a stub
// thread) before the next step, as the kernel's text_poke_bp() does with
// int3. Offsets are from the site.
struct ByteWrite {
  uint8_t offset;
  uint8_t value;
};
using RewriteStep = std::vector<ByteWrite>;

// Steps that turn `from` into `to` (patching: site -> jump; unpatching:
// jump -> site) so that a thread running the site at any moment executes
// either the old sequence, the new one, or traps with SIGILL at site+0 or
// site+5 (never a mix of the two): first kInvalidOpcode at bytes 0 and 5,
// then the middle bytes, then byte 5 and last byte 0.
std::vector<RewriteStep> PlanRewrite(const SiteBytes& from, const SiteBytes& to);

// What a SIGILL at `rip` in a patched (or half-patched) site means.
struct IllegalFixup {
  enum Kind {
    kNotOurs,  // deliver the SIGILL to the guest as usual
    kRetry,    // resume at the site: it is being rewritten
    kSyscall,  // a syscall of number rax; it returns to site + 7
  } kind = kNotOurs;
};
IllegalFixup IllegalAtSite(uint64_t site, uint64_t rip, uint64_t rax);

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSCALL_PATCH_H_
