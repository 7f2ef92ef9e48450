// SystrapAddressSpace's syscall-site patching (PATCHING.md): deciding
// which trapped sites to patch, writing the table and the sites through
// the stub's /proc/PID/mem (FOLL_FORCE: guest text never becomes writable
// to the guest), and keeping the sentry's record true across the guest's
// own mapping changes.
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "platform/systrap/syscall_patch.h"
#include "platform/systrap/systrap_address_space.h"

namespace seedvisor::platform::systrap {
namespace {

SiteBytes OriginalBytes(uint32_t nr) {
  SiteBytes b{0xb8, 0, 0, 0, 0, 0x0f, 0x05};
  std::memcpy(&b[1], &nr, 4);
  return b;
}

bool Overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end) {
  return a < b_end && b < a_end;
}

}  // namespace

bool SystrapAddressSpace::PatchableMapping(uint64_t begin, uint64_t end) const {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/maps", proc_.pid());
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return false;
  bool ok = false;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    uint64_t lo, hi;
    char perms[8] = {};
    if (std::sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &lo, &hi, perms) != 3) continue;
    if (begin < lo || begin >= hi) continue;
    // Readable, never writable (a JIT's or self-modifying code's pages
    // are not ours to change), executable, private (a shared text page
    // would carry the patch into the file).
    ok = end <= hi && perms[0] == 'r' && perms[1] == '-' && perms[2] == 'x' && perms[3] == 'p';
    break;
  }
  std::fclose(f);
  return ok;
}

bool SystrapAddressSpace::MapTable(SystrapContext& ctx) {
  if (table_mapped_) return true;
  const uint64_t base = sites_->base();
  // MAP_FIXED_NOREPLACE: if the guest has something there, the address
  // space is simply never patched.
  const long r = ctx.StubCall(SYS_mmap, static_cast<long>(base), SiteTable::kTableSize,
                              PROT_READ | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (r != static_cast<long>(base)) {
    if (r > 0) ctx.StubCall(SYS_munmap, r, SiteTable::kTableSize, 0, 0, 0, 0);
    return false;
  }
  const uint64_t entry = layout_.entry + kStubFastEntry;
  if (!WriteForce(UserAddr(sites_->entry_qword()), &entry, sizeof(entry)).ok()) {
    ctx.StubCall(SYS_munmap, static_cast<long>(base), SiteTable::kTableSize, 0, 0, 0, 0);
    return false;
  }
  table_mapped_ = true;
  return true;
}

bool SystrapAddressSpace::Rewrite(SystrapContext* ctx, uint64_t addr, const SiteBytes& from,
                                  const SiteBytes& to) {
  // Between steps every CPU that runs this address space serializes
  // (membarrier SYNC_CORE, made by a thread of the stub: it acts on the
  // caller's mm), so no CPU executes a mix of two steps' bytes.
  if (ctx != nullptr && !membarrier_registered_) {
    membarrier_registered_ =
        ctx->StubCall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0,
                      0, 0) == 0;
  }
  for (const RewriteStep& step : PlanRewrite(from, to)) {
    for (const ByteWrite& w : step) {
      if (!WriteForce(UserAddr(addr + w.offset), &w.value, 1).ok()) return false;
    }
    if (ctx != nullptr && membarrier_registered_) {
      ctx->StubCall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0, 0, 0, 0);
    }
  }
  return true;
}

void SystrapAddressSpace::NoteTrappedSyscall(SystrapContext& ctx, uint64_t return_rip,
                                             uint64_t nr) {
  if (!patching_ || nr > UINT32_MAX || return_rip < kSiteSize) return;
  absl::MutexLock l(&site_mu_);
  if (table_lost_) return;
  if (!sites_.has_value()) {
    uint64_t random = 0;
    if (getrandom(&random, sizeof(random), 0) != sizeof(random)) return;
    sites_.emplace(SiteTable::ChooseTableBase(random));
  }
  if (sites_->NoteTrap(return_rip, static_cast<uint32_t>(nr)) != SiteTable::kCheck) return;
  PatchSite(ctx, return_rip, static_cast<uint32_t>(nr));
}

