// Pipe (pipe.h): its data, the ring of page buffers, and the reads,
// writes and waits on it. Its ends and readiness mirror are in
// pipe_ends.cc, PipeFile and FIFOs in pipe_file.cc.
#include "sentry/fs/pipe/pipe.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <string>
#include <bit>
#include <cstring>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

Pipe::Pipe(uint64_t ino) : ino_(ino) {}

Pipe::~Pipe() {
  std::lock_guard l(mu_);
  DropMirrorLocked();
}

size_t Pipe::BytesLocked() const {
  size_t n = 0;
  for (const Buffer& b : bufs_) n += b.len;
  return n;
}

size_t Pipe::BytesHeld() {
  std::lock_guard l(mu_);
  return BytesLocked();
}

size_t Pipe::Capacity() {
  std::lock_guard l(mu_);
  return max_slots_ * kPipePageSize;
}

std::unique_ptr<char[]> Pipe::NewPage() {
  if (!spare_.empty()) {
    auto p = std::move(spare_.back());
    spare_.pop_back();
    return p;
  }
  return std::unique_ptr<char[]>(new char[kPipePageSize]);
}

void Pipe::FreePage(std::unique_ptr<char[]> page) {
  // Like pipe->tmp_page: a page or two kept for the next write.
  if (spare_.size() < 2) spare_.push_back(std::move(page));
}

Result<size_t> Pipe::Read(Task& t, char* buf, size_t len, bool nonblock) {
  if (len == 0) return size_t{0};
  std::unique_lock l(mu_);
  size_t ret = 0;
  size_t total = len;
  for (;;) {
    if (!bufs_.empty()) {
      Buffer& b = bufs_.front();
      size_t chars = std::min<size_t>(b.len, total);
      std::memcpy(buf + ret, b.page.get() + b.offset, chars);
      ret += chars;
      b.offset += static_cast<uint32_t>(chars);
      b.len -= static_cast<uint32_t>(chars);
      // A packet is read whole or its rest is dropped; it ends the read.
      if (b.packet) {
        total = chars;
        b.len = 0;
      }
      if (b.len == 0) {
        FreePage(std::move(b.page));
        bufs_.pop_front();
      }
      total -= chars;
      if (total == 0) break;
      if (!bufs_.empty()) continue;
    }
    if (writers_ == 0 || ret > 0) break;
    if (nonblock) return Errno(EAGAIN);
    SV_TRY(WaitOn(rd_wait_, t, l));
  }
  if (ret == 0) return ret;
  ChangedLocked(/*wrote=*/false, /*read=*/true);
  std::vector<FileRef> async = AsyncEndsLocked(/*readers=*/false);
  l.unlock();
  SignalAsync(t, async, POLL_OUT);
  return ret;
}

Result<size_t> Pipe::Write(Task& t, const char* buf, size_t len, bool nonblock, bool packet) {
  if (len == 0) return size_t{0};
  std::unique_lock l(mu_);
  if (readers_ == 0) return Errno(EPIPE);  // the dispatcher sends SIGPIPE
  size_t ret = 0;
  // The sub-page remainder goes into the last buffer if it fits whole
  // there (and that one is no packet), so a write of at most PIPE_BUF
  // bytes is never split.
  size_t chars = len & (kPipePageSize - 1);
  if (chars != 0 && !bufs_.empty()) {
    Buffer& b = bufs_.back();
    if (!b.packet && b.offset + b.len + chars <= kPipePageSize) {
      std::memcpy(b.page.get() + b.offset + b.len, buf, chars);
      b.len += static_cast<uint32_t>(chars);
      ret = chars;
    }
  }
  size_t announced = 0;  // bytes readers have been told about
  bool sigpipe = false;
  while (ret < len) {
    if (readers_ == 0) {
      // The last reader went while we waited: what was written counts,
      // with SIGPIPE all the same (pipe_write()).
      if (ret == 0) return Errno(EPIPE);
      sigpipe = true;
      break;
    }
    if (!FullLocked()) {
      size_t n = std::min(kPipePageSize, len - ret);
      Buffer nb;
      nb.page = NewPage();
      std::memcpy(nb.page.get(), buf + ret, n);
      nb.len = static_cast<uint32_t>(n);
      nb.packet = packet;
      bufs_.push_back(std::move(nb));
      ret += n;
      continue;
    }
    if (nonblock) {
      if (ret == 0) return Errno(EAGAIN);
      break;
    }
    if (ret > announced) {
      ChangedLocked(/*wrote=*/true, /*read=*/false);
      announced = ret;
      // pipe_write() tells O_ASYNC readers before it sleeps; then look
      // again (a reader may have made room meanwhile).
      if (std::vector<FileRef> async = AsyncEndsLocked(/*readers=*/true); !async.empty()) {
        l.unlock();
        SignalAsync(t, async, POLL_IN);
        async.clear();  // the last reference to an end may go: not under mu_
        l.lock();
        continue;
      }
    }
    Status s = WaitOn(wr_wait_, t, l);
    if (!s.ok()) {
      if (ret == 0) return s.error();
      break;  // a signal: the count so far
    }
  }
  std::vector<FileRef> async;
  if (ret > 0) {
    ChangedLocked(/*wrote=*/true, /*read=*/false);
    async = AsyncEndsLocked(/*readers=*/true);
  }
  l.unlock();
  // Both take Kernel::mu(): not under mu_.
  SignalAsync(t, async, POLL_IN);
  if (sigpipe) TaskSendSigpipe(t);
  return ret;
}

