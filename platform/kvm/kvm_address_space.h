// KvmAddressSpace and KvmContext: see kvm_platform.h and README.md.
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_ADDRESS_SPACE_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_ADDRESS_SPACE_H_

#include <linux/kvm.h>
#include <sys/types.h>

#include <deque>
#include <memory>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "platform/kvm/kvm_layout.h"
#include "platform/platform.h"
#include "platform/stub/context_registry.h"
#include "platform/stub/injector.h"
#include "platform/stub/slot_registry.h"
#include "platform/stub/stub_address_space.h"
#include "platform/systrap/systrap_handoff.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::platform::kvm {

class KvmContext;

// How long a stub thread spins for the sentry's answer at most, unless
// SEEDSC_KVM_SPIN_US says otherwise (README.md, "The handoff").
inline constexpr int64_t kDefaultStubSpinNs = 50'000;

// What every address space of one platform shares: the sentry's /dev/kvm
// fd (stubs open it through /proc), the CPUID the vCPUs get, the vCPU mmap
// size and the guest's XCR0.
struct KvmShared {
  KvmShared() = default;
  KvmShared(const KvmShared&) = delete;
  KvmShared& operator=(const KvmShared&) = delete;
  ~KvmShared();
  int kvm_fd = -1;
  int vcpu_mmap_size = 0;
  std::vector<uint8_t> cpuid;  // a struct kvm_cpuid2 with its entries
  uint64_t xcr0 = 0;
  // The guest gets the stub's vDSO (KvmHost::vdso; README.md, "The vDSO"):
  // each vCPU's TSC offset is set to 0.
  bool vdso = false;
  // The longest a stub thread spins for the sentry's answer before it
  // sleeps, in TSC ticks (0: it sleeps at once). README.md, "The handoff".
  uint64_t stub_spin_max = 0;
  // vCPUs per VM, at most: kVcpus, or SEEDSC_KVM_MAX_VCPUS (1 and up), which
  // makes threads share them sooner (tests of the sharing; README.md).
  int max_vcpus = kVcpus;
};

// The VM's vCPUs, shared by the threads of its address space (README.md,
// "vCPUs"): a thread holds one only while its guest code runs, and runs
// on the one it ran on last whenever that is free. A new thread gets a
// vCPU of its own while the VM has fewer than KvmShared::max_vcpus
// (kVcpus); beyond that a thread takes a free one, moving the FP state of
// the thread that last ran there out (KVM_GET_XSAVE into that thread's
// slot), and waits in line when none is free, kicking a runner out now and
// then as a scheduler would.
//
// The rules (kvm_vcpus.cc): `mu` guards who holds each vCPU and whose FP
// state it holds (Claim), and where each thread's FP state is
// (KvmContext::fp_vcpu_, fp_in_buffer_). It is never held across a stub
// round trip: only the thread that holds a vCPU (Claim::runner: to run on
// it, to make it, or to move FP state out of it) makes ioctls on it or
// uses its Vcpu, without the lock; and an FP state that is in a vCPU moves
// only by the thread that holds that vCPU. So a thread whose state is in a
// vCPU another holds waits (KvmContext::FpReachable) before it reads,
// writes or drops its state: the holder is moving it out.
struct VcpuPool {
  // Who has a vCPU: under mu.
  struct Claim {
    const KvmContext* runner = nullptr;    // the thread that holds it
    const KvmContext* fp_owner = nullptr;  // whose FP state its registers hold
    bool broken = false;  // its making failed: never used (KVM keeps its id)
    // The runner holds it to run guest code (HoldVcpu to ReleaseVcpu), not
    // only to make it or to move FP state: the only runner a kick may go
    // to (a kick anywhere else stays pending until that thread's next run,
    // which it spoils, and frees no vCPU).
    bool guest = false;
  };
  // The holder's business, passed on with the vCPU (under mu): the fd in
  // the stub (0: not made yet), where it stopped, ring 0 or ring 3 (PVM
  // cannot change the CPL through KVM_SET_SREGS once a vCPU has run), and
  // the fs and gs bases it holds.
  struct Vcpu {
    int fd = 0;
    bool ring0 = true;
    uint64_t fs_base = 0, gs_base = 0;
  };
  absl::Mutex mu;
  Claim claims[kVcpus] ABSL_GUARDED_BY(mu);          // by vCPU id
  std::unique_ptr<Vcpu[]> vcpus{new Vcpu[kVcpus]};  // by vCPU id
  int made ABSL_GUARDED_BY(mu) = 0;    // ids [0, made) are taken
  int broken ABSL_GUARDED_BY(mu) = 0;  // ids whose making failed
  // Threads waiting for a vCPU, in line, each on its own CondVar: a freed
  // vCPU wakes the first only (2,000 threads woken at once queue here).
  std::deque<sentry::MonoCondVar*> line ABSL_GUARDED_BY(mu);
  int kick_next ABSL_GUARDED_BY(mu) = 0;  // the runner the next kick goes to
  // Wakes the first in line, if any.
  void WakeFirstLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!line.empty()) line.front()->Signal();
  }
};

