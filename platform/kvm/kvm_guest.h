// What the guest's ring 0 is made of (README.md): the page tables, GDT, IDT,
// ring-0 code and the user-mode LSTAR page in the region (kvm_layout.h),
// and the registers a fresh vCPU starts with. Pure data: the sentry writes
// it into an address space's region and hands the structs to KVM.
//
//   kvm::WriteRegionTables(region);                    // once per region
//   kvm::MapGuestGiB(region, gib, &next_pd);          // per GiB in use
//
// The guest is identity-mapped (guest-virtual = guest-physical = the stub's
// address), with 4 KiB pages for guest memory and 2 MiB ones for the
// platform's region (this host's KVM, PVM, triple-faults on 1 GiB ones).
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_GUEST_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_GUEST_H_

#include <linux/kvm.h>

#include <cstdint>

namespace seedvisor::platform::kvm {

// Fills the region's fixed part (everything but CPUID and the slots).
void WriteRegionTables(uint8_t* region);
// The guest's page tables for user memory follow the host mappings of the
// stub page by page (4 KiB PTEs, identity), so that a fault the guest must
// see is a #PF inside the VM with the exact address and kind. The sentry
// writes them beside each host mmap/munmap/mprotect/mremap; KVM's shadow
// MMU notices: the host call invalidates its translations of the range,
// and its next miss walks these tables afresh.
struct PageTables {
  uint8_t* region;
  int* next_pd;  // pool pages in use
  int* next_pt;
};
// Sets the PTEs of [addr, addr+len) for a mapping with `prot`, or clears
// them (prot < 0; PROT_NONE pages are absent too, so that a huge
// reservation costs no page tables). Page-table pages come from the pools;
// false (nothing half-done that matters: absent PTEs only fault) when a
// pool is empty.
bool SetPtes(const PageTables& pt, uint64_t addr, uint64_t len, int prot);
// Moves the PTEs of [old, old+old_len) to [new, new+new_len) (mremap),
// the grown part with the flags of the last old page.
bool MovePtes(const PageTables& pt, uint64_t old_addr, uint64_t old_len, uint64_t new_addr,
              uint64_t new_len);
// User PTEs (identity, read-only; executable if `exec`) for the stub's
// vDSO pages [addr, addr+len), which lie above UserTop in the region's GiB
// past the region itself; all of them must lie in one 2 MiB (the stub
// places [vvar] to [vdso] together), whose PT is the region's vDSO PT.
// False, and nothing written, if they do not.
bool MapVdsoPages(uint8_t* region, uint64_t addr, uint64_t len, bool exec);
// The page-table part of the region, for a forked address space: copies it.
void CopyPageTables(uint8_t* to, const uint8_t* from, int pds, int pts);
// The TSS of slot `slot` (RSP0 and IST1 at the top of its ring-0 stack).
void WriteSlotTss(uint8_t* region, int slot);
// A fresh vCPU's segment and control registers: ring 0, long mode, paging
// on the region's PML4, this slot's TSS.
kvm_sregs InitialSregs(const kvm_sregs& from_kvm, int slot);

// Guest-virtual addresses (identity: also the stub's).
uint64_t SlotAddr(int slot);
uint64_t StackTop(int slot);
uint64_t ResumeAddr();
uint64_t LstarAddr();

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_GUEST_H_
