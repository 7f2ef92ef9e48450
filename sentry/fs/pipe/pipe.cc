#include "sentry/fs/pipe/pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

std::atomic<uint64_t> g_next_pipe_ino{0x10000};

// The mirror's capacity in slots: room for "empty", "some" and "full" with
// a spare slot so that a write's edge never has to empty it first.
constexpr size_t kMirrorSlots = 4;
constexpr size_t kMirrorMaxBytes = 16 * kPipePageSize;

bool CanRead(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
bool CanWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// Another host file of the same host pipe as `fd`, in `accmode` (an
// anonymous pipe reopened by its /proc link: fifo_open() never blocks or
// fails with ENXIO for those).
int ReopenHost(int fd, int accmode) {
  std::string path = absl::StrCat("/proc/self/fd/", fd);
  return open(path.c_str(), accmode | O_NONBLOCK | O_CLOEXEC);
}

}  // namespace

// ------------------------------------------------------------------ Pipe

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

Result<size_t> Pipe::SetCapacity(uint64_t size, bool privileged) {
  // round_pipe_size(): a power of two pages, at least one, at most 2 GiB.
  if (size > (uint64_t{1} << 31)) return Errno(EINVAL);
  uint64_t rounded = size < kPipePageSize ? kPipePageSize : std::bit_ceil(size);
  size_t slots = rounded / kPipePageSize;
  std::lock_guard l(mu_);
  // pipe_set_size(): growing past pipe-max-size needs CAP_SYS_RESOURCE;
  // pipe_resize_ring(): never below what the pipe holds.
  if (slots > max_slots_ && rounded > kPipeMaxSize && !privileged) return Errno(EPERM);
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

std::vector<FileRef> Pipe::AsyncEndsLocked(bool readers) {
  std::vector<FileRef> out;
  for (PipeFile* f : files_) {
    int fl = f->flags();
    if (!(fl & O_ASYNC) || !(readers ? CanRead(fl) : CanWrite(fl))) continue;
    // An end whose last reference is going (its destructor waits for mu_
    // in Detach) hears nothing.
    if (FileRef ref = f->weak_from_this().lock()) out.push_back(std::move(ref));
  }
  return out;
}

void Pipe::SignalAsync(Task& t, const std::vector<FileRef>& ends, int reason) {
  for (const FileRef& f : ends) TaskSendSigio(t, *f, reason);
}

// ------------------------------------------------------------------ ends

void Pipe::Attach(PipeFile* f, bool fifo) {
  std::lock_guard l(mu_);
  files_.push_back(f);
  int fl = f->flags();
  if (CanRead(fl)) {
    ++readers_;
    ++r_counter_;
  }
  if (CanWrite(fl)) {
    ++writers_;
    ++w_counter_;
    // A writer came: no reader's POLLHUP is suppressed any more.
    for (PipeFile* o : files_) o->suppress_hup_ = false;
  } else if (fifo && writers_ == 0 && (fl & O_NONBLOCK)) {
    f->suppress_hup_ = true;
  }
  f->r_counter_at_open_ = r_counter_;
  f->w_counter_at_open_ = w_counter_;
  if (mirror_) {
    for (PipeFile* o : files_) {
      if (o != f && o->mirror_fd_ >= 0) {
        f->mirror_fd_ = ReopenHost(o->mirror_fd_, fl & O_ACCMODE);
        break;
      }
    }
    if (CanWrite(fl) && mirror_placeholder_ >= 0) {
      close(mirror_placeholder_);
      mirror_placeholder_ = -1;
    }
    if (f->suppress_hup_ && mirror_placeholder_ < 0 && f->mirror_fd_ >= 0) {
      mirror_placeholder_ = ReopenHost(f->mirror_fd_, O_WRONLY);
    }
  }
  if (CanRead(fl)) wr_wait_.NotifyAll();
  if (CanWrite(fl)) rd_wait_.NotifyAll();
}

void Pipe::Detach(PipeFile* f) {
  std::lock_guard l(mu_);
  std::erase(files_, f);
  int fl = f->flags();
  if (f->mirror_fd_ >= 0) {
    close(f->mirror_fd_);
    f->mirror_fd_ = -1;
  }
  if (CanRead(fl) && --readers_ == 0) wr_wait_.NotifyAll();  // EPIPE
  if (CanWrite(fl) && --writers_ == 0) rd_wait_.NotifyAll();  // EOF
  if (mirror_placeholder_ >= 0 &&
      std::none_of(files_.begin(), files_.end(), [](PipeFile* o) { return o->suppress_hup_; })) {
    close(mirror_placeholder_);
    mirror_placeholder_ = -1;
  }
  if (files_.empty()) {
    // The last end went (free_pipe_info()): a FIFO starts empty next time.
    DropMirrorLocked();
    bufs_.clear();
  }
}

// ------------------------------------------------------------------ mirror
//
// The mirror is a host pipe of kMirrorSlots page slots. The sentry writes
// zeros into it and reads them back (through any end's host fd of the right
// mode) so that it holds no slot when the guest pipe is empty, all slots
// when the guest pipe is full, and some in between. `mirror_bufs_` tracks
// the bytes in each of its slots by the same merge rules as Pipe::Write.

int Pipe::readers() {
  std::lock_guard l(mu_);
  return readers_;
}

Status Pipe::WaitForPartner(Task& t, PipeFile* f) {
  std::unique_lock l(mu_);
  int fl = f->flags();
  if (CanRead(fl) && CanWrite(fl)) return {};
  if (CanRead(fl)) {
    while (writers_ == 0 && w_counter_ == f->w_counter_at_open_) SV_TRY(WaitOn(rd_wait_, t, l));
  } else {
    while (readers_ == 0 && r_counter_ == f->r_counter_at_open_) SV_TRY(WaitOn(wr_wait_, t, l));
  }
  return {};
}

int Pipe::PollFdFor(PipeFile* f) {
  std::lock_guard l(mu_);
  EnsureMirrorLocked();
  return f->mirror_fd_;
}

void Pipe::EnsureMirrorLocked() {
  if (mirror_) return;
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
    Log::Warning("pipe readiness: pipe2: %s", strerror(errno));
    return;
  }
  int sz = fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kMirrorSlots * kPipePageSize));
  if (sz < 0) sz = fcntl(p[1], F_GETPIPE_SZ);
  if (sz < static_cast<int>(2 * kPipePageSize) || sz > static_cast<int>(kMirrorMaxBytes)) {
    Log::Warning("pipe readiness: unusable host pipe size %d", sz);
    close(p[0]);
    close(p[1]);
    return;
  }
  mirror_ = true;
  mirror_slots_ = static_cast<size_t>(sz) / kPipePageSize;
  mirror_bufs_.clear();
  for (PipeFile* f : files_) f->mirror_fd_ = ReopenHost(p[0], f->flags() & O_ACCMODE);
  // Fill it while pipe2's own ends still count as a reader and a writer.
  SyncMirrorLocked(/*edge=*/false, p[0], p[1]);
  if (writers_ == 0 &&
      std::any_of(files_.begin(), files_.end(), [](PipeFile* o) { return o->suppress_hup_; })) {
    mirror_placeholder_ = ReopenHost(p[0], O_WRONLY);
  }
  close(p[0]);
  close(p[1]);
}