Result<size_t> Pipe::Peek(Task& t, char* buf, size_t len, bool nonblock) {
  if (len == 0) return size_t{0};
  std::unique_lock l(mu_);
  while (bufs_.empty()) {
    if (writers_ == 0) return size_t{0};
    if (nonblock) return Errno(EAGAIN);
    SV_TRY(WaitOn(rd_wait_, t, l));
  }
  size_t ret = 0;
  for (const Buffer& b : bufs_) {
    size_t n = std::min<size_t>(b.len, len - ret);
    std::memcpy(buf + ret, b.page.get() + b.offset, n);
    ret += n;
    if (ret == len) break;
  }
  return ret;
}

bool Pipe::ReadableNow() {
  std::lock_guard l(mu_);
  return !bufs_.empty() || writers_ == 0;
}

bool Pipe::WritableNow() {
  std::lock_guard l(mu_);
  return !FullLocked() || readers_ == 0;
}

Status Pipe::WaitReadable(Task& t) {
  std::unique_lock l(mu_);
  while (bufs_.empty() && writers_ > 0) SV_TRY(WaitOn(rd_wait_, t, l));
  return {};
}

Status Pipe::WaitWritable(Task& t) {
  std::unique_lock l(mu_);
  while (FullLocked() && readers_ > 0) SV_TRY(WaitOn(wr_wait_, t, l));
  return {};
}

namespace {
std::atomic<size_t> g_pipe_max_size{size_t{1} << 20};
}  // namespace

size_t PipeMaxSize() { return g_pipe_max_size.load(); }

std::string PipeMaxSizeText() { return std::to_string(PipeMaxSize()) + "\n"; }

Status SetPipeMaxSize(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return Errno(EINVAL);
  // round_pipe_size(): 0 for more than 2 GiB, which is EINVAL.
  if (v > (uint64_t{1} << 31)) return Errno(EINVAL);
  g_pipe_max_size.store(v < kPipePageSize ? kPipePageSize : std::bit_ceil(v));
  return {};
}

Result<size_t> Pipe::SetCapacity(uint64_t size, bool privileged) {
  // round_pipe_size(): a power of two pages, at least one, at most 2 GiB.
  if (size > (uint64_t{1} << 31)) return Errno(EINVAL);
  uint64_t rounded = size < kPipePageSize ? kPipePageSize : std::bit_ceil(size);
  size_t slots = rounded / kPipePageSize;
  std::lock_guard l(mu_);
  // pipe_set_size(): growing past pipe-max-size needs CAP_SYS_RESOURCE;
  // pipe_resize_ring(): never below what the pipe holds.
  if (slots > max_slots_ && rounded > PipeMaxSize() && !privileged) return Errno(EPERM);
  if (slots < bufs_.size()) return Errno(EBUSY);
  max_slots_ = slots;
  ChangedLocked(/*wrote=*/false, /*read=*/true);
  return max_slots_ * kPipePageSize;
}

void Pipe::ChangedLocked(bool wrote, bool read) {
  if (wrote) rd_wait_.NotifyAll();
  if (read) wr_wait_.NotifyAll();
  SyncMirrorLocked(wrote);
}

}  // namespace seedvisor::sentry
