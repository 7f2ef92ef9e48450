// The sentry's record of one address space's patched syscall sites
// (PATCHING.md): which sites are patched, which slot of the trampoline
// table each uses, and which trapping sites are hot enough to patch. The
// authoritative copy lives here, in sentry memory; the guest-readable
// table only holds code. Copied with the address space on fork.
//
//   SiteTable t(base);                       // base: ChooseTableBase()
//   if (t.NoteTrap(rip) == SiteTable::kCheck) {
//     read the 7 bytes before rip; if IsPatchableSite(...)
//       if (auto s = t.Add(rip - kSiteSize, nr)) write EncodeSlot(s->slot, s->id, ...), then the
//       jump
//     else t.Reject(rip);
//   }
//   munmap/mprotect(+W)/...: for (Site s : t.Remove(begin, end)) unpatch s if its bytes stay
//
// Not thread-safe: the address space's lock guards it.
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_SITE_TABLE_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_SITE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "platform/systrap/syscall_patch.h"

namespace seedvisor::platform::systrap {

class SiteTable {
 public:
  // The table's extent: a header (the fast entry's qword, the fallback
  // `syscall`), then slots of kSlotBytes.
  static constexpr uint32_t kTableSize = 0x4000;
  static constexpr uint32_t kHeaderSize = 0x100;
  static constexpr uint32_t kEntryQwordOffset = 0;  // the stub's fast entry
  static constexpr uint32_t kFallbackOffset = 8;    // `syscall; ud2`, traps
  static constexpr int kMaxSites = (kTableSize - kHeaderSize) / kSlotBytes;
  // Traps counted at most at this many distinct sites; beyond, new sites
  // are not considered (bounded memory whatever the guest does).
  static constexpr size_t kMaxCounted = 4096;
  // A site is checked on this trap.
  static constexpr uint32_t kHotTraps = 2;

  struct Site {
    uint64_t addr;  // the 7 bytes start here; the syscall returns to addr + 7
    uint32_t nr;
    uint32_t id;
    uint32_t slot;  // the slot's address in the table: base + header + id * kSlotBytes
  };

  // A table base with every slot's address valid for EncodeJump, picked
  // from the valid ones by `random` (a CSPRNG value, as gVisor does, so the
  // guest cannot guess it before it looks).
  static uint32_t ChooseTableBase(uint64_t random);
  explicit SiteTable(uint32_t base);

  uint32_t base() const { return base_; }
  uint32_t entry_qword() const { return base_ + kEntryQwordOffset; }
  uint64_t fallback_return_rip() const { return base_ + kFallbackOffset + 2; }
  bool InTable(uint64_t addr) const { return addr >= base_ && addr < base_ + kTableSize; }

  enum TrapVerdict { kIgnore, kCheck };
  // A guest syscall `nr` trapped with this return rip. A rip that traps
  // with another number than its first is rejected: its `syscall` is
  // reached by jumps with other numbers, so the bytes before it need not
  // be the `mov` of one site (PATCHING.md, "The one accepted risk").
  TrapVerdict NoteTrap(uint64_t return_rip, uint32_t nr);
  // The bytes before return_rip are not a patchable site: stop counting it.
  void Reject(uint64_t return_rip);

  // The return rips that trapped at least once and are neither rejected
  // nor a listed site's, in address order, with the number that trapped.
  struct Counted {
    uint64_t return_rip;
    uint32_t nr;
  };
  std::vector<Counted> CountedRips() const;
  // Forgets the trap counts and rejections of the return rips in
  // [begin, end + kSiteSize) (their mapping changed), keeping the sites.
  void ClearCounts(uint64_t begin, uint64_t end);

  // Takes a slot for the site at `addr`; nullopt when the table is full or
  // the site is listed already.
  std::optional<Site> Add(uint64_t addr, uint32_t nr);
  // The site that slot `id` was made for, listed or removed: a removed
  // site's slot stays as it was (never reused), and a thread that was in
  // it when the site went still runs its syscall and returns to addr + 7,
  // as a thread of the unpatched code past the `mov` would.
  const Site* ById(uint32_t id) const;
  // The listed site whose bytes contain `rip` (for a SIGILL at site or
  // site + 5); a removed site's bytes are the guest's own again.
  const Site* Containing(uint64_t rip) const;
  // The most recent removed site whose bytes contain `rip`, if no listed
  // site's do (a linear search: for the rare SIGILL only).
  const Site* RemovedContaining(uint64_t rip) const;
  // The site (listed or removed) whose slot contains `rip`, and rip's
  // offset in that slot.
  const Site* BySlotRip(uint64_t rip, uint32_t* offset) const;

  // Forgets every site and counted or rejected rip overlapping [begin, end)
  // and returns the sites dropped; their slots are not reused (a thread
  // may still run one), so the table fills up over a long life with much
  // unmapping, and then patches no more.
  std::vector<Site> Remove(uint64_t begin, uint64_t end);
  size_t size() const { return by_addr_.size(); }

 private:
  uint32_t base_;
  uint32_t next_id_ = 0;
  std::map<uint64_t, uint32_t> by_addr_;  // listed sites: address -> id
  std::vector<Site> by_id_;               // every site ever added, by id
  struct Count {
    uint32_t traps;  // kRejected: never checked again
    uint32_t nr;     // the number that trapped
  };
  std::map<uint64_t, Count> counts_;  // by return rip
};

// What the platform makes of an event that a patched site may explain
// (PATCHING.md, "Semantics, case by case"), so that the sentry and the
// guest only ever see states that the unpatched code can be in.
enum class SiteEventKind {
  kIllegal,      // SIGILL
  kSeccompTrap,  // SIGSYS from the seccomp filter (rip after the syscall)
  kInterrupt,    // the sentry's kick, or any asynchronous stop
  kSingleStep,   // a TF trap (SIGTRAP, TRAP_TRACE): rip is after the step
};
struct SiteAction {
  enum Kind {
    kNone,      // not about a site: handle the event as usual
    kSyscall,   // syscall `nr`, returning to `rip` (site + 7)
    kResumeAt,  // report and resume at `rip`; rax = `nr` if set_rax
  } kind = kNone;
  uint64_t rip = 0;
  uint64_t nr = 0;
  bool set_rax = false;
};
SiteAction TranslateSiteEvent(const SiteTable& table, SiteEventKind kind, uint64_t rip,
                              uint64_t rax);
// A SIGILL at `rip` in site `s`'s bytes (IllegalAtSite as a SiteAction).
SiteAction TranslateIllegalAtSite(const SiteTable::Site& s, uint64_t rip, uint64_t rax);

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_SITE_TABLE_H_