void Pipe::DropMirrorLocked() {
  for (PipeFile* f : files_) {
    if (f->mirror_fd_ >= 0) close(f->mirror_fd_);
    f->mirror_fd_ = -1;
  }
  if (mirror_placeholder_ >= 0) close(mirror_placeholder_);
  mirror_placeholder_ = -1;
  mirror_ = false;
  mirror_bufs_.clear();
}

int Pipe::MirrorFdLocked(bool want_write) const {
  for (PipeFile* f : files_) {
    if (f->mirror_fd_ < 0) continue;
    int fl = f->flags();
    if (want_write ? CanWrite(fl) : CanRead(fl)) return f->mirror_fd_;
  }
  return want_write ? mirror_placeholder_ : -1;
}

bool Pipe::MirrorWrite(int fd, size_t n) {
  static const char kZeros[kMirrorMaxBytes] = {};
  if (fd < 0 || n > sizeof(kZeros)) return false;
  ssize_t w = write(fd, kZeros, n);
  if (w != static_cast<ssize_t>(n)) {
    Log::Warning("pipe readiness: short write %d of %d", w, n);
    return false;
  }
  // pipe_write()'s rules: the sub-page remainder merges, then new slots.
  size_t chars = n & (kPipePageSize - 1);
  if (chars != 0 && !mirror_bufs_.empty() && mirror_bufs_.back() + chars <= kPipePageSize) {
    mirror_bufs_.back() += static_cast<uint32_t>(chars);
    n -= chars;
  }
  while (n > 0) {
    size_t k = std::min(n, kPipePageSize);
    mirror_bufs_.push_back(static_cast<uint32_t>(k));
    n -= k;
  }
  return true;
}