class KvmAddressSpace : public stub::StubAddressSpace {
 public:
  // Sets up the parked stub `pid`: its inherited fds closed, a fresh region
  // mapped, a VM with a memslot for the region. For a fork (`parent`: the
  // stub `pid` is a host fork of parent's), memslots for the parent's GiBs
  // and a copy of its page tables; otherwise the SIGURG disposition.
  static absl::StatusOr<std::shared_ptr<KvmAddressSpace>> Create(
      pid_t pid, const stub::StubLayout& layout, std::shared_ptr<const KvmShared> shared,
      KvmAddressSpace* parent);
  ~KvmAddressSpace() override;

  UserAddr UserTop() const override { return UserAddr(kRegionBase); }
  // The stub's (the host's) vDSO, run in the VM over read-only memslots of
  // the stub's [vvar], [vvar_vclock] and [vdso] (README.md, "The vDSO"), or
  // none (KvmShared::vdso off): the guest's clocks are syscalls then.
  UserAddr VdsoBase() const override { return vdso_ ? layout_.vdso : UserAddr(); }
  void AbandonInForkChild() override;

  Status Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
             uint64_t offset) override;
  Status MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                          uint64_t offset) override;
  Status Unmap(UserAddr addr, uint64_t len) override;
  Status Protect(UserAddr addr, uint64_t len, int prot) override;
  Status Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr, uint64_t new_len) override;

  // SIGBUS (README.md): an access the host refuses with SIGBUS (past the
  // end of a file or of a shared memory object) comes back from KVM_RUN as
  // EFAULT without an address (this host's KVM fills in no memory-fault
  // exit). HidePastEnd clears the guest PTEs of every page of a backed
  // mapping that lies past its object's end (found by reading through
  // /proc/PID/mem, a binary search per mapping), so that the access, run
  // again, faults inside the VM with its address; whether it found any.
  bool HidePastEnd();
  // Whether the page at `addr` of a backed mapping lies past its object's
  // end (a read through /proc/PID/mem fails).
  bool PastEnd(uint64_t addr);
  // Sets the PTE of the page at `addr` again (a hidden page whose object
  // has grown since).
  void ShowPage(uint64_t addr, int prot);

  uint8_t* region() const { return region_; }
  CommPage* comm(int slot) const;
  uint8_t* slot_base(int slot) const { return region_ + kSlotsOff + static_cast<uint64_t>(slot) * kSlotSize; }
  int vm_fd() const { return vm_fd_; }
  const KvmShared& shared() const { return *shared_; }
  std::shared_ptr<const KvmShared> shared_handle() const { return shared_; }

  // Thread slots (each with its vCPU), and which context each sentry host
  // thread drives.
  stub::SlotRegistry& slots() { return slots_; }
  stub::ContextRegistry<KvmContext>& contexts() { return contexts_; }
  VcpuPool& vcpus() { return vcpus_; }

 private:
  KvmAddressSpace(pid_t pid, const stub::StubLayout& layout, std::shared_ptr<const KvmShared> shared);
  absl::Status Setup(KvmAddressSpace* parent);
  // The guest PTEs after a host call that succeeded (kvm_guest.h).
  Status Ptes(bool ok);
  // Memslot and page-table entries for the GiBs [addr, addr+len) touches.
  Status EnsureGibs(UserAddr addr, uint64_t len);
  // Memslots and user PTEs for the stub's vDSO pages (VdsoBase).
  absl::Status MapVdso(stub::Injector& inj);
  long MemoryCall(long nr, const long (&args)[6]) override;
  std::unique_ptr<stub::StubSyscalls> FileCalls() override;

  std::shared_ptr<const KvmShared> shared_;
  uint8_t* region_ = nullptr;
  int vm_fd_ = -1;  // in the stub
  bool vdso_ = false;
  absl::Mutex mu_;
  std::set<uint64_t> gibs_ ABSL_GUARDED_BY(mu_);
  int next_pd_ ABSL_GUARDED_BY(mu_) = 0;
  int next_pt_ ABSL_GUARDED_BY(mu_) = 0;
  stub::SlotRegistry slots_{0, kSlots};
  stub::ContextRegistry<KvmContext> contexts_;
  VcpuPool vcpus_;
};

