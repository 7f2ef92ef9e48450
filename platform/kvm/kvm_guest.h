// What the guest's ring 0 is made of (README.md): the page tables, GDT, IDT,
// ring-0 code and the user-mode LSTAR page in the region (kvm_layout.h),
// and the registers a fresh vCPU starts with. Pure data: the sentry writes
// it into an address space's region and hands the structs to KVM.
//
//   kvm::WriteRegionTables(region);                    // once per region
//   kvm::MapGuestGiB(region, gib, &next_pd);          // per GiB in use
//   kvm_sregs s = kvm::InitialSregs(slot);
//
// The guest is identity-mapped (guest-virtual = guest-physical = the stub's
// address), with 2 MiB pages for guest memory (this host's KVM, PVM,
// triple-faults on 1 GiB ones).
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_GUEST_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_GUEST_H_

#include <linux/kvm.h>

#include <cstdint>

namespace seedvisor::platform::kvm {

// Fills the region's fixed part (everything but CPUID and the slots).
void WriteRegionTables(uint8_t* region);
// Maps guest-virtual GiB `gib` (below kRegionBase) to the same guest-physical
// GiB with user, writable 2 MiB pages, taking a PD page from the pool
// (*next_pd counts the pool pages in use). False if the pool is full.
// Entries only ever go from absent to present: KVM's shadow MMU picks them
// up on its next miss, with no flush.
bool MapGuestGiB(uint8_t* region, uint64_t gib, int* next_pd);
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
