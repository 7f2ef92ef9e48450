#include "platform/systrap/syscall_patch.h"

#include <cstring>

namespace seedvisor::platform::systrap {
namespace {

constexpr uint8_t kMovEaxImm32 = 0xb8;
// A syscall number as a `mov $imm32,%eax` leaves it is below 2^24 by far
// (x32 numbers start at 0x40000000 and trap like any unknown number); a
// half-written jump's imm32 has EncodeJump's nonzero second address byte
// as its top byte, so it is at least 2^24.
constexpr uint64_t kMaxSyscallNr = uint64_t{1} << 24;

bool InTable(uint32_t addr, uint32_t size) {
  return addr >= kTableLow && addr <= kTableHigh - size;
}

void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

bool IsPatchableSite(const SiteBytes& b, uint64_t trapped_nr) {
  uint32_t imm;
  std::memcpy(&imm, &b[1], 4);
  return b[0] == kMovEaxImm32 && b[5] == 0x0f && b[6] == 0x05 && imm == trapped_nr &&
         imm < kMaxSyscallNr;
}

std::optional<SiteBytes> EncodeJump(uint32_t slot) {
  if (!InTable(slot, 8) || slot % 8 != 0 || ((slot >> 8) & 0xff) == 0) return std::nullopt;
  SiteBytes j = {0xff, 0x24, 0x25, 0, 0, 0, 0};  // jmp *abs32 (ModRM 0x24, SIB 0x25)
  Put32(&j[3], slot);
  // The byte that replaces the old `syscall`'s first byte.
  static_assert(((kTableLow >> 16) & 0xff) == kInvalidOpcode);
  return j;
}

std::optional<std::array<uint8_t, kSlotBytes>> EncodeSlot(uint32_t slot, uint32_t id,
                                                          uint32_t entry_qword) {
  if (!InTable(slot, kSlotBytes) || slot % kSlotBytes != 0 || !InTable(entry_qword, 8) ||
      entry_qword % 8 != 0) {
    return std::nullopt;
  }
  std::array<uint8_t, kSlotBytes> s;
  s.fill(0xcc);                         // int3 in the padding
  Put64(&s[0], slot + kSlotMovOffset);  // the qword the site jumps through
  s[kSlotMovOffset] = kMovEaxImm32;     // mov $id,%eax
  Put32(&s[kSlotMovOffset + 1], id);
  static_assert(kSlotJmpOffset == kSlotMovOffset + 5);
  s[kSlotJmpOffset] = 0xff;  // jmp *entry_qword
  s[kSlotJmpOffset + 1] = 0x24;
  s[kSlotJmpOffset + 2] = 0x25;
  Put32(&s[kSlotJmpOffset + 3], entry_qword);
  return s;
}

std::vector<RewriteStep> PlanRewrite(const SiteBytes& from, const SiteBytes& to) {
  // Bytes 0 and 5 are the two places an instruction can start, in either
  // encoding: the site's first instruction, and the old `syscall` (a jump
  // target, or where a thread that ran the old `mov` goes next). Both
  // become invalid first; after the serialization nothing can decode bytes
  // 1-4 or 6 as part of an instruction, and they change freely; then 5,
  // then 0. Byte 4 goes first among the middle ones: should a CPU still
  // run a `mov` it fetched before the fence, its imm32 is either the old
  // number whole or at least 2^24 (IllegalAtSite).
  std::vector<RewriteStep> steps;
  RewriteStep fence;
  for (uint8_t at : {0, 5}) {
    if (from[at] != kInvalidOpcode) fence.push_back({at, kInvalidOpcode});
  }
  if (!fence.empty()) steps.push_back(fence);
  RewriteStep middle;
  for (uint8_t at : {4, 1, 2, 3, 6}) {
    if (from[at] != to[at]) middle.push_back({at, to[at]});
  }
  if (!middle.empty()) steps.push_back(middle);
  if (to[5] != kInvalidOpcode) steps.push_back({{5, to[5]}});
  if (to[0] != kInvalidOpcode) steps.push_back({{0, to[0]}});
  return steps;
}

IllegalFixup IllegalAtSite(uint64_t site, uint64_t rip, uint64_t rax) {
  if (rip == site) return {IllegalFixup::kRetry};
  if (rip != site + 5) return {IllegalFixup::kNotOurs};
  // site+5 is what the old `syscall` became. Reached by the old `mov` (rax
  // is the site's number), by a jump to the old `syscall` (rax is what the
  // jumper chose), or by syscall restart (rip -= 2; rax is orig_rax or
  // restart_syscall): each is the syscall rax. A thread that decoded the
  // first byte of a `mov` before it was fenced and its imm32 halfway
  // through a rewrite has a value of at least 2^24: send it back to the
  // site, which by then holds the fence or the jump.
  if (rax < kMaxSyscallNr) return {IllegalFixup::kSyscall};
  return {IllegalFixup::kRetry};
}

}  // namespace seedvisor::platform::systrap