bool Pipe::MirrorRead(int fd, size_t n) {
  // Never read: one sink for every thread (not thread_local: see
  // SocketMirror::Drain).
  static char scratch[kMirrorMaxBytes];
  if (fd < 0 || n > sizeof(scratch)) return false;
  ssize_t r = read(fd, scratch, n);
  if (r != static_cast<ssize_t>(n)) {
    Log::Warning("pipe readiness: short read %d of %d", r, n);
    return false;
  }
  while (n > 0 && !mirror_bufs_.empty()) {
    size_t k = std::min<size_t>(n, mirror_bufs_.front());
    mirror_bufs_.front() -= static_cast<uint32_t>(k);
    if (mirror_bufs_.front() == 0) mirror_bufs_.pop_front();
    n -= k;
  }
  return true;
}

void Pipe::SyncMirrorLocked(bool edge, int rfd, int wfd) {
  if (!mirror_) return;
  if (rfd < 0) rfd = MirrorFdLocked(false);
  if (wfd < 0) wfd = MirrorFdLocked(true);
  const size_t cap = mirror_slots_;
  size_t held = mirror_bufs_.size();
  if (bufs_.empty()) {
    // POLLIN off. (With no reader left nobody can see it: skip.)
    if (held > 0) {
      size_t bytes = 0;
      for (uint32_t b : mirror_bufs_) bytes += b;
      MirrorRead(rfd, bytes);
    }
    return;
  }
  if (FullLocked()) {
    // POLLOUT off: every slot taken. No new edge if it already was full.
    if (held < cap) MirrorWrite(wfd, (cap - held) * kPipePageSize);
    return;
  }
  // Some data and some room: POLLIN and POLLOUT both on.
  if (held == 0) {
    MirrorWrite(wfd, 1);
    return;
  }
  if (held >= cap) {
    MirrorRead(rfd, mirror_bufs_.front());
  } else if (!edge) {
    return;
  }
  if (!edge) return;
  // A new EPOLLIN edge for a write that kept the pipe readable: one more
  // byte, merged into the last slot or into a new one, never the last free
  // slot (that would drop POLLOUT).
  if (mirror_bufs_.back() < kPipePageSize || mirror_bufs_.size() + 1 < cap) {
    MirrorWrite(wfd, 1);
  } else if (mirror_bufs_.size() >= 2) {
    MirrorRead(rfd, mirror_bufs_.front());
    MirrorWrite(wfd, 1);
  }
}

