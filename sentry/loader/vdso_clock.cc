// SetVdsoClockSyscall: where the vDSO's clock_gettime is, from the
// sentry's own vDSO (the same image the host gives every process, the
// stubs included), and the bytes that make it a syscall.
#include "sentry/loader/vdso_clock.h"

#include <elf.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include <cstring>
#include <optional>
#include <string_view>

namespace seedvisor::sentry {
namespace {

// endbr64 (a landing pad, should the host enforce IBT); mov
// $SYS_clock_gettime, %rax; syscall; ret. The arguments are where the
// syscall wants them (rdi, rsi), and rcx and r11, which syscall clobbers,
// are the caller's to save in the C calling convention. The 64-bit mov,
// not `mov $nr, %eax` (b8 imm32): systrap rewrites only that form of site
// into a jump (platform/systrap/PATCHING.md), and this one is written
// over again by a setns, which would leave a stale record of the site.
constexpr unsigned char kSyscallEntry[] = {
    0xf3, 0x0f, 0x1e, 0xfa,  // endbr64
    0x48, 0xc7, 0xc0, SYS_clock_gettime & 0xff, SYS_clock_gettime >> 8, 0, 0,  // mov $228, %rax
    0x0f, 0x05,  // syscall
    0xc3,        // ret
};
static_assert(SYS_clock_gettime < 0x10000);

struct VdsoEntry {
  uint64_t offset = 0;  // from the vDSO's base
  unsigned char original[sizeof(kSyscallEntry)];
};

// __vdso_clock_gettime in the sentry's own vDSO, found once: its offset
// and its first bytes; nullopt if there is no vDSO or no such function
// long enough to hold the syscall entry.
std::optional<VdsoEntry> FindClockGettime() {
  const uint64_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return std::nullopt;
  // SAFETY: AT_SYSINFO_EHDR is the base of the vDSO image the kernel maps
  // in full (vdso2c's raw image: headers, sections and section headers)
  // into every process, readable; its offsets are the kernel's own.
  const char* image = reinterpret_cast<const char*>(base);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(image);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shentsize != sizeof(Elf64_Shdr)) {
    return std::nullopt;
  }
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(image + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum) continue;
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(image + sh[i].sh_offset);
    const char* names = image + sh[sh[i].sh_link].sh_offset;
    for (uint64_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
      if (std::string_view(names + syms[j].st_name) != "__vdso_clock_gettime") continue;
      if (syms[j].st_size < sizeof(kSyscallEntry)) return std::nullopt;
      VdsoEntry e;
      e.offset = syms[j].st_value;
      std::memcpy(e.original, image + e.offset, sizeof(e.original));
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace

Status SetVdsoClockSyscall(MM& mm, bool syscall) {
  static const std::optional<VdsoEntry> entry = FindClockGettime();
  const UserAddr base = mm.address_space().VdsoBase();
  if (!entry || base.IsNull()) return {};
  const UserAddr at(base.value() + entry->offset);
  const unsigned char* want = syscall ? kSyscallEntry : entry->original;
  unsigned char now[sizeof(kSyscallEntry)];
  // Already so (a fork of a process in the same state): no copy of the page.
  Result<size_t> n = mm.address_space().ReadForce(at, now, sizeof(now));
  if (n.ok() && *n == sizeof(now) && std::memcmp(now, want, sizeof(now)) == 0) return {};
  return mm.address_space().WriteForce(at, want, sizeof(kSyscallEntry));
}

}  // namespace seedvisor::sentry
