// SystrapAddressSpace and SystrapContext: see systrap_platform.h.
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_ADDRESS_SPACE_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_ADDRESS_SPACE_H_

#include <linux/filter.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "platform/host_affinity.h"
#include "platform/platform.h"
#include "platform/stub/stub_address_space.h"
#include "platform/stub/context_registry.h"
#include "platform/stub/injector.h"
#include "platform/stub/slot_registry.h"
#include "platform/systrap/site_table.h"
#include "platform/systrap/systrap_handoff.h"
#include "platform/systrap/systrap_layout.h"

namespace seedvisor::platform::systrap {

class SystrapContext;

using stub::Injector;
using stub::StubLayout;

class SystrapAddressSpace : public stub::StubAddressSpace {
 public:
  // Sets up the stub `pid` (parked, not traced): maps a fresh shared region
  // and, if `filter` is given (a stub fresh from the zygote), installs the
  // signal handlers and the filter. A forked stub inherits those.
  static absl::StatusOr<std::shared_ptr<SystrapAddressSpace>> Create(
      pid_t pid, const StubLayout& layout, const std::vector<sock_filter>* filter);
  ~SystrapAddressSpace() override;

  UserAddr UserTop() const override { return UserAddr(kRegionBase); }

  // The sentry's view of slot `i` of the shared region.
  uint8_t* slot(int i) const { return region_ + static_cast<uint64_t>(i) * kSlotSize; }
  static uint64_t StubSlot(int i) { return kRegionBase + static_cast<uint64_t>(i) * kSlotSize; }
  // Thread slots (1 .. kSlots - 1; slot 0 is the setup area), and which
  // context each sentry host thread drives.
  stub::SlotRegistry& slots() { return slots_; }
  stub::ContextRegistry<SystrapContext>& contexts() { return contexts_; }

  // Sandbox fork: unmaps our view of the seed's region (shared with the
  // seed's stub) and closes our fds, killing nothing.
  void AbandonInForkChild() override;

  // ---- Syscall-site patching (PATCHING.md; systrap_patching.cc) ----
  //
  // Off unless the platform turns it on for a new address space; a fork
  // (guest or sandbox) inherits the parent's state with CopySitesFrom.
  void EnablePatching() { patching_ = true; }
  bool patching() const { return patching_.load(std::memory_order_relaxed); }
  // Whether a site was ever patched here: its slot may hold a thread even
  // after the site is gone (SiteTable::ById), so events are translated.
  bool slots_made() const { return slots_made_.load(std::memory_order_relaxed); }
  // Unpatches every site and patches no more (a guest tracer is here).
  void RestoreGuestText() override;
  // A guest syscall `nr` trapped (SIGSYS) and returns to `return_rip`:
  // counts it, and patches its site once hot. `ctx` is the trapping
  // thread's context, waiting in its handler: it makes the stub's calls.
  void NoteTrappedSyscall(SystrapContext& ctx, uint64_t return_rip, uint64_t nr);
  // A seed preparing a sandbox fork (its guest parked; `ctx` a parked
  // thread's): patches every site its guest trapped at but not yet twice.
  // A fork copies the trap counts, so such a site turned hot at the fork's
  // first trap there, and every fork patched it itself on its guest's way
  // (issue 9: ~0.3 ms for python's write(2) before the fork's first byte:
  // the stub's maps read and four StubCall round trips). Patched here
  // once, every later copy of the stub has it. Returns how many it patched.
  size_t PatchCountedSites(SystrapContext& ctx);
  // The listed site `id` (a fast event's), if any.
  std::optional<SiteTable::Site> SiteById(uint32_t id);
  // TranslateSiteEvent against this address space's sites.
  SiteAction TranslateSite(SiteEventKind kind, uint64_t rip, uint64_t rax);
  // The sentry's record of the patched text and the table, which a stub
  // fork of this address space took along with the host fork.
  struct ForkedSites {
    bool patching = false;
    bool slots_made = false;
    std::optional<SiteTable> sites;
    bool table_mapped = false;
    bool table_lost = false;
  };
  // Taken in the same hold of site_mutex() as the stub's clone.
  ForkedSites SitesForFork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);
  // A stub fork's address space takes its parent's record.
  void AdoptSites(ForkedSites forked);
  // Holds the site table still while the stub forks (sites patched
  // during the fork would be in one copy only).
  absl::Mutex& site_mutex() { return site_mu_; }