size_t SystrapAddressSpace::PatchCountedSites(SystrapContext& ctx) {
  if (!patching_) return 0;
  absl::MutexLock l(&site_mu_);
  if (table_lost_ || !sites_.has_value()) return 0;
  size_t patched = 0;
  for (const SiteTable::Counted& c : sites_->CountedRips()) {
    if (table_lost_) break;
    // The number that trapped there, as for a hot trap: PatchSite patches
    // only a `mov` of that very number (never the site's own immediate,
    // which would always match; review of c420951).
    const size_t before = sites_->size();
    PatchSite(ctx, c.return_rip, c.nr);
    if (sites_->size() > before) {
      ++patched;
    } else {
      sites_->Reject(c.return_rip);  // not tried again for every spare
    }
  }
  return patched;
}

void SystrapAddressSpace::PatchSite(SystrapContext& ctx, uint64_t return_rip, uint32_t nr) {
  const uint64_t site = return_rip - kSiteSize;
  SiteBytes bytes;
  Result<size_t> n = ReadForce(UserAddr(site), bytes.data(), bytes.size());
  if (!n.ok() || *n != bytes.size() || !IsPatchableSite(bytes, nr) ||
      !PatchableMapping(site, return_rip)) {
    sites_->Reject(return_rip);
    return;
  }
  if (!MapTable(ctx)) {
    table_lost_ = true;
    return;
  }
  std::optional<SiteTable::Site> s = sites_->Add(site, nr);
  if (!s.has_value()) return;
  slots_made_ = true;
  auto slot = EncodeSlot(s->slot, s->id, sites_->entry_qword());
  auto jump = EncodeJump(s->slot);
  if (!slot.has_value() || !jump.has_value() ||
      !WriteForce(UserAddr(s->slot), slot->data(), slot->size()).ok() ||
      !Rewrite(&ctx, site, bytes, *jump)) {
    // Put back whatever got written; the site keeps trapping. (No jump
    // encoded: nothing was written, and *jump would be undefined.)
    if (jump.has_value()) Rewrite(&ctx, site, *jump, bytes);
    sites_->Remove(site, site + kSiteSize);
    sites_->Reject(return_rip);
  }
}

std::optional<SiteTable::Site> SystrapAddressSpace::SiteById(uint32_t id) {
  absl::MutexLock l(&site_mu_);
  if (!sites_.has_value()) return std::nullopt;
  const SiteTable::Site* s = sites_->ById(id);
  if (s == nullptr) return std::nullopt;
  return *s;
}

SiteAction SystrapAddressSpace::TranslateSite(SiteEventKind kind, uint64_t rip, uint64_t rax) {
  absl::MutexLock l(&site_mu_);
  if (!sites_.has_value()) return {};
  SiteAction a = TranslateSiteEvent(*sites_, kind, rip, rax);
  if (a.kind != SiteAction::kNone || kind != SiteEventKind::kIllegal) return a;
  // A thread that ran into a site's fence while the site was being put
  // back (unpatched, or a failed patch undone) gets here after the lock:
  // the site is gone from the list. If its bytes are the original `mov;
  // syscall` now (which cannot raise SIGILL), the fence was ours: run the
  // site as it is. Anything else there is the guest's own.
  const SiteTable::Site* s = sites_->RemovedContaining(rip);
  if (s == nullptr) return {};
  SiteBytes now{};
  Result<size_t> n = ReadForce(UserAddr(s->addr), now.data(), now.size());
  if (!n.ok() || *n != now.size() || now != OriginalBytes(s->nr)) return {};
  return TranslateIllegalAtSite(*s, rip, rax);
}

SystrapAddressSpace::ForkedSites SystrapAddressSpace::SitesForFork() const {
  return ForkedSites{.patching = patching(),
                     .slots_made = slots_made(),
                     .sites = sites_,
                     .table_mapped = table_mapped_,
                     .table_lost = table_lost_};
}

void SystrapAddressSpace::AdoptSites(ForkedSites forked) {
  patching_ = forked.patching;
  slots_made_ = forked.slots_made;
  absl::MutexLock l(&site_mu_);
  sites_ = std::move(forked.sites);
  table_mapped_ = forked.table_mapped;
  table_lost_ = forked.table_lost;
}

void SystrapAddressSpace::Unpatch(const std::vector<SiteTable::Site>& sites) {
  SystrapContext* ctx = contexts_.Caller();
  for (const SiteTable::Site& s : sites) {
    auto jump = EncodeJump(s.slot);
    if (jump.has_value()) Rewrite(ctx, s.addr, *jump, OriginalBytes(s.nr));
  }
}

