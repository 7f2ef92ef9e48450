// The kvm platform's fixed layout: the stub's gadgets, the region shared by
// the sentry, the stub and the guest's ring 0, and the guest's selectors.
//
// Region (a memfd, mapped MAP_SHARED at kRegionBase in the stub and anywhere
// in the sentry; also the VM's memslot 0, guest-physical = stub address,
// mapped at the same guest-virtual address, supervisor-only except the
// syscall page):
//
//   +0x000000  PML4
//   +0x001000  PD of the region's own GiB; +0x2000 its PT for the first 2 MiB
//   +0x003000  PT of the 2 MiB that hold the stub's [vvar], [vvar_vclock]
//              and [vdso] (the guest's vDSO, read-only user pages)
//   +0x004000  GDT            +0x005000  LSTAR page (user, read/execute)
//   +0x006000  ring-0 code    +0x007000  IDT
//   +0x010000  CPUID for KVM_SET_CPUID2 (written once per address space)
//   +0x100000  PDPT pages, one per PML4 slot of the user half (256)
//   +0x200000  PD pages, one per GiB of guest address space in use
//   +kPtPoolOff PT pages, one per 2 MiB of guest address space mapped
//   +kSlotsOff slots, one per stub thread:
//       +0x0000 CommPage (+0x100 argument structs, +0x800 kvm_run mirror)
//       +0x1000 TSS of vCPU N (slot N < kVcpus)
//       +0x2000..0x3000 ring-0 stack of vCPU N (RSP0 = IST1)
//       +0x3000 the thread's XSAVE buffer
//       +0x6000..0x8000 the stub thread's host stack
//
// vCPU N's kvm_run page is mapped (from its fd) at kRunBase + N * kRunStride
// in the stub only. The VM's vCPUs are shared by the stub's threads (a
// thread holds one while its guest code runs: README.md, "vCPUs"); a
// thread's stub copies the parts the sentry needs between the kvm_run of
// the vCPU it was given and its slot's mirror around each KVM_RUN.
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_LAYOUT_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_LAYOUT_H_

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

#include "platform/stub/stub_layout.h"

