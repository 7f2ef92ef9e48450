// IdBitmap: a set of small non-negative integers that finds the lowest
// integer *not* in it at or above a bound in O(log64 n) — fd numbers
// (open(2) returns the lowest free fd), systrap stub thread slots.
//
//   IdBitmap used;
//   int fd = used.LowestClear(min_fd);  // may be >= capacity(): all free there
//   if (fd >= limit) return Errno(EMFILE);
//   used.Set(fd);
//
// Level 0 holds one bit per id; each higher level one bit per word of the
// level below, set when that word is full (as Linux's full_fds_bits does
// for its open_fds). Set() grows the bitmap; ids at or above capacity() are
// clear. Not thread-safe: the owner's lock guards it.
#ifndef SEEDVISOR_SENTRY_BASE_ID_BITMAP_H_
#define SEEDVISOR_SENTRY_BASE_ID_BITMAP_H_

#include <cstdint>
#include <vector>

namespace seedvisor {

class IdBitmap {
 public:
  void Set(int id);
  void Clear(int id);
  bool Test(int id) const;
  // The lowest clear id >= min (min >= 0).
  int LowestClear(int min) const;
  int capacity() const { return levels_.empty() ? 0 : static_cast<int>(levels_[0].size() * 64); }
  // Clears every id (keeps the capacity).
  void ClearAll();

 private:
  // Makes room for ids below `n`, rebuilding the upper levels.
  void Grow(int n);

  std::vector<std::vector<uint64_t>> levels_;
};

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_ID_BITMAP_H_