void SystrapAddressSpace::RestoreGuestText() {
  if (!patching()) return;
  absl::MutexLock l(&site_mu_);
  patching_ = false;
  if (!sites_.has_value()) return;
  // The slots stay: a thread already in one finishes its syscall.
  Unpatch(sites_->Remove(0, UINT64_MAX));
  table_lost_ = true;
}

void SystrapAddressSpace::DropSites(uint64_t begin, uint64_t end, bool unpatch) {
  if (!sites_.has_value()) return;
  if (table_mapped_ && Overlaps(begin, end, sites_->base(), sites_->base() + SiteTable::kTableSize)) {
    // The guest maps over the table (it cannot see it: the sentry's VMA
    // map does not list it): every site goes back to its own bytes, the
    // slots are the guest's memory now, and this address space is patched
    // no more.
    Unpatch(sites_->Remove(0, UINT64_MAX));
    sites_.reset();
    table_lost_ = true;
    table_mapped_ = false;
    return;
  }
  std::vector<SiteTable::Site> dropped = sites_->Remove(begin, end);
  if (unpatch) Unpatch(dropped);
}

// Each holds the site table across the call, so that no site is patched
// in the range between the drop and the change.
Status SystrapAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                                uint64_t offset) {
  if (!patching_) return StubAddressSpace::Map(addr, len, prot, flags, host_fd, offset);
  absl::MutexLock l(&site_mu_);
  DropSites(addr.value(), addr.value() + len, /*unpatch=*/false);  // new contents
  return StubAddressSpace::Map(addr, len, prot, flags, host_fd, offset);
}

Status SystrapAddressSpace::MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags,
                                             int host_fd, uint64_t offset) {
  if (!patching_) return StubAddressSpace::MapImmutableFile(addr, len, prot, flags, host_fd, offset);
  absl::MutexLock l(&site_mu_);
  DropSites(addr.value(), addr.value() + len, /*unpatch=*/false);
  return StubAddressSpace::MapImmutableFile(addr, len, prot, flags, host_fd, offset);
}

Status SystrapAddressSpace::Unmap(UserAddr addr, uint64_t len) {
  if (!patching_) return StubAddressSpace::Unmap(addr, len);
  absl::MutexLock l(&site_mu_);
  DropSites(addr.value(), addr.value() + len, /*unpatch=*/false);
  return StubAddressSpace::Unmap(addr, len);
}

Status SystrapAddressSpace::Protect(UserAddr addr, uint64_t len, int prot) {
  if (!patching_) return StubAddressSpace::Protect(addr, len, prot);
  absl::MutexLock l(&site_mu_);
  // Writable (the guest may read and change its text: it then sees its
  // own bytes) or no longer executable: the sites go back to the original.
  if ((prot & PROT_WRITE) || !(prot & PROT_EXEC)) {
    DropSites(addr.value(), addr.value() + len, /*unpatch=*/true);
  } else if (sites_.has_value()) {
    // Sites rejected while the text was writable may qualify now.
    sites_->ClearCounts(addr.value(), addr.value() + len);
  }
  return StubAddressSpace::Protect(addr, len, prot);
}

Status SystrapAddressSpace::Advise(UserAddr addr, uint64_t len, int advice) {
  if (!patching_ || !(advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
                      advice == MADV_DONTFORK || advice == MADV_WIPEONFORK)) {
    return StubAddressSpace::Advise(addr, len, advice);
  }
  // The page may revert to the file's bytes (or be missing in a fork).
  absl::MutexLock l(&site_mu_);
  DropSites(addr.value(), addr.value() + len, /*unpatch=*/true);
  return StubAddressSpace::Advise(addr, len, advice);
}

Status SystrapAddressSpace::Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                                  uint64_t new_len) {
  if (!patching_) return StubAddressSpace::Remap(old_addr, old_len, new_addr, new_len);
  // A moved site would return to its old address (the table keeps it).
  absl::MutexLock l(&site_mu_);
  DropSites(old_addr.value(), old_addr.value() + old_len, /*unpatch=*/true);
  DropSites(new_addr.value(), new_addr.value() + new_len, /*unpatch=*/false);
  return StubAddressSpace::Remap(old_addr, old_len, new_addr, new_len);
}

}  // namespace seedvisor::platform::systrap
