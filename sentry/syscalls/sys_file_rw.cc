// read/write and friends, lseek, sendfile, sync, fadvise, fallocate.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "sentry/fs/pipe/pipe.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/inode_flags.h"

// FS_*_FL. Last: glibc 2.36 refuses <sys/mount.h> after it.
#include <linux/fs.h>

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace file_internal {

namespace {
constexpr size_t kChunk = 1 << 20;

// A read's or write's staging buffer between the guest and the file. Up to
// 64 KiB (what most programs ask for at a time) it is on the host thread's
// stack (8 MiB), which stays faulted in; beyond, on the heap. A std::vector
// here cost every call, glibc giving a freed 64 KiB back to the kernel, 16
// page faults (perf of a 64 MiB socket read: bench/RESULTS.md, issue 11).
// Not filled: a read zeroes what it hands the file (ZeroForRead), so that a
// file that reports more bytes than it wrote shows the guest zeros, never
// what an earlier call of this thread left on its stack.
class StagingBuffer {
 public:
  explicit StagingBuffer(size_t n) : size_(n) {
    if (n > sizeof small_) heap_.reset(new char[n]);  // default-initialised: no fill
  }
  char* data() { return heap_ ? heap_.get() : small_; }
  // The first `n` bytes, zeroed: a memset of what a read may fill costs far
  // less than the copy to the guest that follows it.
  char* ZeroForRead(size_t n) { return static_cast<char*>(std::memset(data(), 0, n)); }
  size_t size() const { return size_; }

 private:
  char small_[64 << 10];
  std::unique_ptr<char[]> heap_;
  size_t size_;
};
}  // namespace

Result<FileRef> GetIoFile(Task& t, int fd) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetFile(t, fd));
  if (f->flags() & O_PATH) return Errno(EBADF);
  return f;
}

int FdLimit(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  rlim_t cur = t.tg().rlimits[RLIMIT_NOFILE].rlim_cur;
  if (cur == 0 || cur > (1u << 20)) return 1024;
  return static_cast<int>(cur);
}

// generic_write_check_limits(): a regular file does not grow past
// RLIMIT_FSIZE. A write that starts at or beyond it is EFBIG and sends the
// writer SIGXFSZ; one that crosses it is cut short there. Returns how much
// of `len` may be written at `offset` (-1: the file offset).
namespace {
rlim_t FileSizeLimit(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  return t.tg().rlimits[RLIMIT_FSIZE].rlim_cur;
}

// EFBIG, after send_sig(SIGXFSZ, current, 0).
Errno FileTooBig(Task& t) {
  siginfo_t info{};
  info.si_signo = SIGXFSZ;
  info.si_code = SI_USER;
  info.si_pid = t.tgid();
  info.si_uid = t.creds().ruid;
  absl::MutexLock l(&t.kernel().mu());
  t.kernel().SendTaskSignal(t, info).ok();
  return Errno(EFBIG);
}
}  // namespace

Status CheckFileGrowth(Task& t, uint64_t old_size, uint64_t new_size) {
  if (new_size <= old_size) return {};
  rlim_t limit = FileSizeLimit(t);
  if (limit != RLIM_INFINITY && new_size > limit) return FileTooBig(t);
  return {};
}

Result<size_t> LimitToFileSize(Task& t, FileDescription& f, size_t len, int64_t offset) {
  if (len == 0) return len;
  rlim_t limit = FileSizeLimit(t);
  if (limit == RLIM_INFINITY) return len;
  Result<struct stat> st = f.Stat();
  if (!st.ok() || !S_ISREG(st->st_mode)) return len;
  int64_t pos = offset;
  if (f.flags() & O_APPEND) {
    pos = st->st_size;
  } else if (pos < 0) {
    SV_ASSIGN_OR_RETURN(pos, f.Seek(0, SEEK_CUR));
  }
  if (static_cast<uint64_t>(pos) >= limit) return FileTooBig(t);
  return std::min<uint64_t>(len, limit - static_cast<uint64_t>(pos));
}

