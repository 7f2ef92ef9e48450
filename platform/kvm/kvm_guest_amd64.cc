#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "platform/kvm/kvm_guest.h"
#include "platform/kvm/kvm_layout.h"

namespace seedvisor::platform::kvm {
namespace {

constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kHuge = 0x80;

uint64_t* Table(uint8_t* region, uint64_t off) {
  // SAFETY: `off` is a page-aligned offset inside the region (kvm_layout.h),
  // which is mapped read-write and page-aligned in the sentry.
  return reinterpret_cast<uint64_t*>(region + off);
}

// `out %al, $port` from ring 0 exits to the VMM (KVM_EXIT_IO); a CPU
// exception pushes an error code for these vectors only.
bool HasErrorCode(int v) { return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30; }

void WriteRing0Code(uint8_t* region) {
  for (int v = 0; v < 32; ++v) {
    uint8_t* p = region + kRing0Off + v * kExcStubSize;
    int n = 0;
    if (!HasErrorCode(v)) p[n++] = 0x6a, p[n++] = 0;         // push $0
    p[n++] = 0x6a, p[n++] = static_cast<uint8_t>(v);          // push $vector
    p[n++] = 0xe6, p[n++] = static_cast<uint8_t>(kExitPort);  // out %al, $port
    p[n++] = 0x0f, p[n++] = 0x0b;                             // ud2: never resumed here
  }
  // resume: the ring-0 stack holds fs base, gs base, rax, then an iretq frame.
  static const uint8_t kResume[] = {
      0x58, 0xf3, 0x48, 0x0f, 0xae, 0xd0,  // pop %rax; wrfsbase %rax
      0x58, 0xf3, 0x48, 0x0f, 0xae, 0xd8,  // pop %rax; wrgsbase %rax
      0x58, 0x48, 0xcf,                    // pop %rax; iretq
  };
  std::memcpy(region + kResumeOff, kResume, sizeof(kResume));
  // LSTAR: on this host's KVM a ring-3 `syscall` lands here still in ring 3
  // (README.md); `out` faults (#GP) into ring 0, whose stub exits. The
  // sentry knows a syscall by vector 13 at this address.
  static const uint8_t kLstar[] = {0xe6, 0x10, 0x0f, 0x0b};  // out %al, $0x10; ud2
  std::memcpy(region + kLstarOff, kLstar, sizeof(kLstar));
}

void WriteGdtIdt(uint8_t* region) {
  uint64_t* gdt = Table(region, kGdtOff);
  gdt[kKernelCs / 8] = 0x00af9b000000ffffull;  // 64-bit code, DPL 0
  gdt[kKernelDs / 8] = 0x00cf93000000ffffull;  // data, DPL 0
  gdt[4] = 0x00cffb000000ffffull;              // 0x23: 32-bit user code (STAR)
  gdt[kUserDs / 8] = 0x00cff3000000ffffull;    // data, DPL 3
  gdt[kUserCs / 8] = 0x00affb000000ffffull;    // 64-bit code, DPL 3
  // The TSS descriptor only marks the selector valid: each vCPU's TR base
  // is set directly (InitialSregs), and nothing here runs LTR.
  for (int v = 0; v < 32; ++v) {
    const uint64_t h = kRegionBase + kRing0Off + v * kExcStubSize;
    uint8_t* d = region + kIdtOff + v * 16;
    const uint16_t lo = h & 0xffff, mid = (h >> 16) & 0xffff;
    const uint32_t hi = static_cast<uint32_t>(h >> 32), zero = 0;
    std::memcpy(d, &lo, 2);
    const uint16_t sel = kKernelCs;
    std::memcpy(d + 2, &sel, 2);
    d[4] = 1;                                  // IST1: a fixed frame address
    d[5] = (v == 3 || v == 4) ? 0xee : 0x8e;   // interrupt gate; int3/into from ring 3
    std::memcpy(d + 6, &mid, 2);
    std::memcpy(d + 8, &hi, 4);
    std::memcpy(d + 12, &zero, 4);
  }
}

}  // namespace

uint64_t SlotAddr(int slot) { return kRegionBase + kSlotsOff + static_cast<uint64_t>(slot) * kSlotSize; }
uint64_t StackTop(int slot) { return SlotAddr(slot) + kStackTopOff; }
uint64_t ResumeAddr() { return kRegionBase + kResumeOff; }
uint64_t LstarAddr() { return kRegionBase + kLstarOff; }

void WriteRegionTables(uint8_t* region) {
  // The region's GiB: PML4 slot 255, PDPT entry 511 (kRegionBase is the
  // last GiB of the lower half). Its first 2 MiB through a PT (the LSTAR
  // page is the only user page), the rest as supervisor 2 MiB pages.
  const uint64_t pml4_i = kRegionBase >> 39, pdpt_i = (kRegionBase >> 30) & 511;
  uint64_t* pml4 = Table(region, kPml4Off);
  const uint64_t pdpt_off = kPdptPoolOff + pml4_i * 0x1000;
  pml4[pml4_i] = (kRegionBase + pdpt_off) | kPresent | kWritable | kUser;
  Table(region, pdpt_off)[pdpt_i] = (kRegionBase + kRegionPdOff) | kPresent | kWritable | kUser;
  uint64_t* pd = Table(region, kRegionPdOff);
  pd[0] = (kRegionBase + kRegionPtOff) | kPresent | kWritable | kUser;
  for (uint64_t i = 1; i < kRegionSize >> 21; ++i) {
    pd[i] = (kRegionBase + (i << 21)) | kPresent | kWritable | kHuge;
  }
  uint64_t* pt = Table(region, kRegionPtOff);
  for (uint64_t i = 0; i < 512; ++i) pt[i] = (kRegionBase + (i << 12)) | kPresent | kWritable;
  pt[kLstarOff >> 12] = (kRegionBase + kLstarOff) | kPresent | kUser;
  WriteRing0Code(region);
  WriteGdtIdt(region);
}

namespace {

constexpr uint64_t kNoExec = 1ull << 63;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;

// The entry of `table` at `index`, pointing to a fresh table from a pool
// if absent (or null if the pool is empty).
uint64_t* NextLevel(uint8_t* region, uint64_t* entry, uint64_t pool_off, int pool_pages, int* next,
                    bool alloc) {
  if ((*entry & kPresent) == 0) {
    if (!alloc || *next >= pool_pages) return nullptr;
    const uint64_t off = pool_off + static_cast<uint64_t>((*next)++) * 0x1000;
    std::memset(region + off, 0, 0x1000);
    *entry = (kRegionBase + off) | kPresent | kWritable | kUser;
  }
  return Table(region, (*entry & kAddrMask) - kRegionBase);
}

uint64_t* Pte(const PageTables& pt, uint64_t va, bool alloc) {
  if (va >= kRegionBase) return nullptr;  // the platform's own GiB and up
  uint64_t* pml4 = Table(pt.region, kPml4Off);
  uint64_t* pml4e = &pml4[va >> 39];
  if ((*pml4e & kPresent) == 0) {
    if (!alloc) return nullptr;
    *pml4e = (kRegionBase + kPdptPoolOff + (va >> 39) * 0x1000) | kPresent | kWritable | kUser;
  }
  uint64_t* pdpt = Table(pt.region, (*pml4e & kAddrMask) - kRegionBase);
  uint64_t* pd = NextLevel(pt.region, &pdpt[(va >> 30) & 511], kPdPoolOff, kPdPoolPages, pt.next_pd, alloc);
  if (pd == nullptr) return nullptr;
  uint64_t* ptp = NextLevel(pt.region, &pd[(va >> 21) & 511], kPtPoolOff, kPtPoolPages, pt.next_pt, alloc);
  if (ptp == nullptr) return nullptr;
  return &ptp[(va >> 12) & 511];
}

uint64_t PteValue(uint64_t va, int prot) {
  if (prot <= PROT_NONE) return 0;  // unmapped, or mapped without access: absent
  uint64_t v = va | kUser | kPresent;
  if (prot & PROT_WRITE) v |= kWritable;
  if ((prot & PROT_EXEC) == 0) v |= kNoExec;
  return v;
}

}  // namespace

bool SetPtes(const PageTables& pt, uint64_t addr, uint64_t len, int prot) {
  const bool present = prot > PROT_NONE;
  for (uint64_t va = addr; va < addr + len; va += 0x1000) {
    uint64_t* e = Pte(pt, va, present);
    if (e == nullptr) {
      if (present) return false;
      va = (va | 0x1fffff);  // no table: nothing mapped in these 2 MiB
      va -= 0xfff;
      continue;
    }
    *e = PteValue(va, prot);
  }
  return true;
}

bool MovePtes(const PageTables& pt, uint64_t old_addr, uint64_t old_len, uint64_t new_addr,
              uint64_t new_len) {
  // Collect the old flags first: the ranges may overlap.
  std::vector<uint64_t> flags;
  flags.reserve(new_len / 0x1000);
  uint64_t last = 0;
  for (uint64_t off = 0; off < new_len; off += 0x1000) {
    if (off < old_len) {
      uint64_t* e = Pte(pt, old_addr + off, false);
      last = e != nullptr ? (*e & ~kAddrMask) : 0;
    }
    flags.push_back(last);
  }
  if (!SetPtes(pt, old_addr, old_len, -1)) return false;
  for (uint64_t i = 0; i < flags.size(); ++i) {
    const uint64_t va = new_addr + i * 0x1000;
    uint64_t* e = Pte(pt, va, true);
    if (e == nullptr) return false;
    *e = flags[i] == 0 ? 0 : (va | flags[i]);
  }
  return true;
}

bool MapVdsoPages(uint8_t* region, uint64_t addr, uint64_t len, bool exec) {
  constexpr uint64_t k2M = 1ull << 21;
  const uint64_t block = addr & ~(k2M - 1);
  if (len == 0 || addr % 0x1000 != 0 || len % 0x1000 != 0 || addr < kRegionBase + kRegionSize ||
      addr + len > kRegionBase + kGiB || addr + len - 1 < addr || ((addr + len - 1) & ~(k2M - 1)) != block) {
    return false;
  }
  uint64_t* pde = &Table(region, kRegionPdOff)[(block - kRegionBase) >> 21];
  const uint64_t pt_entry = (kRegionBase + kVdsoPtOff) | kPresent | kWritable | kUser;
  if ((*pde & kPresent) != 0 && *pde != pt_entry) return false;  // another 2 MiB has the PT
  if ((*pde & kPresent) == 0) std::memset(region + kVdsoPtOff, 0, 0x1000);
  *pde = pt_entry;
  uint64_t* pt = Table(region, kVdsoPtOff);
  for (uint64_t va = addr; va < addr + len; va += 0x1000) {
    pt[(va >> 12) & 511] = va | kPresent | kUser | (exec ? 0 : kNoExec);
  }
  return true;
}

void CopyPageTables(uint8_t* to, const uint8_t* from, int pds, int pts) {
  std::memcpy(to + kPml4Off, from + kPml4Off, 0x1000);
  std::memcpy(to + kPdptPoolOff, from + kPdptPoolOff, kPdPoolOff - kPdptPoolOff);
  std::memcpy(to + kPdPoolOff, from + kPdPoolOff, static_cast<uint64_t>(pds) * 0x1000);
  std::memcpy(to + kPtPoolOff, from + kPtPoolOff, static_cast<uint64_t>(pts) * 0x1000);
}

void WriteSlotTss(uint8_t* region, int slot) {
  uint8_t* tss = region + kSlotsOff + static_cast<uint64_t>(slot) * kSlotSize + kTssOff;
  std::memset(tss, 0, 0x68);
  const uint64_t top = StackTop(slot);
  std::memcpy(tss + 4, &top, 8);     // RSP0
  std::memcpy(tss + 0x24, &top, 8);  // IST1
  const uint16_t no_iomap = 0x68;
  std::memcpy(tss + 0x66, &no_iomap, 2);
}

kvm_sregs InitialSregs(const kvm_sregs& from_kvm, int slot) {
  kvm_sregs s = from_kvm;
  s.cr0 = 0x80050033;  // PE MP ET NE WP AM PG
  s.cr3 = kRegionBase + kPml4Off;
  // PAE, OSFXSR, OSXMMEXCPT, FSGSBASE, OSXSAVE.
  s.cr4 = (1u << 5) | (1u << 9) | (1u << 10) | (1u << 16) | (1u << 18);
  s.efer = 0xd00;  // LME LMA NXE; no SCE: syscall needs none here (README.md)
  kvm_segment code{};
  code.limit = 0xffffffff, code.selector = kKernelCs, code.type = 11, code.present = 1;
  code.s = 1, code.l = 1, code.g = 1;
  kvm_segment data{};
  data.limit = 0xffffffff, data.selector = kKernelDs, data.type = 3, data.present = 1;
  data.db = 1, data.s = 1, data.g = 1;
  kvm_segment unusable{};
  unusable.unusable = 1;
  s.cs = code, s.ss = data;
  s.ds = s.es = s.fs = s.gs = unusable;
  s.gdt.base = kRegionBase + kGdtOff, s.gdt.limit = 0x4f;
  s.idt.base = kRegionBase + kIdtOff, s.idt.limit = 32 * 16 - 1;
  kvm_segment tr{};
  tr.base = SlotAddr(slot) + kTssOff, tr.limit = 0x67, tr.selector = kTssSel, tr.type = 11;
  tr.present = 1;
  s.tr = tr;
  std::memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
  return s;
}

}  // namespace seedvisor::platform::kvm