  // The mapping calls drop the sites in their range first (unpatching
  // those whose bytes stay, so that the guest sees its own text again),
  // and a range over the table drops every site and patching for good.
  Status Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
             uint64_t offset) override;
  Status MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                          uint64_t offset) override;
  Status Unmap(UserAddr addr, uint64_t len) override;
  Status Protect(UserAddr addr, uint64_t len, int prot) override;
  Status Advise(UserAddr addr, uint64_t len, int advice) override;
  Status Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
               uint64_t new_len) override;

 private:
  SystrapAddressSpace(pid_t pid, const StubLayout& layout);
  absl::Status Setup(const std::vector<sock_filter>* filter);
  // Anonymous memory calls are made by the caller's stub thread itself (the
  // stub filter lets exactly these through); file mappings by injection.
  long MemoryCall(long nr, const long (&args)[6]) override;
  std::unique_ptr<stub::StubSyscalls> FileCalls() override;

  uint8_t* region_ = nullptr;
  stub::SlotRegistry slots_{1, kSlots};
  stub::ContextRegistry<SystrapContext> contexts_;

  // Patching (systrap_patching.cc).
  // Forgets the sites overlapping [begin, end); with `unpatch`, first
  // writes their original bytes back.
  void DropSites(uint64_t begin, uint64_t end, bool unpatch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);
  // Writes the original bytes back over these (removed) sites' jumps.
  void Unpatch(const std::vector<SiteTable::Site>& sites) ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);
  // Whether the mapping [begin, end) is the guest's own text in a
  // private, executable, never-writable mapping (the stub's maps).
  bool PatchableMapping(uint64_t begin, uint64_t end) const;
  // Patches the site that returns to `return_rip` if its bytes are
  // `mov $nr, %eax; syscall` in a patchable mapping; else rejects it.
  void PatchSite(SystrapContext& ctx, uint64_t return_rip, uint32_t nr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);
  // Maps the trampoline table in the stub (the calling thread `ctx`).
  bool MapTable(SystrapContext& ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);
  // Rewrites one site, serializing the stub's CPUs between steps.
  bool Rewrite(SystrapContext* ctx, uint64_t addr, const SiteBytes& from, const SiteBytes& to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(site_mu_);

  // Cleared, never set again, when a guest tracer arrives; read unlocked
  // by every trap (a stale true only costs a NoteTrappedSyscall that
  // finds table_lost_ under the lock).
  std::atomic<bool> patching_ = false;
  std::atomic<bool> slots_made_ = false;
  absl::Mutex site_mu_;
  std::optional<SiteTable> sites_ ABSL_GUARDED_BY(site_mu_);
  bool table_mapped_ ABSL_GUARDED_BY(site_mu_) = false;
  // The table's range was taken, or the guest mapped over it: no more
  // patching in this address space.
  bool table_lost_ ABSL_GUARDED_BY(site_mu_) = false;
  bool membarrier_registered_ ABSL_GUARDED_BY(site_mu_) = false;
};

class SystrapContext : public Context, public HostAffinity {
 public:
  // Seizes the parked stub thread `tid`, gives it a slot and lets it run into
  // its first event (the `enter` gadget). Call on the owning host thread.
  static absl::StatusOr<std::unique_ptr<SystrapContext>> Create(
      std::shared_ptr<SystrapAddressSpace> as, pid_t tid);
  ~SystrapContext() override;

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

  // The stub thread makes it in its handler, as the memory calls.
  long SetHostAffinity(const cpu_set_t& set) override {
    return as_->SetThreadAffinity(set, [this](long nr, const long (&a)[6]) {
      return StubCall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    });
  }

  pid_t tid() const { return tid_; }
  // Has this context's stub thread, waiting in its handler, make memory
  // syscall `nr` itself (see CommPage). Returns the raw result.
  long StubCall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
  // A host fork of this thread's stub (clone(CLONE_PARENT | `flags`) at
  // the fork gadget, injected), without this thread's rseq registration in
  // the child (Context::Rseq): the clone of stub::ForkTied. The child's
  // pid, or -errno.
  long CloneStub(long flags);

