// Pipe (pipe.h): its ends. Attaching and detaching PipeFiles, a FIFO's
// open waiting for its partner, SIGIO to O_ASYNC ends, and the host
// "mirror" pipe whose readiness each end's PollFd() shows.
#include "sentry/fs/pipe/pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

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

}  // namespace seedvisor::sentry
