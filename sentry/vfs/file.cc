#include "sentry/vfs/file.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>

#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

// Whether a file opened with `flags` on `d` writes through its mount
// (FMODE_WRITER: opened for writing, and not a device node, FIFO or
// socket, whose writes change no filesystem). The type as the walk that
// found `d` learnt it (no Stat here: a filesystem may construct a file
// under its own lock); unknown counts as a writer.
bool WritesThroughMount(int flags, const Dentry& d) {
  if ((flags & O_PATH) || (flags & O_ACCMODE) == O_RDONLY) return false;
  const mode_t type = d.inode()->CachedType();
  return type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK;
}

}  // namespace

FileDescription::FileDescription(int flags, std::shared_ptr<Dentry> dentry)
    // Creation flags only act at open time; F_GETFL never shows them.
    : flags_(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC)),
      dentry_(std::move(dentry)),
      mount_hold_(dentry_ ? dentry_->mount() : nullptr,
                  dentry_ && WritesThroughMount(flags, *dentry_)) {}

FileDescription::~FileDescription() {
  // The last reference to an open file is its close (__fput()).
  if (dentry_) FsnotifyFile(*this, writable() ? IN_CLOSE_WRITE : IN_CLOSE_NOWRITE);
  for (auto& [owner, fn] : on_release_) fn(this);
}

void FileDescription::OnRelease(const void* owner,
                                std::function<void(const FileDescription*)> fn) {
  std::lock_guard l(release_mu_);
  for (auto& [o, f] : on_release_) {
    if (o == owner) {
      f = std::move(fn);
      return;
    }
  }
  on_release_.emplace_back(owner, std::move(fn));
}

void FileDescription::CancelRelease(const void* owner) {
  std::lock_guard l(release_mu_);
  std::erase_if(on_release_, [&](const auto& e) { return e.first == owner; });
}

FileLockKey FileDescription::LockKey() {
  std::lock_guard l(lock_key_mu_);
  if (lock_key_) return *lock_key_;
  if (!dentry_) return *(lock_key_ = FileLockKey{this, 0, 0});
  FileLockKey k = dentry_->inode()->LockKey();
  // A key made because the inode's stat failed (the object alone, no
  // number) is asked again next time.
  if (k.ino != 0) lock_key_ = k;
  return k;
}

void FileDescription::SetStatusFlags(int flags, int fd) {
  // fcntl(F_SETFL) changes only these (setfl() in fs/fcntl.c); FASYNC only
  // where a ->fasync takes it.
  const int settable = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME |
                       (SupportsAsync() ? O_ASYNC : 0);
  int old = flags_.load();
  while (!flags_.compare_exchange_weak(old, (old & ~settable) | (flags & settable))) {
  }
  if ((settable & O_ASYNC) && (flags & O_ASYNC) && !(old & O_ASYNC)) {
    UpdateAsyncOwner([fd](AsyncOwner& o) { o.fd = fd; });
  }
}

FileDescription::AsyncOwner FileDescription::async_owner() const {
  std::lock_guard l(async_mu_);
  return async_owner_;
}

void FileDescription::UpdateAsyncOwner(const std::function<void(AsyncOwner&)>& fn) {
  std::lock_guard l(async_mu_);
  fn(async_owner_);
}

bool FileDescription::readable() const {
  int f = flags();
  if (f & O_PATH) return false;
  return (f & O_ACCMODE) == O_RDONLY || (f & O_ACCMODE) == O_RDWR;
}

bool FileDescription::writable() const {
  int f = flags();
  if (f & O_PATH) return false;
  return (f & O_ACCMODE) == O_WRONLY || (f & O_ACCMODE) == O_RDWR;
}

// Files without the operation: EINVAL for read/write (vfs_read() when
// f_op->read is missing), ESPIPE for positioned I/O and seeking on
// non-seekable files, ENOTDIR for getdents, ENOTTY for ioctl.
Result<size_t> FileDescription::Read(Task&, char*, size_t) { return Errno(EINVAL); }
Result<size_t> FileDescription::Write(Task&, const char*, size_t) { return Errno(EINVAL); }
Result<size_t> FileDescription::PRead(Task&, char*, size_t, int64_t) { return Errno(ESPIPE); }
Result<size_t> FileDescription::PWrite(Task&, const char*, size_t, int64_t) {
  return Errno(ESPIPE);
}
Result<int64_t> FileDescription::Seek(int64_t, int) { return Errno(ESPIPE); }

Result<size_t> FileDescription::ReadAtOffset(Task& t, char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  SV_ASSIGN_OR_RETURN(size_t n, PRead(t, buf, len, offset_));
  offset_ += static_cast<int64_t>(n);
  return n;
}

Result<size_t> PReadString(std::string_view text, char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  if (static_cast<size_t>(offset) >= text.size()) return size_t{0};
  size_t n = std::min(len, text.size() - static_cast<size_t>(offset));
  std::memcpy(buf, text.data() + offset, n);
  return n;
}

Result<struct stat> FileDescription::Stat() {
  if (dentry_) return dentry_->inode()->Stat();
  struct stat st {};
  st.st_mode = S_IFREG | 0600;
  st.st_nlink = 1;
  st.st_blksize = 4096;
  return st;
}

Result<size_t> FileDescription::GetDents64(Task&, UserAddr, size_t) { return Errno(ENOTDIR); }
Result<long> FileDescription::Ioctl(Task&, unsigned long, UserAddr) { return Errno(ENOTTY); }
Status FileDescription::Truncate(int64_t) { return Errno(EINVAL); }
Status FileDescription::Sync() { return Errno(EINVAL); }
Result<int> FileDescription::MappableFd() { return Errno(ENODEV); }

size_t FileDescription::BytesReadable() const {
  int fd = PollFd();
  int n = 0;
  if (fd < 0 || ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<size_t>(n);
}
Result<std::shared_ptr<FileDescription>> FileDescription::Reopen(int) { return Errno(ENXIO); }

std::string FileDescription::DisplayPath() const {
  if (dentry_) return dentry_->Path();
  return "anon_inode:[unknown]";
}

absl::Status FileDescription::AdoptInForkChild(ForkFileContext&) {
  if (PollFd() < 0) return absl::OkStatus();
  return absl::UnimplementedError(
      DisplayPath() + " is backed by a host object that sandbox fork cannot copy yet");
}

absl::Status FileDescription::UnshareMappedInForkChild() {
  return absl::UnimplementedError(
      "a MAP_SHARED mapping of " + DisplayPath() + ", which sandbox fork cannot copy");
}

}  // namespace seedvisor::sentry