namespace {
Result<size_t> ReadToUserOnce(Task& t, FileDescription& f, UserAddr buf, size_t len,
                              int64_t offset);
Result<size_t> WriteFromUserOnce(Task& t, FileDescription& f, UserAddr buf, size_t len,
                                 int64_t offset);
}  // namespace

// vfs_read()/vfs_write(): a transfer of at least one byte is an IN_ACCESS or
// IN_MODIFY.
Result<size_t> ReadToUser(Task& t, FileDescription& f, UserAddr buf, size_t len,
                          int64_t offset) {
  auto n = ReadToUserOnce(t, f, buf, len, offset);
  if (n.ok() && *n > 0) FsnotifyFile(f, IN_ACCESS);
  return n;
}

Result<size_t> WriteFromUser(Task& t, FileDescription& f, UserAddr buf, size_t len,
                             int64_t offset) {
  SV_ASSIGN_OR_RETURN(len, LimitToFileSize(t, f, len, offset));
  auto n = WriteFromUserOnce(t, f, buf, len, offset);
  if (n.ok() && *n > 0) FsnotifyFile(f, IN_MODIFY);
  return n;
}

namespace {

Result<size_t> ReadToUserOnce(Task& t, FileDescription& f, UserAddr buf, size_t len,
                              int64_t offset) {
  len = std::min(len, kMaxRw);
  // Files without a host poll fd (regular files, /dev/zero) never block, so
  // a big read is done in chunks; pipes and terminals get one read.
  bool chunked = !f.IsStream();
  if (!chunked && len > 0) {
    // A stream read consumes its data, so check the destination first:
    // Linux's pipe_read() fails with EFAULT and leaves the data in the pipe.
    size_t avail = std::max<size_t>(f.BytesReadable(), 1);
    if (!t.mm().Accessible(buf, std::min<uint64_t>(len, avail), PROT_WRITE)) {
      return Errno(EFAULT);
    }
  }
  StagingBuffer tmp(std::min(len, kChunk));
  size_t done = 0;
  do {
    size_t want = std::min(len - done, tmp.size());
    char* dst = tmp.ZeroForRead(want);
    Result<size_t> n = offset >= 0 ? f.PRead(t, dst, want, offset + done) : f.Read(t, dst, want);
    if (!n.ok()) {
      if (done > 0) break;
      return n.error();
    }
    if (*n > 0) {
      Status s = t.CopyOut(buf + done, tmp.data(), *n);
      if (!s.ok()) return done > 0 ? Result<size_t>(done) : Result<size_t>(Errno(EFAULT));
    }
    done += *n;
    if (*n < want) break;
  } while (chunked && done < len);
  return done;
}

Result<size_t> WriteFromUserOnce(Task& t, FileDescription& f, UserAddr buf, size_t len,
                                 int64_t offset) {
  len = std::min(len, kMaxRw);
  StagingBuffer tmp(std::min(len, kChunk));
  size_t done = 0;
  do {
    size_t want = std::min(len - done, tmp.size());
    if (want > 0) {
      Status s = t.CopyIn(buf + done, tmp.data(), want);
      if (!s.ok()) return done > 0 ? Result<size_t>(done) : Result<size_t>(Errno(EFAULT));
    }
    Result<size_t> n = offset >= 0 ? f.PWrite(t, tmp.data(), want, offset + done)
                                   : f.Write(t, tmp.data(), want);
    if (!n.ok()) {
      if (done > 0) break;
      return n.error();
    }
    done += *n;
    if (*n < want) break;
  } while (done < len);
  return done;
}

}  // namespace

Result<std::string> GatherFromUser(Task& t, const std::vector<iovec>& iov) {
  std::string data;
  for (auto& v : iov) {
    size_t old = data.size();
    if (old + v.iov_len > kMaxRw) return Errno(EINVAL);
    data.resize(old + v.iov_len);
    if (v.iov_len > 0) {
      Status s = t.CopyIn(UserAddr(reinterpret_cast<uint64_t>(v.iov_base)), data.data() + old,
                          v.iov_len);
      if (!s.ok()) {
        data.resize(old);
        if (old == 0) return Errno(EFAULT);
        break;
      }
    }
  }
  return data;
}

