// tmpfs (tmpfs.h): TmpfsFile, the open file of a regular tmpfs file
// (reads and writes on its inode's memfd), and SeekHostFd, the lseek(2) of
// every file whose data is a host fd.
#include "sentry/fs/tmpfs/tmpfs.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {

TmpfsFile::TmpfsFile(int flags, DentryRef d, std::shared_ptr<TmpfsInode> inode)
    : FileDescription(flags, std::move(d)), inode_(std::move(inode)) {}

absl::Status TmpfsFile::UnshareMappedInForkChild() {
  Result<int> fd = inode_->WritableMemfd();
  if (!fd.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("copying the data of ", DisplayPath(), ": ",
                                                     strerror(fd.error().value())));
  }
  return absl::OkStatus();
}

Result<size_t> TmpfsFile::ReadAt(char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  const int fd = inode_->memfd();
  if (fd < 0) return size_t{0};  // never had data
  ssize_t n = pread(fd, buf, len, offset);
  if (n < 0) return Errno(errno);
  return static_cast<size_t>(n);
}

Result<size_t> TmpfsFile::WriteAt(const char* buf, size_t len, int64_t offset) {
  if (offset < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(int fd, inode_->WritableMemfd());
  ssize_t n = pwrite(fd, buf, len, offset);
  if (n < 0) return Errno(errno);
  if (n > 0) inode_->Touch();
  return static_cast<size_t>(n);
}

Result<size_t> TmpfsFile::Read(Task&, char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  SV_ASSIGN_OR_RETURN(size_t n, ReadAt(buf, len, offset_));
  offset_ += static_cast<int64_t>(n);
  return n;
}

Result<size_t> TmpfsFile::Write(Task&, const char* buf, size_t len) {
  std::lock_guard l(offset_mu_);
  std::lock_guard w(inode_->write_mu());
  if (flags() & O_APPEND) {
    SV_ASSIGN_OR_RETURN(offset_, inode_->DataSize());
  }
  SV_ASSIGN_OR_RETURN(size_t n, WriteAt(buf, len, offset_));
  offset_ += static_cast<int64_t>(n);
  return n;
}

Result<size_t> TmpfsFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  return ReadAt(buf, len, offset);
}

Result<size_t> TmpfsFile::PWrite(Task&, const char* buf, size_t len, int64_t offset) {
  std::lock_guard w(inode_->write_mu());
  // pwrite(2) BUGS: with O_APPEND, Linux appends regardless of the offset.
  if (flags() & O_APPEND) {
    SV_ASSIGN_OR_RETURN(offset, inode_->DataSize());
  }
  return WriteAt(buf, len, offset);
}

Result<int64_t> SeekHostFd(int fd, int64_t& cur, int64_t off, int whence) {
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = cur; break;
    case SEEK_END: {
      struct stat st;
      if (fstat(fd, &st) != 0) return Errno(errno);
      base = st.st_size;
      break;
    }
    case SEEK_DATA:
    case SEEK_HOLE: {
      off_t r = lseek(fd, off, whence);
      if (r < 0) return Errno(errno);
      cur = r;
      return cur;
    }
    default: return Errno(EINVAL);
  }
  int64_t n;
  if (__builtin_add_overflow(base, off, &n) || n < 0) return Errno(EINVAL);
  cur = n;
  return cur;
}

Result<int64_t> TmpfsFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  if (inode_->memfd() < 0) {
    // An empty file without a memfd: its end is 0, and no offset is in
    // data or before a hole (shmem_file_llseek(): ENXIO at or past i_size).
    if (whence == SEEK_DATA || whence == SEEK_HOLE) return Errno(ENXIO);
    if (whence == SEEK_END) whence = SEEK_SET;
  }
  return SeekHostFd(inode_->memfd(), offset_, offset, whence);
}

// Through the dentry when there is one: a file opened via the overlay must
// show the overlay's st_dev and st_ino, as stat(2) on its path does.
Result<struct stat> TmpfsFile::Stat() {
  if (dentry()) return dentry()->inode()->Stat();
  return inode_->Stat();
}

Status TmpfsFile::Truncate(int64_t length) {
  SetAttrRequest r;
  r.size = length;
  return inode_->SetAttr(r);
}

Result<long> TmpfsFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    std::lock_guard l(offset_mu_);
    SV_ASSIGN_OR_RETURN(int64_t size, inode_->DataSize());
    int n = size > offset_ ? static_cast<int>(size - offset_) : 0;
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

}  // namespace seedvisor::sentry
