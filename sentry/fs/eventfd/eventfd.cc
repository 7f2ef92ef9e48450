#include "sentry/fs/eventfd/eventfd.h"

#include <poll.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/base/log.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

constexpr uint64_t kMax = UINT64_MAX - 1;  // the most an eventfd holds

// What the mirror's counter must be for a guest count `c`.
// An overflowed count (2^64-1, Signal() only) is full as kMax is: POLLIN
// without POLLOUT; its POLLERR comes from PollErrorEvents().
uint64_t MirrorValue(uint64_t c) { return c == 0 ? 0 : c >= kMax ? kMax : 1; }

}  // namespace

EventFdFile::EventFdFile(int flags, uint64_t initval, bool semaphore)
    : FileDescription(flags), count_(initval), semaphore_(semaphore) {}

EventFdFile::~EventFdFile() {
  if (mirror_fd_ >= 0) close(mirror_fd_);
}

uint64_t EventFdFile::count() {
  std::lock_guard l(mu_);
  return count_;
}

std::string EventFdFile::FdInfo() {
  // eventfd_show_fdinfo().
  std::lock_guard l(mu_);
  return absl::StrFormat("eventfd-count: %16x\neventfd-semaphore: %d\n", count_,
                         semaphore_ ? 1 : 0);
}

Result<size_t> EventFdFile::Read(Task& t, char* buf, size_t len) {
  if (len < sizeof(uint64_t)) return Errno(EINVAL);
  std::unique_lock l(mu_);
  while (count_ == 0) {
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(WaitOn(rd_wait_, t, l));
  }
  uint64_t v = semaphore_ ? 1 : count_;
  count_ -= v;
  wr_wait_.NotifyAll();
  SyncMirrorLocked(/*edge=*/false);
  std::memcpy(buf, &v, sizeof(v));
  return sizeof(v);
}

short EventFdFile::PollErrorEvents() const {
  std::lock_guard l(mu_);
  return count_ == UINT64_MAX ? POLLERR : 0;
}

void EventFdFile::Signal(uint64_t n) {
  std::unique_lock l(mu_);
  count_ += std::min(n, UINT64_MAX - count_);
  rd_wait_.NotifyAll();
  SyncMirrorLocked(/*edge=*/true);
}

Result<size_t> EventFdFile::Write(Task& t, const char* buf, size_t len) {
  if (len != sizeof(uint64_t)) return Errno(EINVAL);  // eventfd_write()
  uint64_t v;
  std::memcpy(&v, buf, sizeof(v));
  if (v == UINT64_MAX) return Errno(EINVAL);
  std::unique_lock l(mu_);
  // eventfd_write(): blocks while the sum would overflow.
  while (UINT64_MAX - count_ <= v) {
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(WaitOn(wr_wait_, t, l));
  }
  count_ += v;
  rd_wait_.NotifyAll();
  SyncMirrorLocked(/*edge=*/true);
  return sizeof(v);
}

Result<struct stat> EventFdFile::Stat() {
  // Every eventfd is the one anonymous inode: the host's, fstat'ed once.
  static const Result<struct stat> anon = []() -> Result<struct stat> {
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return Errno(errno);
    struct stat st {};
    int r = fstat(fd, &st);
    int err = errno;
    close(fd);
    if (r != 0) return Errno(err);
    return st;
  }();
  return anon;
}

int EventFdFile::PollFd() const {
  std::lock_guard l(mu_);
  if (mirror_fd_ < 0) {
    mirror_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mirror_fd_ < 0) {
      Log::Warning("eventfd readiness: eventfd: %s", strerror(errno));
      return -1;
    }
    mirror_val_ = 0;
    const_cast<EventFdFile*>(this)->SyncMirrorLocked(/*edge=*/false);
  }
  return mirror_fd_;
}

void EventFdFile::SyncMirrorLocked(bool edge) {
  if (mirror_fd_ < 0) return;
  uint64_t want = MirrorValue(count_);
  if (want < mirror_val_) {
    // Down: only a read resets a host eventfd (to 0).
    uint64_t v;
    (void)!read(mirror_fd_, &v, sizeof(v));
    mirror_val_ = 0;
  }
  // Up by the difference; a write of 0 still wakes the host's waiters,
  // which is the EPOLLIN edge a guest write makes (eventfd_write()).
  if (want > mirror_val_ || (edge && want == mirror_val_)) {
    uint64_t d = want - mirror_val_;
    if (write(mirror_fd_, &d, sizeof(d)) == sizeof(d)) mirror_val_ = want;
  }
}

absl::Status EventFdFile::AdoptInForkChild(ForkFileContext&) {
  std::lock_guard l(mu_);
  if (mirror_fd_ < 0) return absl::OkStatus();  // no host object: nothing shared
  close(mirror_fd_);  // the seed's mirror: the seed keeps its own copy
  mirror_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (mirror_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("anon_inode:[eventfd]: eventfd: ", strerror(errno)));
  }
  mirror_val_ = 0;
  SyncMirrorLocked(/*edge=*/false);
  return absl::OkStatus();
}

}  // namespace seedvisor::sentry