Result<std::vector<iovec>> CopyInIovecs(Task& t, UserAddr addr, int cnt) {
  if (cnt < 0 || cnt > kUioMaxIov) return Errno(EINVAL);
  std::vector<iovec> iov(cnt);
  if (cnt > 0) SV_TRY(t.CopyIn(addr, iov.data(), sizeof(iovec) * cnt));
  uint64_t total = 0;
  for (auto& v : iov) {
    if (static_cast<int64_t>(v.iov_len) < 0) return Errno(EINVAL);
    total += v.iov_len;
    if (total > static_cast<uint64_t>(INT64_MAX)) return Errno(EINVAL);
  }
  return iov;
}

}  // namespace file_internal

namespace {

SyscallReturn ReadV(Task& t, int fd, UserAddr iovp, int cnt, int64_t offset) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, fd));
  SV_TRY(NeedPosition(*f, offset));
  if (!f->readable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(auto iov, CopyInIovecs(t, iovp, cnt));
  uint64_t total = 0;
  for (auto& v : iov) {
    SV_ASSIGN_OR_RETURN(size_t n,
                        ReadToUser(t, *f, UserAddr(reinterpret_cast<uint64_t>(v.iov_base)),
                                   v.iov_len, offset >= 0 ? offset + int64_t(total) : -1));
    total += n;
    if (n < v.iov_len) break;
    // A pipe read that returned data must not block for the next iovec.
    if (f->IsStream() && total > 0) break;
  }
  return total;
}

SyscallReturn WriteV(Task& t, int fd, UserAddr iovp, int cnt, int64_t offset) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, fd));
  SV_TRY(NeedPosition(*f, offset));
  if (!f->writable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(auto iov, CopyInIovecs(t, iovp, cnt));
  // Gather into one buffer so the write is one operation (pipe atomicity).
  SV_ASSIGN_OR_RETURN(std::string data, GatherFromUser(t, iov));
  SV_ASSIGN_OR_RETURN(size_t allowed, LimitToFileSize(t, *f, data.size(), offset));
  data.resize(allowed);
  Result<size_t> n = offset >= 0 ? f->PWrite(t, data.data(), data.size(), offset)
                                 : f->Write(t, data.data(), data.size());
  if (!n.ok()) return n.error();
  if (*n > 0) FsnotifyFile(*f, IN_MODIFY);
  return *n;
}

}  // namespace