class KvmContext : public Context {
 public:
  // Sends the parked stub thread `tid` to `enter` with a slot, and makes it
  // a vCPU of its own while the VM has fewer than KvmShared::max_vcpus.
  static absl::StatusOr<std::unique_ptr<KvmContext>> Create(std::shared_ptr<KvmAddressSpace> as,
                                                            pid_t tid);
  ~KvmContext() override;

  Stop Run(Registers& regs) override;
  void Interrupt() override;
  Status GetFpState(FpState& fp) override;
  Status SetFpState(const FpState& fp) override;
  Result<ThreadHandle> NewThread() override;
  Result<std::shared_ptr<AddressSpace>> ForkAddressSpace() override;
  AddressSpace& address_space() override { return *as_; }
  ThreadHandle thread() const override { return ThreadHandle{tid_}; }
  int64_t CpuTimeNs() const override;
  int64_t OwnCpuClockNs(bool whole_process) override;
  // VM exits of this context's vCPU so far (each return of its KVM_RUN),
  // for tests and benchmarks: a vDSO clock read makes none.
  uint64_t exits() const { return exits_; }
  // Posts after which the stub thread slept for the answer (it spun in
  // vain, or was told not to spin): each cost a FUTEX_WAKE here and a
  // wakeup there. For tests and benchmarks.
  uint64_t stub_sleeps() const { return stub_sleeps_; }
  // The vCPU this thread ran on last, or was made with (-1: none yet), for
  // tests: the thread's own while the VM has no more vCPUs than threads.
  int last_vcpu() const { return vcpu_; }

  // Has this context's stub thread make host syscall `nr` (raw result).
  long StubCall(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                long a5 = 0);
  // The stub's address of `off` bytes into this slot's argument area, after
  // copying `len` bytes there.
  uint64_t PutArgs(const void* data, size_t len, size_t off = 0);
  void GetArgs(void* data, size_t len, size_t off = 0) const;

 protected:
  // Guest code runs in a vCPU, where the host's rseq can neither see nor
  // move it: rseq(2) is ENOSYS here (glibc then runs without it).
  // getcpu(2) answers with the sentry thread's CPU, as before (the stub's
  // filter has no getcpu; the vCPU's own CPU is the stub thread's).
  // AtomicUpdate32 goes to the stub, which maps guest memory.
  long ThreadSyscall(long nr, const long (&args)[6]) override;