 protected:
  // rseq(2) goes the way of the memory calls: the stub thread makes it;
  // so does AtomicUpdate32 (its number is the stub's atomic_call).
  long ThreadSyscall(long nr, const long (&a)[6]) override {
    static_assert(kAtomicUpdate32Call == stub::kStubAtomicUpdate32Call);
    return StubCall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }

 private:
  SystrapContext(std::shared_ptr<SystrapAddressSpace> as, pid_t tid, int slot);
  CommPage* comm() const { return reinterpret_cast<CommPage*>(as_->slot(slot_)); }
  // Waits until the stub posts an event; false if the thread is gone. With
  // `guest` (the thread runs guest code since the reply at TSC `since`),
  // also false once the stub has ignored an Interrupt() for kWedgedNs:
  // then the stub process is killed. `stub_woken`: our reply had to wake
  // the stub (PeerWokenBudget, PeerWokenWaitCounts).
  bool WaitEvent(bool guest, uint64_t since, bool stub_woken);
  // Whether the stub has ignored a kick too long (and was killed for it).
  bool Wedged();
  // WaitEvent slept until TSC `now`: learns the wakeup's cost (WakeCost).
  void NoteWakeCost(uint64_t now);
  // Checks the frame pointers of the posted event; false if they do not lie
  // in this slot's stack (a guest that scribbled on the region).
  bool LoadFrame();
  bool Alive() const;
  // The current frame's fpstate (after LoadFrame, or the fast frame's
  // XSAVE image): sets *fp and the components it holds, returns its size.
  size_t FrameFp(uint8_t** fp, uint64_t* features) const;
  // Writes `regs` into the current frame (signal or fast), replies and
  // waits for the next event, then loads it; false if the thread is gone.
  // With `slow`, a fast event leaves through a signal frame (kStubFastSlow).
  bool Resume(const Registers& regs, bool slow);
  // What the current event means for the guest (`regs` holds the frame's
  // registers); false: an event of the platform's own (a site being
  // rewritten), resume the guest with `regs` and wait again.
  bool Classify(Registers& regs, Stop& stop);
  FastHeader* fast_header() const {
    return reinterpret_cast<FastHeader*>(as_->slot(slot_) + kFastHeader);
  }

  std::shared_ptr<SystrapAddressSpace> as_;
  const pid_t tid_;
  const int slot_;
  const pid_t owner_;
  bool dead_ = false;
  // Offsets in the slot of the current frame's pieces (valid after LoadFrame).
  uint64_t info_off_ = 0, uc_off_ = 0, fp_off_ = 0;
  uint32_t signo_ = 0;
  // Syscall-site patching (PATCHING.md): whether this thread takes fast
  // events (its address space patches, and the CPU's XSAVE image fits the
  // slot), whether the current event is one, and whether the sentry wrote
  // its FP state (the stub restores it only then).
  bool fast_ok_ = false;
  bool fast_ = false;
  bool fp_dirty_ = false;
  uint64_t xsave_size_ = 0, xfeatures_ = 0;
  // When the oldest unanswered Interrupt() was sent (CLOCK_MONOTONIC ns),
  // or 0. A healthy stub answers a kick within microseconds: SIGURG is
  // never blocked in guest mode, and every guest syscall traps.
  std::atomic<int64_t> kick_ns_{0};
  static constexpr int64_t kWedgedNs = 2'000'000'000;
  // How long WaitEvent spins for the guest's next event, and how long the
  // stub spins for our reply (told in CommPage::stub_spin; stub_budget_ is
  // what it was told for the wait in progress).
  SpinPolicy sentry_spin_{MaxSpinTicks()};
  SpinPolicy stub_spin_{MaxSpinTicks()};
  uint64_t stub_budget_ = 0;
  // The current event was found after a futex sleep: the stub's wait for
  // our reply includes our wakeup, not only the handling.
  bool sentry_slept_ = false;
  // What those sleeps cost; it sets both policies' longest spin.
  WakeCost wake_cost_;
};

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SYSTRAP_ADDRESS_SPACE_H_