namespace seedvisor::platform::kvm {

using stub::kStubBase;
inline constexpr uint64_t kStubEnter = 0x180;     // rdi = the thread's slot
inline constexpr uint64_t kStubUrgHandler = 0x300;  // never runs; SIGURG must not be ignored
inline constexpr uint64_t kStubRestorer = 0x308;

inline constexpr uint64_t kGiB = 1ull << 30;
inline constexpr uint64_t kPageSize = 0x1000;  // a guest PTE's page
// The last GiB below the stub's text's GiB-aligned end holds the platform.
inline constexpr uint64_t kRegionBase = kStubBase - 0x20000000;  // 0x7fffc0000000
inline constexpr uint64_t kRegionSize = 0x10000000;              // 256 MiB, sparse
inline constexpr uint64_t kRunBase = kRegionBase + kRegionSize;  // kvm_run pages
inline constexpr uint64_t kRunStride = 0x4000;
static_assert(kRegionBase % kGiB == 0);

inline constexpr uint64_t kPml4Off = 0x0;
inline constexpr uint64_t kRegionPdOff = 0x1000;
inline constexpr uint64_t kRegionPtOff = 0x2000;
inline constexpr uint64_t kVdsoPtOff = 0x3000;
inline constexpr uint64_t kGdtOff = 0x4000;
inline constexpr uint64_t kLstarOff = 0x5000;
inline constexpr uint64_t kRing0Off = 0x6000;
inline constexpr uint64_t kIdtOff = 0x7000;
inline constexpr uint64_t kCpuidOff = 0x10000;
inline constexpr uint64_t kCpuidSize = 0x10000;
inline constexpr uint64_t kPdptPoolOff = 0x100000;
inline constexpr uint64_t kPdPoolOff = 0x200000;
inline constexpr uint64_t kSlotsOff = 0x1000000;
inline constexpr int kPdPoolPages = (kSlotsOff - kPdPoolOff) / 0x1000;  // GiBs in use, at most
inline constexpr uint64_t kPtPoolOff = 0x5000000;
inline constexpr int kPtPoolPages = static_cast<int>((0x10000000 - kPtPoolOff) / 0x1000);
inline constexpr uint64_t kSlotSize = 0x8000;
// Threads of one address space, at most (Linux: pids and memory only).
inline constexpr int kSlots = 2048;
// vCPUs of one VM, at most (KVM_CAP_MAX_VCPUS is 1024 here); vCPU N's TSS
// and ring-0 stack lie in slot N.
inline constexpr int kVcpus = 1024;
static_assert(kVcpus <= kSlots);
static_assert(kSlotsOff + kSlots * kSlotSize <= kPtPoolOff);
static_assert(kRunBase + kVcpus * kRunStride <= kStubBase);

// Memslots: 0 the region, 1-3 the stub's [vvar], [vvar_vclock] and [vdso]
// (read-only), then one per GiB of guest memory in use.
inline constexpr uint32_t kVdsoFirstSlot = 1;
inline constexpr uint32_t kFirstGibSlot = 4;

// The most GiBs one mapping call may add memslots for (see EnsureGibs).
inline constexpr uint64_t kMaxNewGibs = 1024;

inline constexpr uint64_t kTssOff = 0x1000;
inline constexpr uint64_t kStackTopOff = 0x3000;
inline constexpr uint64_t kXsaveOff = 0x3000;
inline constexpr uint64_t kXsaveSize = 0x3000;
inline constexpr uint64_t kArgsOff = 0x100;
inline constexpr uint64_t kArgsSize = 0x700;
inline constexpr uint64_t kMirrorOff = 0x800;

// Ring-0 code (+kRing0Off): exception stubs of 16 bytes each, then `resume`.
inline constexpr uint64_t kExcStubSize = 16;
inline constexpr uint64_t kResumeOff = kRing0Off + 32 * kExcStubSize;
inline constexpr uint16_t kExitPort = 0x11;  // `out` port of every exception stub

// Selectors (Linux's, so that a guest sees what it would natively).
inline constexpr uint16_t kKernelCs = 0x10, kKernelDs = 0x18;
inline constexpr uint16_t kUserCs = 0x33, kUserDs = 0x2b;
inline constexpr uint16_t kTssSel = 0x40;

// The part of kvm_run the stub mirrors: the header, the exit union and the
// synced registers (KVM_CAP_SYNC_REGS).
inline constexpr size_t kMirrorSize = (offsetof(kvm_run, s) + sizeof(kvm_sync_regs) + 7) & ~size_t{7};
static_assert(kMirrorOff + kMirrorSize <= 0x1000);
static_assert(offsetof(kvm_run, s) == 304 && offsetof(kvm_run, kvm_valid_regs) == 288 &&
              offsetof(kvm_run, kvm_dirty_regs) == 296 && sizeof(kvm_regs) == 144,
              "stub_amd64.S hard-codes these");

// The KVM ioctls whose struct ends in a flexible array: C++ sizes those
// structs differently from C (__DECLARE_FLEX_ARRAY's empty struct takes a
// byte), which changes the size encoded in the request number. These are
// the kernel's (C) numbers.
inline constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
inline constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
inline constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
inline constexpr unsigned long kKvmSetSignalMask = _IOC(_IOC_WRITE, KVMIO, 0x8b, 4);
inline constexpr unsigned long kKvmGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);
inline constexpr unsigned long kKvmSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, 4096);
static_assert(kKvmGetSupportedCpuid == 0xc008ae05 && kKvmSetMsrs == 0x4008ae89 &&
              kKvmGetXsave == 0x9000aea4);

// struct kvm_msrs with room for three entries (its own ends in a flexible
// array).
struct Msrs {
  uint32_t nmsrs;
  uint32_t pad;
  kvm_msr_entry e[3];
};
inline constexpr size_t kXsaveImage = 4096;  // struct kvm_xsave's region (C size)

// Comm page states (the futex word), as on systrap.
inline constexpr uint32_t kStateIdle = 0;
inline constexpr uint32_t kStateEvent = 1;  // stub -> sentry: a KVM_RUN or a call ended
inline constexpr uint32_t kStateRun = 2;    // sentry -> stub: KVM_RUN with the mirror's regs
inline constexpr uint32_t kStateExit = 3;   // sentry -> stub: end this thread
inline constexpr uint32_t kStateGone = 4;   // stub: will not touch the slot again
inline constexpr uint32_t kStateCall = 5;   // sentry -> stub: make call_nr(args)

// Offsets match stub_amd64.S.
struct CommPage {
  uint32_t state;           // 0
  int32_t vcpu_fd;          // 4: the fd of the vCPU the thread holds (sentry -> stub)
  int64_t run_ret;          // 8: KVM_RUN's raw result
  uint32_t sentry_waiting;  // 16
  uint32_t stub_waiting;    // 20
  uint64_t call_nr;         // 24
  uint64_t call_args[6];    // 32
  int64_t call_ret;         // 80
  uint64_t run_addr;        // 88: where that vCPU's kvm_run is mapped in the stub
  uint64_t urg_set;         // 96: {SIGURG}, for rt_sigprocmask and rt_sigtimedwait
  uint64_t zero_ts[2];      // 104: a zero timespec
  // 120, sentry -> stub: TSC ticks to spin for the answer to the next post
  // before sleeping (KvmShared::stub_spin_max; the stub caps it at
  // SPIN_MAX).
  uint64_t stub_spin;
  uint64_t post_tsc;        // 128, stub -> sentry: the TSC when it posted
};
static_assert(sizeof(CommPage) == 136 && sizeof(CommPage) <= kArgsOff);

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_LAYOUT_H_