namespace {

// /proc/PID/io: a read- or write-family call that reached its file counts,
// with the bytes it moved (vfs_read(), vfs_write(): whatever the file then
// returned). A bad fd, one not open for it, or an invalid offset (EBADF,
// EINVAL), or positioned I/O on a pipe or socket (ESPIPE), never got there.
bool ReachedFile(const SyscallReturn& r) {
  if (r.ok()) return true;
  const int e = r.error().value();
  return e != EBADF && e != EINVAL && e != ESPIPE;
}

SyscallReturn CountedRead(Task& t, SyscallReturn r) {
  if (ReachedFile(r)) t.AccountRead(r.ok() ? static_cast<int64_t>(*r) : 0);
  return r;
}

SyscallReturn CountedWrite(Task& t, SyscallReturn r) {
  if (ReachedFile(r)) t.AccountWrite(r.ok() ? static_cast<int64_t>(*r) : 0);
  return r;
}

SyscallReturn Read(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  if (!f->readable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(size_t n, ReadToUser(t, *f, a.Addr(1), a.Size(2), -1));
  return n;
}

SyscallReturn Write(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  if (!f->writable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(size_t n, WriteFromUser(t, *f, a.Addr(1), a.Size(2), -1));
  return n;
}

// A negative offset is EINVAL before the fd is looked up (ksys_pread64()).
SyscallReturn Pread64(Task& t, const SyscallArgs& a) {
  if (a.Long(3) < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  SV_TRY(NeedPosition(*f, a.Long(3)));
  if (!f->readable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(size_t n, ReadToUser(t, *f, a.Addr(1), a.Size(2), a.Long(3)));
  return n;
}

SyscallReturn Pwrite64(Task& t, const SyscallArgs& a) {
  if (a.Long(3) < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  SV_TRY(NeedPosition(*f, a.Long(3)));
  if (!f->writable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(size_t n, WriteFromUser(t, *f, a.Addr(1), a.Size(2), a.Long(3)));
  return n;
}

}  // namespace

SyscallReturn SysRead(Task& t, const SyscallArgs& a) { return CountedRead(t, Read(t, a)); }

SyscallReturn SysWrite(Task& t, const SyscallArgs& a) { return CountedWrite(t, Write(t, a)); }

SyscallReturn SysPread64(Task& t, const SyscallArgs& a) { return CountedRead(t, Pread64(t, a)); }

SyscallReturn SysPwrite64(Task& t, const SyscallArgs& a) {
  return CountedWrite(t, Pwrite64(t, a));
}

SyscallReturn SysReadv(Task& t, const SyscallArgs& a) {
  return CountedRead(t, ReadV(t, a.Int(0), a.Addr(1), a.Int(2), -1));
}

SyscallReturn SysWritev(Task& t, const SyscallArgs& a) {
  return CountedWrite(t, WriteV(t, a.Int(0), a.Addr(1), a.Int(2), -1));
}

// preadv(fd, iov, cnt, pos_l, pos_h): on x86-64 pos_l holds the whole offset.
SyscallReturn SysPreadv(Task& t, const SyscallArgs& a) {
  if (a.Long(3) < 0) return CountedRead(t, Errno(EINVAL));
  return CountedRead(t, ReadV(t, a.Int(0), a.Addr(1), a.Int(2), a.Long(3)));
}

SyscallReturn SysPwritev(Task& t, const SyscallArgs& a) {
  if (a.Long(3) < 0) return CountedWrite(t, Errno(EINVAL));
  return CountedWrite(t, WriteV(t, a.Int(0), a.Addr(1), a.Int(2), a.Long(3)));
}

SyscallReturn SysLseek(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  unsigned whence = a.Uint(2);
  if (whence > SEEK_HOLE) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(int64_t off, f->Seek(a.Long(1), static_cast<int>(whence)));
  return static_cast<uint64_t>(off);
}

namespace {

// do_sendfile()'s order: the offset is read first (EFAULT), then the input
// is checked (EBADF, ESPIPE for an offset on a file without a position,
// EINVAL for a negative one), then the output.
SyscallReturn Sendfile(Task& t, const SyscallArgs& a) {
  int64_t off = -1;
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyInObj(a.Addr(2), &off));
  SV_ASSIGN_OR_RETURN(FileRef in, GetIoFile(t, a.Int(1)));
  if (!in->readable()) return Errno(EBADF);
  if (!a.Addr(2).IsNull()) {
    SV_TRY(NeedPosition(*in, std::max<int64_t>(off, 0)));
    if (off < 0) return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(FileRef out, GetIoFile(t, a.Int(0)));
  if (!out->writable()) return Errno(EBADF);
  if (out->flags() & O_APPEND) return Errno(EINVAL);
  // A pipe cannot be spliced from into a file (no splice_read: EINVAL
  // before anything blocks); pipe to pipe or file is splice(2)'s job.
  if (dynamic_cast<PipeFile*>(in.get()) != nullptr) return Errno(EINVAL);
  size_t count = std::min(a.Size(3), kMaxRw);
  std::vector<char> buf(std::min<size_t>(count, 1 << 16));
  size_t done = 0;
  while (done < count) {
    size_t want = std::min(count - done, buf.size());
    Result<size_t> n = off >= 0 ? in->PRead(t, buf.data(), want, off) : in->Read(t, buf.data(), want);
    if (!n.ok()) {
      if (done) break;
      return n.error();
    }
    if (*n == 0) break;
    size_t w = 0;
    while (w < *n) {
      Result<size_t> m = out->Write(t, buf.data() + w, *n - w);
      if (!m.ok()) {
        if (done + w) break;
        return m.error();
      }
      w += *m;
    }
    if (off >= 0) off += static_cast<int64_t>(w);
    done += w;
    if (w < *n || *n < want) break;
  }
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), off));
  return done;
}

}  // namespace

// do_sendfile(): counted as both a read and a write.
SyscallReturn SysSendfile(Task& t, const SyscallArgs& a) {
  SyscallReturn r = Sendfile(t, a);
  if (ReachedFile(r)) {
    const int64_t n = r.ok() ? static_cast<int64_t>(*r) : 0;
    t.AccountRead(n);
    t.AccountWrite(n);
  }
  return r;
}

SyscallReturn SysFsync(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  SV_TRY(f->Sync());
  return 0;
}

SyscallReturn SysFdatasync(Task& t, const SyscallArgs& a) { return SysFsync(t, a); }

SyscallReturn SysSync(Task&, const SyscallArgs&) { return 0; }

SyscallReturn SysSyncFs(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  return 0;
}

SyscallReturn SysFadvise64(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  if (f->IsStream()) {
    struct stat st;
    auto s = f->Stat();
    if (s.ok()) st = *s;
    if (s.ok() && S_ISFIFO(st.st_mode)) return Errno(ESPIPE);
  }
  int advice = a.Int(3);
  if (advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE) return Errno(EINVAL);
  return 0;  // advice only
}

SyscallReturn SysSyncFileRange(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  const int64_t off = a.Long(1), len = a.Long(2);
  const unsigned flags = a.Uint(3);
  // sync_file_range() checks the flags and the range before the file type.
  constexpr unsigned kValid =
      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  if (flags & ~kValid) return Errno(EINVAL);
  const uint64_t end = static_cast<uint64_t>(off) + static_cast<uint64_t>(len);
  if (off < 0 || static_cast<int64_t>(end) < 0 || end < static_cast<uint64_t>(off)) {
    return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(struct stat st, f->Stat());
  // Only files with page cache; a pipe, socket or device is ESPIPE.
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISDIR(st.st_mode) &&
      !S_ISLNK(st.st_mode)) {
    return Errno(ESPIPE);
  }
  // Writable data lives in sentry memory (tmpfs, the overlay's upper layer),
  // so there is no writeback to start or wait for, as for fsync(2).
  return 0;
}

SyscallReturn SysFallocate(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  int mode = a.Int(1);
  int64_t off = a.Long(2), len = a.Long(3);
  if (off < 0 || len <= 0) return Errno(EINVAL);
  if (!f->writable()) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(struct stat st, f->Stat());
  if (S_ISFIFO(st.st_mode)) return Errno(ESPIPE);
  if (S_ISDIR(st.st_mode)) return Errno(EISDIR);
  if (!S_ISREG(st.st_mode)) return Errno(ENODEV);
  // vfs_fallocate(): no hole punched in an append-only file (nor a range
  // collapsed or inserted), nothing done to an immutable one.
  if (f->dentry()) {
    const unsigned iflags = InodeFsFlags(*f->dentry()->inode());
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) &&
        (iflags & FS_APPEND_FL)) {
      return Errno(EPERM);
    }
    if (iflags & FS_IMMUTABLE_FL) return Errno(EPERM);
  }
  // The host applies the sentry's limit, not the guest's.
  if (!(mode & FALLOC_FL_KEEP_SIZE)) {
    SV_TRY(CheckFileGrowth(t, static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(off + len)));
  }
  auto hfd = f->MappableFdForWrite();
  if (!hfd.ok()) return hfd.error() == Errno(ENODEV) ? Errno(EOPNOTSUPP) : hfd.error();
  if (fallocate(*hfd, mode, off, len) != 0) return Errno(errno);
  return 0;
}

}  // namespace seedvisor::sentry
