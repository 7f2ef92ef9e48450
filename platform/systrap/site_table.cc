#include "platform/systrap/site_table.h"

#include <limits>

namespace seedvisor::platform::systrap {
namespace {

constexpr uint32_t kRejected = std::numeric_limits<uint32_t>::max();
// Bases whose every slot has a nonzero second address byte (EncodeJump):
// page-aligned, from kTableLow + 0x1000 to the last that fits.
constexpr uint32_t kFirstBase = kTableLow + 0x1000;
constexpr uint32_t kLastBase = kTableHigh - SiteTable::kTableSize;
static_assert(kFirstBase <= kLastBase);

}  // namespace

uint32_t SiteTable::ChooseTableBase(uint64_t random) {
  const uint64_t choices = (kLastBase - kFirstBase) / 0x1000 + 1;
  return kFirstBase + static_cast<uint32_t>(random % choices) * 0x1000;
}

SiteTable::SiteTable(uint32_t base) : base_(base) {}

SiteTable::TrapVerdict SiteTable::NoteTrap(uint64_t return_rip, uint32_t nr) {
  if (return_rip < kSiteSize || Containing(return_rip - kSiteSize) != nullptr) return kIgnore;
  auto it = counts_.find(return_rip);
  if (it == counts_.end()) {
    if (counts_.size() >= kMaxCounted) return kIgnore;
    it = counts_.emplace(return_rip, Count{0, nr}).first;
  }
  Count& c = it->second;
  if (c.traps == kRejected) return kIgnore;
  if (c.nr != nr) {
    c.traps = kRejected;
    return kIgnore;
  }
  ++c.traps;
  return c.traps == kHotTraps ? kCheck : kIgnore;
}

void SiteTable::Reject(uint64_t return_rip) {
  auto it = counts_.find(return_rip);
  if (it != counts_.end()) it->second.traps = kRejected;
}

std::vector<SiteTable::Counted> SiteTable::CountedRips() const {
  std::vector<Counted> out;
  for (const auto& [rip, c] : counts_) {
    if (c.traps > 0 && c.traps != kRejected && Containing(rip - kSiteSize) == nullptr) {
      out.push_back({rip, c.nr});
    }
  }
  return out;
}

void SiteTable::ClearCounts(uint64_t begin, uint64_t end) {
  counts_.erase(counts_.upper_bound(begin), counts_.lower_bound(end + kSiteSize));
}

std::optional<SiteTable::Site> SiteTable::Add(uint64_t addr, uint32_t nr) {
  if (next_id_ >= static_cast<uint32_t>(kMaxSites)) return std::nullopt;
  // Overlapping an existing site (the same one, or bytes shared with it).
  auto next = by_addr_.lower_bound(addr);
  if (next != by_addr_.end() && next->first < addr + kSiteSize) return std::nullopt;
  if (next != by_addr_.begin() && std::prev(next)->first + kSiteSize > addr) return std::nullopt;
  const uint32_t id = next_id_++;
  Site s{addr, nr, id, base_ + kHeaderSize + id * kSlotBytes};
  by_addr_.emplace(addr, id);
  by_id_.push_back(s);
  counts_.erase(addr + kSiteSize);
  return s;
}

const SiteTable::Site* SiteTable::ById(uint32_t id) const {
  return id < by_id_.size() ? &by_id_[id] : nullptr;
}

const SiteTable::Site* SiteTable::Containing(uint64_t rip) const {
  auto it = by_addr_.upper_bound(rip);
  if (it == by_addr_.begin()) return nullptr;
  --it;
  return rip < it->first + kSiteSize ? &by_id_[it->second] : nullptr;
}

const SiteTable::Site* SiteTable::RemovedContaining(uint64_t rip) const {
  if (Containing(rip) != nullptr) return nullptr;
  for (auto it = by_id_.rbegin(); it != by_id_.rend(); ++it) {
    if (rip >= it->addr && rip < it->addr + kSiteSize) return &*it;
  }
  return nullptr;
}

const SiteTable::Site* SiteTable::BySlotRip(uint64_t rip, uint32_t* offset) const {
  if (rip < uint64_t{base_} + kHeaderSize || rip >= uint64_t{base_} + kTableSize) return nullptr;
  const uint64_t rel = rip - base_ - kHeaderSize;
  *offset = static_cast<uint32_t>(rel % kSlotBytes);
  return ById(static_cast<uint32_t>(rel / kSlotBytes));
}

std::vector<SiteTable::Site> SiteTable::Remove(uint64_t begin, uint64_t end) {
  std::vector<Site> dropped;
  if (begin >= end) return dropped;
  // Sites [addr, addr + 7) with addr < end and addr + 7 > begin.
  auto it = by_addr_.lower_bound(begin >= kSiteSize - 1 ? begin - (kSiteSize - 1) : 0);
  while (it != by_addr_.end() && it->first < end) {
    if (it->first + kSiteSize > begin) {
      dropped.push_back(by_id_[it->second]);
      it = by_addr_.erase(it);
    } else {
      ++it;
    }
  }
  // Counted return rips r stand for the bytes [r - 7, r).
  ClearCounts(begin, end);
  return dropped;
}

SiteAction TranslateIllegalAtSite(const SiteTable::Site& s, uint64_t rip, uint64_t rax) {
  switch (IllegalAtSite(s.addr, rip, rax).kind) {
    case IllegalFixup::kNotOurs:
      return {};
    case IllegalFixup::kRetry:
      return {SiteAction::kResumeAt, s.addr, 0, false};
    case IllegalFixup::kSyscall:
      return {SiteAction::kSyscall, s.addr + kSiteSize, rax, false};
  }
  return {};
}

SiteAction TranslateSiteEvent(const SiteTable& table, SiteEventKind kind, uint64_t rip,
                              uint64_t rax) {
  auto syscall = [](const SiteTable::Site& s, uint64_t nr) {
    return SiteAction{SiteAction::kSyscall, s.addr + kSiteSize, nr, false};
  };
  // About to run the site's syscall: as after the old `mov`, at the old
  // `syscall` (which resumes through the SIGILL rule at site + 5).
  auto before_syscall = [](const SiteTable::Site& s) {
    return SiteAction{SiteAction::kResumeAt, s.addr + 5, s.nr, true};
  };
  switch (kind) {
    case SiteEventKind::kIllegal: {
      const SiteTable::Site* s = table.Containing(rip);
      return s == nullptr ? SiteAction{} : TranslateIllegalAtSite(*s, rip, rax);
    }
    case SiteEventKind::kSeccompTrap: {
      // The fast entry's fallback (GS is not a slot): rax is the site's id.
      // Any other rax is a guest that jumped there itself: its own syscall.
      if (rip != table.fallback_return_rip() || rax > UINT32_MAX) return {};
      const SiteTable::Site* s = table.ById(static_cast<uint32_t>(rax));
      return s == nullptr ? SiteAction{} : syscall(*s, s->nr);
    }
    case SiteEventKind::kInterrupt: {
      if (rip == table.fallback_return_rip() - 2 && rax <= UINT32_MAX) {
        // At the fallback `syscall`, after the fast entry's check used rcx
        // and r11: take it as the syscall begun (which `syscall` makes of
        // rcx and r11 anyway), the signal then comes at its exit.
        const SiteTable::Site* s = table.ById(static_cast<uint32_t>(rax));
        return s == nullptr ? SiteAction{} : syscall(*s, s->nr);
      }
      uint32_t off = 0;
      const SiteTable::Site* s = table.BySlotRip(rip, &off);
      if (s == nullptr) return {};
      if (off == kSlotMovOffset) return {SiteAction::kResumeAt, s->addr, 0, false};
      if (off == kSlotJmpOffset) return before_syscall(*s);
      return {};
    }
    case SiteEventKind::kSingleStep: {
      // The guest stepped the jump: one step runs `mov` and `syscall`
      // together (the documented difference); the trap is reported after.
      uint32_t off = 0;
      const SiteTable::Site* s = table.BySlotRip(rip, &off);
      return s != nullptr && off == kSlotMovOffset ? syscall(*s, s->nr) : SiteAction{};
    }
  }
  return {};
}

}  // namespace seedvisor::platform::systrap
