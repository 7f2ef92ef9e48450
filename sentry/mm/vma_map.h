// VmaMap: an mm's VMAs, ordered by address, with the free gaps between them
// indexed so that placing a new mapping costs O(log n) (GapTree), and with
// neighbours merged as Linux's vma_merge() does, so that growing a region
// by adjacent mmaps or mprotecting it back does not pile up VMAs.
//
//   VmaMap vmas(MM::kMinAddr, top);
//   std::optional<uint64_t> a = vmas.HighestFree(len, mmap_base);
//   vmas.RemoveRange(*a, *a + len);  // MAP_FIXED replaces what was there
//   vmas.Insert(Vma{.start = *a, .end = *a + len, ...});
//
// Iteration is read-only: every change of a VMA's range goes through the
// methods below, which keep the gap index in step.
#ifndef SEEDVISOR_SENTRY_MM_VMA_MAP_H_
#define SEEDVISOR_SENTRY_MM_VMA_MAP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "sentry/mm/gap_tree.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

struct Vma {
  uint64_t start = 0;
  uint64_t end = 0;
  int prot = 0;
  int flags = 0;  // MAP_PRIVATE / MAP_SHARED, MAP_ANONYMOUS, MAP_GROWSDOWN
  FileRef file;   // null for anonymous memory
  uint64_t offset = 0;
  std::string name;  // "[heap]", "[stack]", or the file's path
  // madvise(MADV_DONTFORK / MADV_WIPEONFORK): what a guest fork() does with
  // this range. Kept here, never passed to the host: a sandbox fork copies
  // the stub with a host fork, which must copy everything (V8 marks its
  // whole heap DONTFORK).
  bool dontfork = false;
  bool wipeonfork = false;
  // mseal(2) (VM_SEALED): the range cannot be unmapped, moved, resized,
  // replaced or have its protection changed, for the life of the mm.
  bool sealed = false;
  // mlock(2) state, Linux's VM_LOCKED / VM_LOCKONFAULT (kLocked,
  // kLocked | kLockOnFault). Only counted (VmLck, smaps' Locked): the
  // host decides what stays resident.
  static constexpr uint8_t kLocked = 1, kLockOnFault = 2;
  uint8_t lock = 0;
  // Shared anonymous memory (a shmem object behind `file`): mincore(2)
  // asks the host's page table, as for private anonymous memory.
  bool anon_shared = false;
};

class VmaMap {
 public:
  using const_iterator = std::map<uint64_t, Vma>::const_iterator;

  // Gaps are tracked in [lo, hi): where mappings may be placed.
  VmaMap(uint64_t lo, uint64_t hi);

  const_iterator begin() const { return vmas_.begin(); }
  const_iterator end() const { return vmas_.end(); }
  const_iterator lower_bound(uint64_t a) const { return vmas_.lower_bound(a); }
  const_iterator upper_bound(uint64_t a) const { return vmas_.upper_bound(a); }
  const_iterator find(uint64_t a) const { return vmas_.find(a); }
  size_t size() const { return vmas_.size(); }
  // The bytes of all VMAs with Vma::kLocked (Linux's mm->locked_vm), kept
  // in step with every change: O(1).
  uint64_t locked_bytes() const { return locked_bytes_; }

  // Whether no VMA overlaps [start, end).
  bool RangeFree(uint64_t start, uint64_t end) const;
  // The highest a >= lo with [a, a + len) free and a + len <= below.
  std::optional<uint64_t> HighestFree(uint64_t len, uint64_t below) const;

  // Adds `v`, whose range must be free, merged with the neighbours it can
  // be merged with.
  void Insert(Vma v);
  // Makes `addr` a VMA boundary if a VMA straddles it.
  void SplitAt(uint64_t addr);
  // Removes [start, end), splitting VMAs that straddle its ends.
  void RemoveRange(uint64_t start, uint64_t end);
  // Sets the protection of [start, end) (every page mapped), then merges.
  void SetProt(uint64_t start, uint64_t end, int prot);
  // Applies `change` to the VMAs in [start, end) (split at its ends), then
  // merges. `change` must not touch start or end.
  void Modify(uint64_t start, uint64_t end, const std::function<void(Vma&)>& change);
  // Moves the end of the VMA at `it`: into free space, or back.
  void SetEnd(const_iterator it, uint64_t end);

 private:
  using iterator = std::map<uint64_t, Vma>::iterator;
  static bool Mergeable(const Vma& a, const Vma& b);
  // Merges the VMA at `it` with its successor if they can be one VMA.
  void MergeWithNext(iterator it);
  // The gap index mirrors every change of the VMA set: call these around it.
  // [prev_end, next_start) around the VMA at `it`, clamped to [lo_, hi_).
  void GapsAround(iterator it, uint64_t* before, uint64_t* after) const;
  void AddGap(uint64_t start, uint64_t end);
  void DropGap(uint64_t start, uint64_t end);
  iterator Emplace(Vma v);
  iterator Erase(iterator it);

  uint64_t lo_, hi_;
  std::map<uint64_t, Vma> vmas_;  // keyed by start
  GapTree gaps_;
  uint64_t locked_bytes_ = 0;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_MM_VMA_MAP_H_
