// HostRwFile: the writes of an open regular file of a writable volume
// (host_rw.h); reads, seeks and ioctls are HostFile's.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sentry/fs/host/host_rw.h"

namespace seedvisor::sentry {

Result<size_t> HostRwFile::Write(Task&, const char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  if (flags() & O_APPEND) {
    // At the host file's end, atomically against every writer; offset -1
    // moves the host fd's position past what was written, which becomes
    // the description's (only appends use the host position, and only
    // under offset_mu_: the host file description is this one's alone,
    // AdoptInForkChild).
    iovec iov{const_cast<char*>(buf), len};
    if (shared_position_.load(std::memory_order_relaxed)) {
      // A fork's copy that could not open the file again: the host
      // position is the seed's too, so neither moved nor read; the file's
      // end after the write (later than ours if another writer appended
      // right after).
      ssize_t n = pwritev2(fd_, &iov, 1, 0, RWF_APPEND);
      if (n < 0) return Errno(errno);
      struct stat st;
      if (fstat(fd_, &st) == 0) offset_ = st.st_size;
      return static_cast<size_t>(n);
    }
    ssize_t n = pwritev2(fd_, &iov, 1, -1, RWF_APPEND);
    if (n < 0) return Errno(errno);
    off_t pos = lseek(fd_, 0, SEEK_CUR);
    if (pos >= 0) offset_ = pos;
    return static_cast<size_t>(n);
  }
  ssize_t n = pwrite(fd_, buf, len, offset_);
  if (n < 0) return Errno(errno);
  offset_ += n;
  return static_cast<size_t>(n);
}

Result<size_t> HostRwFile::PWrite(Task&, const char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  ssize_t n;
  if (flags() & O_APPEND) {
    // pwrite(2) BUGS: with O_APPEND, Linux appends whatever the offset;
    // an offset >= 0 leaves the host fd's position alone.
    iovec iov{const_cast<char*>(buf), len};
    n = pwritev2(fd_, &iov, 1, 0, RWF_APPEND);
  } else {
    n = pwrite(fd_, buf, len, offset);
  }
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Status HostRwFile::Truncate(int64_t length) {
  if (ftruncate(fd_, length) != 0) return Errno(errno);
  return {};
}

Status HostRwFile::Sync() {
  if (fsync(fd_) != 0) return Errno(errno);
  return {};
}

absl::Status HostRwFile::AdoptInForkChild(ForkFileContext&) {
  // The forked sentry got fd_ with fork(2), and with it the seed's host
  // file description: an append here between the seed's pwritev2 and its
  // lseek (or the other way round) would give one sandbox the other's
  // position (review 12). The child opens the file again through the
  // magic link (the same object, renamed or unlinked since or not) and
  // puts its own description under the same fd number. A description that
  // cannot write never appends: it keeps the shared one, whose position it
  // never reads.
  int acc = fcntl(fd_, F_GETFL);
  if (acc < 0) return absl::InternalError(absl::StrCat(DisplayPath(), ": ", strerror(errno)));
  acc &= O_ACCMODE;
  if (acc == O_RDONLY) return absl::OkStatus();
  // The open checks the file's mode again, which may have changed since
  // (a chmod 0444 after the open, by the guest or the host: a sentry
  // without CAP_DAC_OVERRIDE is refused): the description keeps the
  // shared host one then, whose position it neither moves nor reads
  // (Write). The fork goes on either way, as the description keeps its
  // access on Linux.
  std::string self = absl::StrCat("/proc/self/fd/", fd_);
  int fresh = open(self.c_str(), acc | O_CLOEXEC | O_NOCTTY);
  if (fresh >= 0 && dup3(fresh, fd_, O_CLOEXEC) >= 0) {
    close(fresh);
    return absl::OkStatus();
  }
  if (fresh >= 0) close(fresh);
  shared_position_.store(true, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace seedvisor::sentry
