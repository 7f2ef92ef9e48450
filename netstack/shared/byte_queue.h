// A FIFO of bytes in chunks: TCP send and receive buffers. Appending and
// consuming from the front are O(chunk); copying out at an offset walks the
// chunks (the send side reads its unacknowledged window from the front).
// Queues given a ChunkPool take their chunks from it and give consumed ones
// back, so that a connection's steady stream reuses memory instead of
// growing and trimming the heap (a fresh 16 KiB chunk is four page faults).
//
//   ByteQueue q;
//   q.Append("hello");
//   q.CopyOut(1, 3, buf);   // "ell"
//   q.Consume(2);           // "llo" left
#ifndef SEEDVISOR_NETSTACK_SHARED_BYTE_QUEUE_H_
#define SEEDVISOR_NETSTACK_SHARED_BYTE_QUEUE_H_

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace seedvisor::netstack {

// Spare chunks for ByteQueues, at most kMaxSpare (the stack's: under its
// lock, as every queue of the stack). Chunks come back empty, with their
// kChunk capacity.
class ChunkPool {
 public:
  static constexpr size_t kMaxSpare = 256;  // 4 MiB: a full receive buffer's worth

  std::string Take() {
    if (spare_.empty()) return {};
    std::string c = std::move(spare_.back());
    spare_.pop_back();
    return c;
  }
  void Give(std::string c) {
    if (spare_.size() >= kMaxSpare) return;  // freed
    c.clear();
    spare_.push_back(std::move(c));
  }
  size_t spare() const { return spare_.size(); }

 private:
  std::vector<std::string> spare_;
};

class ByteQueue {
 public:
  static constexpr size_t kChunk = 16384;

  ByteQueue() = default;
  explicit ByteQueue(ChunkPool* pool) : pool_(pool) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void Append(std::string_view d) {
    while (!d.empty()) {
      if (chunks_.empty() || chunks_.back().size() >= kChunk) {
        chunks_.push_back(pool_ ? pool_->Take() : std::string());
        chunks_.back().reserve(kChunk);
      }
      std::string& c = chunks_.back();
      size_t n = std::min(d.size(), kChunk - c.size());
      c.append(d.data(), n);
      d.remove_prefix(n);
      size_ += n;
    }
  }
  // Copies `n` bytes starting `off` bytes from the front; returns how many.
  size_t CopyOut(size_t off, size_t n, char* dst) const {
    off += head_;
    size_t done = 0;
    for (const std::string& c : chunks_) {
      if (done == n) break;
      if (off >= c.size()) {
        off -= c.size();
        continue;
      }
      size_t k = std::min(n - done, c.size() - off);
      memcpy(dst + done, c.data() + off, k);
      done += k;
      off = 0;
    }
    return done;
  }
  // Replaces `out` with `n` bytes from `off` (at most what is there),
  // reusing its capacity: no allocation or zero-fill per segment.
  void ReadInto(size_t off, size_t n, std::string* out) const {
    out->clear();
    off += head_;
    for (const std::string& c : chunks_) {
      if (out->size() == n) break;
      if (off >= c.size()) {
        off -= c.size();
        continue;
      }
      size_t k = std::min(n - out->size(), c.size() - off);
      out->append(c.data() + off, k);
      off = 0;
    }
  }
  std::string Read(size_t off, size_t n) const {
    std::string s(std::min(n, size_ > off ? size_ - off : 0), '\0');
    s.resize(CopyOut(off, s.size(), s.data()));
    return s;
  }
  void Consume(size_t n) {
    n = std::min(n, size_);
    size_ -= n;
    while (n) {
      size_t k = std::min(n, chunks_.front().size() - head_);
      head_ += k;
      n -= k;
      if (head_ == chunks_.front().size()) {
        Release(std::move(chunks_.front()));
        chunks_.pop_front();
        head_ = 0;
      }
    }
    if (size_ == 0) {
      for (std::string& c : chunks_) Release(std::move(c));
      chunks_.clear();
      head_ = 0;
    }
  }

 private:
  void Release(std::string c) {
    if (pool_ && c.capacity() >= kChunk) pool_->Give(std::move(c));
  }

  ChunkPool* pool_ = nullptr;
  std::deque<std::string> chunks_;
  size_t head_ = 0;  // bytes already consumed from chunks_.front()
  size_t size_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_BYTE_QUEUE_H_