absl::Status Pipe::AdoptInForkChild() {
  std::lock_guard l(mu_);
  if (!mirror_) return absl::OkStatus();  // no host object: nothing shared
  // Close the seed's mirror fds (the seed keeps its own copies) and make
  // this sandbox's, filled to the same level.
  DropMirrorLocked();
  EnsureMirrorLocked();
  if (!mirror_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("pipe:[", ino_, "]: cannot make its readiness pipe"));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ PipeFile

PipeFile::PipeFile(int flags, std::shared_ptr<Pipe> pipe, std::shared_ptr<Dentry> d, bool fifo)
    : FileDescription(flags, std::move(d)), pipe_(std::move(pipe)) {
  pipe_->Attach(this, fifo);
}

PipeFile::~PipeFile() { pipe_->Detach(this); }

Result<size_t> PipeFile::Read(Task& t, char* buf, size_t len) {
  return pipe_->Read(t, buf, len, nonblocking());
}

Result<size_t> PipeFile::Write(Task& t, const char* buf, size_t len) {
  return pipe_->Write(t, buf, len, nonblocking(), (flags() & O_DIRECT) != 0);
}

absl::Status PipeFile::AdoptInForkChild(ForkFileContext& ctx) {
  if (!ctx.shared_adopted.insert(pipe_.get()).second) return absl::OkStatus();
  return pipe_->AdoptInForkChild();
}

int PipeFile::PollFd() const { return pipe_->PollFdFor(const_cast<PipeFile*>(this)); }

Result<struct stat> PipeFile::Stat() {
  if (dentry()) return FileDescription::Stat();  // a FIFO: its inode's
  struct stat st {};
  st.st_mode = S_IFIFO | 0600;
  st.st_ino = pipe_->ino();
  st.st_dev = 0xc;  // pipefs
  st.st_nlink = 1;
  st.st_blksize = 4096;
  clock_gettime(CLOCK_REALTIME, &st.st_mtim);
  st.st_atim = st.st_ctim = st.st_mtim;
  return st;
}

Result<long> PipeFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    int n = static_cast<int>(std::min<size_t>(pipe_->BytesHeld(), INT32_MAX));
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

std::string PipeFile::DisplayPath() const {
  if (dentry()) return FileDescription::DisplayPath();
  return absl::StrCat("pipe:[", pipe_->ino(), "]");
}

Result<FileRef> PipeFile::Reopen(int flags) {
  // O_RDWR on a pipe is allowed, as in Linux; an anonymous pipe's open
  // never waits for the other end.
  return FileRef(std::make_shared<PipeFile>(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC),
                                            pipe_, dentry()));
}

Result<std::pair<FileRef, FileRef>> NewPipe(int flags) {
  if (flags & ~(O_NONBLOCK | O_DIRECT | O_CLOEXEC)) return Errno(EINVAL);
  int f = flags & (O_NONBLOCK | O_DIRECT);
  auto pipe = std::make_shared<Pipe>(g_next_pipe_ino.fetch_add(1));
  FileRef r = std::make_shared<PipeFile>(O_RDONLY | f, pipe);
  FileRef w = std::make_shared<PipeFile>(O_WRONLY | f, pipe);
  return std::make_pair(std::move(r), std::move(w));
}

namespace {

// The Pipe of each FIFO with an open end (inode->i_pipe), by (dev, ino):
// overlay and tmpfs may hand out more than one Inode object for a file.
std::mutex g_fifo_mu;
std::map<std::pair<dev_t, ino_t>, std::weak_ptr<Pipe>> g_fifos;  // by g_fifo_mu

std::shared_ptr<Pipe> FifoPipe(dev_t dev, ino_t ino) {
  std::lock_guard l(g_fifo_mu);
  std::erase_if(g_fifos, [](const auto& e) { return e.second.expired(); });
  auto& w = g_fifos[{dev, ino}];
  std::shared_ptr<Pipe> p = w.lock();
  if (!p) {
    p = std::make_shared<Pipe>(ino);
    w = p;
  }
  return p;
}

}  // namespace

Result<FileRef> OpenFifo(Task* t, std::shared_ptr<Dentry> d, dev_t dev, ino_t ino, int flags) {
  std::shared_ptr<Pipe> pipe = FifoPipe(dev, ino);
  int acc = flags & O_ACCMODE;
  bool nonblock = (flags & O_NONBLOCK) != 0;
  if (acc == O_WRONLY && nonblock && pipe->readers() == 0) return Errno(ENXIO);
  auto f = std::make_shared<PipeFile>(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY),
                                      pipe, std::move(d), /*fifo=*/true);
  if (acc != O_RDWR && !(acc == O_RDONLY && nonblock)) {
    if (t == nullptr) return Errno(EAGAIN);
    SV_TRY(pipe->WaitForPartner(*t, f.get()));  // f's release undoes the open
  }
  return FileRef(std::move(f));
}

}  // namespace seedvisor::sentry