 private:
  KvmContext(std::shared_ptr<KvmAddressSpace> as, pid_t tid, int slot);
  // kvm_vcpus.cc (VcpuPool's rules). HoldVcpu gives this thread a vCPU to
  // run on (vcpu_), with this thread's FP state in it; ReleaseVcpu lets
  // others have it.
  absl::Status HoldVcpu() ABSL_LOCKS_EXCLUDED(pool_.mu);
  void ReleaseVcpu() ABSL_LOCKS_EXCLUDED(pool_.mu);
  // Waits in line for a free vCPU and holds it: its id, or an error when
  // none can ever run.
  absl::StatusOr<int> AwaitVcpuLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  // A free vCPU for this thread (-1: none), its id taken if it is new.
  int PickVcpuLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  // Makes the new vCPU this thread holds (vcpu_): fd, kvm_run, CPUID,
  // registers. One whose making fails is marked broken and let go.
  absl::Status MakeHeldVcpu() ABSL_LOCKS_EXCLUDED(pool_.mu);
  absl::Status SetUpVcpu(int v);
  // Moves FP states so that the held vCPU holds this thread's.
  absl::Status TakeFp() ABSL_LOCKS_EXCLUDED(pool_.mu);
  // Whether this thread's FP state may be read, written or moved by this
  // thread: it is in no vCPU that another thread holds (and moves it out).
  bool FpReachable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  void AwaitFpReachableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  // Waits until FpReachable; then if this thread's state is in a vCPU,
  // holds that vCPU (ReleaseFpVcpuLocked gives it back) and says which.
  int HoldFpVcpuLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  void ReleaseFpVcpuLocked(int v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_.mu);
  // KVM_GET_XSAVE or KVM_SET_XSAVE (`req`) of vCPU `v`, which this thread
  // holds, from or into `owner`'s XSAVE buffer (made by this thread's stub
  // thread: any thread of the stub may use any vCPU).
  bool Xsave(unsigned long req, int v, const KvmContext& owner);
  VcpuPool::Vcpu& held() const { return pool_.vcpus[vcpu_]; }
  CommPage* comm() const { return as_->comm(slot_); }
  kvm_run* mirror() const;
  bool Post(uint32_t state);
  // Before an answer: how long the stub waited for it tunes how long it
  // spins for the next one (systrap_handoff.h's SpinPolicy).
  void TuneStubSpin(CommPage* c);
  bool WaitEvent();
  bool Alive() const;
  Stop Dead(const char* why);
  // Run() without the retries: `again` when a fault was mended in the
  // platform (SIGBUS, below) and the guest should run again as it is.
  Stop RunOnce(Registers& regs, bool* again);
  // Whether a mend of the fault of instruction `rip` at `addr` (0: an
  // EFAULT from KVM_RUN) may be tried: not if the last one was the same
  // (it made no progress).
  bool FixedUp(uint64_t rip, uint64_t addr);

  std::shared_ptr<KvmAddressSpace> as_;
  VcpuPool& pool_;  // as_->vcpus()
  const pid_t tid_;
  const int slot_;
  const pid_t owner_;
  bool dead_ = false;
  uint64_t exits_ = 0;
  uint64_t stub_sleeps_ = 0;
  systrap::SpinPolicy stub_spin_;
  uint64_t stub_budget_ = 0;  // the spin the stub was given for its current wait
  // The vCPU this thread holds while it runs, and ran on last otherwise
  // (-1: none yet). This thread's own.
  int vcpu_ = -1;
  // Where this thread's FP state is: in vCPU fp_vcpu_ (>= 0; that vCPU's
  // Claim::fp_owner is this thread), or in its slot's XSAVE buffer if
  // fp_in_buffer_, or nowhere yet (a new thread's, until the task sets it).
  // The buffer is written by the thread that moves the state there, and
  // otherwise by this thread only while the state is in no vCPU.
  int fp_vcpu_ ABSL_GUARDED_BY(pool_.mu) = -1;
  bool fp_in_buffer_ ABSL_GUARDED_BY(pool_.mu) = false;
  struct Fixup {
    uint64_t rip = 0, addr = ~uint64_t{0};
  };
  Fixup fixup_;  // the last mend within this Run()
};

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_ADDRESS_SPACE_H_
