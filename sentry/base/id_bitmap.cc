#include "sentry/base/id_bitmap.h"

#include <algorithm>

namespace seedvisor {
namespace {

constexpr uint64_t kFull = ~uint64_t{0};

uint64_t Bit(uint64_t i) { return uint64_t{1} << (i % 64); }

}  // namespace

void IdBitmap::Grow(int n) {
  size_t words = std::max<size_t>(levels_.empty() ? 1 : levels_[0].size() * 2,
                                  (static_cast<size_t>(n) + 63) / 64);
  std::vector<uint64_t> base = levels_.empty() ? std::vector<uint64_t>() : std::move(levels_[0]);
  base.resize(words, 0);
  levels_.clear();
  levels_.push_back(std::move(base));
  while (levels_.back().size() > 1) {
    const std::vector<uint64_t>& below = levels_.back();
    std::vector<uint64_t> up((below.size() + 63) / 64, 0);
    for (size_t w = 0; w < below.size(); ++w) {
      if (below[w] == kFull) up[w / 64] |= Bit(w);
    }
    levels_.push_back(std::move(up));
  }
}

void IdBitmap::Set(int id) {
  if (id >= capacity()) Grow(id + 1);
  uint64_t i = static_cast<uint64_t>(id);
  for (auto& level : levels_) {
    uint64_t& word = level[i / 64];
    word |= Bit(i);
    if (word != kFull) return;
    i /= 64;  // this word is full now: mark it in the level above
  }
}

void IdBitmap::Clear(int id) {
  if (id >= capacity()) return;
  uint64_t i = static_cast<uint64_t>(id);
  for (auto& level : levels_) {
    uint64_t& word = level[i / 64];
    const bool was_full = word == kFull;
    word &= ~Bit(i);
    if (!was_full) return;
    i /= 64;  // this word has room again: so has its parent's
  }
}

bool IdBitmap::Test(int id) const {
  if (id >= capacity()) return false;
  return (levels_[0][static_cast<uint64_t>(id) / 64] & Bit(static_cast<uint64_t>(id))) != 0;
}

int IdBitmap::LowestClear(int min) const {
  if (min >= capacity()) return min;
  // Up: find the first word, at the lowest level possible, with a clear bit
  // at or after `i`. Everything from `min` up to there is taken.
  uint64_t i = static_cast<uint64_t>(min);
  size_t level = 0;
  for (;;) {
    const std::vector<uint64_t>& words = levels_[level];
    if (i / 64 >= words.size()) return capacity();
    const uint64_t below_i = Bit(i) - 1;  // bits before i in its word count as taken
    const uint64_t word = words[i / 64] | below_i;
    if (word != kFull) {
      i = (i / 64) * 64 + static_cast<uint64_t>(__builtin_ctzll(~word));
      break;
    }
    if (level + 1 == levels_.size()) return capacity();
    i = i / 64 + 1;  // the next word of this level, as a bit of the next level
    ++level;
  }
  // Down: the lowest clear bit of each word on the way. A clear bit past
  // the last real word (padding) means everything below capacity is taken.
  while (level > 0) {
    --level;
    if (i >= levels_[level].size()) return capacity();
    i = i * 64 + static_cast<uint64_t>(__builtin_ctzll(~levels_[level][i]));
  }
  return static_cast<int>(std::min<uint64_t>(i, static_cast<uint64_t>(capacity())));
}

void IdBitmap::ClearAll() {
  for (auto& level : levels_) std::fill(level.begin(), level.end(), 0);
}

}  // namespace seedvisor
