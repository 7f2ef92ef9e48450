#include "sentry/mm/vma_map.h"

#include <sys/mman.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace seedvisor::sentry {

VmaMap::VmaMap(uint64_t lo, uint64_t hi) : lo_(lo), hi_(hi) { AddGap(lo_, hi_); }

bool VmaMap::RangeFree(uint64_t start, uint64_t end) const {
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin() && std::prev(it)->second.end > start) return false;
  return it == vmas_.end() || it->first >= end;
}

std::optional<uint64_t> VmaMap::HighestFree(uint64_t len, uint64_t below) const {
  if (len == 0) return std::nullopt;
  return gaps_.HighestFit(len, below);
}

void VmaMap::AddGap(uint64_t start, uint64_t end) {
  start = std::max(start, lo_);
  end = std::min(end, hi_);
  if (start < end) gaps_.Insert(start, end);
}

void VmaMap::DropGap(uint64_t start, uint64_t end) {
  start = std::max(start, lo_);
  end = std::min(end, hi_);
  if (start < end) gaps_.Erase(start);
}

void VmaMap::GapsAround(iterator it, uint64_t* before, uint64_t* after) const {
  *before = it == vmas_.begin() ? 0 : std::prev(it)->second.end;
  auto next = std::next(it);
  *after = next == vmas_.end() ? UINT64_MAX : next->first;
}

namespace {
uint64_t LockedSize(const Vma& v) { return (v.lock & Vma::kLocked) ? v.end - v.start : 0; }
}  // namespace

VmaMap::iterator VmaMap::Emplace(Vma v) {
  const uint64_t start = v.start, end = v.end;
  locked_bytes_ += LockedSize(v);
  auto it = vmas_.emplace(start, std::move(v)).first;
  uint64_t before, after;
  GapsAround(it, &before, &after);
  DropGap(before, after);
  AddGap(before, start);
  AddGap(end, after);
  return it;
}

VmaMap::iterator VmaMap::Erase(iterator it) {
  uint64_t before, after;
  GapsAround(it, &before, &after);
  DropGap(before, it->second.start);
  DropGap(it->second.end, after);
  AddGap(before, after);
  locked_bytes_ -= LockedSize(it->second);
  return vmas_.erase(it);
}

bool VmaMap::Mergeable(const Vma& a, const Vma& b) {
  if (a.end != b.start || a.prot != b.prot || a.flags != b.flags || a.name != b.name ||
      a.file != b.file || a.dontfork != b.dontfork || a.wipeonfork != b.wipeonfork ||
      a.sealed != b.sealed || a.lock != b.lock || a.anon_shared != b.anon_shared) {
    return false;
  }
  // is_mergeable_vma(): one file at contiguous offsets; anonymous memory
  // only when private (each shared anonymous mapping is its own object).
  if (a.file) return a.offset + (a.end - a.start) == b.offset;
  return !(a.flags & MAP_SHARED);
}

void VmaMap::MergeWithNext(iterator it) {
  auto next = std::next(it);
  if (next == vmas_.end() || !Mergeable(it->second, next->second)) return;
  // No gap lies between them, and the one after `next` keeps its start.
  it->second.end = next->second.end;
  vmas_.erase(next);
}

void VmaMap::Insert(Vma v) {
  auto it = Emplace(std::move(v));
  MergeWithNext(it);
  if (it != vmas_.begin()) MergeWithNext(std::prev(it));
}

void VmaMap::SplitAt(uint64_t addr) {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return;
  Vma& v = std::prev(it)->second;
  if (v.start < addr && addr < v.end) {
    Vma tail = v;
    tail.start = addr;
    if (tail.file) tail.offset += addr - v.start;
    v.end = addr;
    vmas_.emplace(addr, std::move(tail));  // the gaps stay as they were
  }
}

void VmaMap::RemoveRange(uint64_t start, uint64_t end) {
  SplitAt(start);
  SplitAt(end);
  auto it = vmas_.lower_bound(start);
  while (it != vmas_.end() && it->first < end) it = Erase(it);
}

void VmaMap::SetProt(uint64_t start, uint64_t end, int prot) {
  Modify(start, end, [prot](Vma& v) { v.prot = prot; });
}

void VmaMap::Modify(uint64_t start, uint64_t end, const std::function<void(Vma&)>& change) {
  SplitAt(start);
  SplitAt(end);
  for (auto it = vmas_.lower_bound(start); it != vmas_.end() && it->first < end; ++it) {
    locked_bytes_ -= LockedSize(it->second);
    change(it->second);
    locked_bytes_ += LockedSize(it->second);
  }
  // Merge from the VMA before the range up to the one at its end.
  auto it = vmas_.lower_bound(start);
  if (it != vmas_.begin()) --it;
  while (it != vmas_.end() && it->first < end) {
    auto next = std::next(it);
    if (next != vmas_.end() && Mergeable(it->second, next->second)) {
      MergeWithNext(it);
    } else {
      it = next;
    }
  }
}

void VmaMap::SetEnd(const_iterator cit, uint64_t end) {
  auto it = vmas_.find(cit->first);
  uint64_t before, after;
  GapsAround(it, &before, &after);
  DropGap(it->second.end, after);
  locked_bytes_ -= LockedSize(it->second);
  it->second.end = end;
  locked_bytes_ += LockedSize(it->second);
  AddGap(end, after);
  MergeWithNext(it);
  if (it != vmas_.begin()) MergeWithNext(std::prev(it));
}

}  // namespace seedvisor::sentry
