// splice and copy_file_range, done as a copy through a sentry buffer (the
// files may have no host fd at all). Data and offsets behave as Linux's; the
// zero-copy is what is missing. tee(2) copies what the input pipe holds
// into the output pipe without consuming it; vmsplice(2) copies like
// writev/readv (no page gifting).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <vector>

#include "sentry/fs/pipe/pipe.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_splice.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr size_t kChunk = 1 << 16;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

bool IsPipe(FileDescription& f) { return dynamic_cast<PipeFile*>(&f) != nullptr; }

// Whether Linux gives the file ->splice_read and ->splice_write: regular
// files, devices, FIFOs and sockets do; directories and anonymous-inode
// files (eventfd, timerfd, signalfd, epoll, inotify, pidfd: no file type
// bits in st_mode, as Linux's anon_inode) do not, and splice(2) is EINVAL
// for them before anything is read or written (do_splice_read(),
// do_splice_from()).
bool Splices(FileDescription& f) {
  Result<struct stat> st = f.Stat();
  if (!st.ok()) return false;
  const mode_t type = st->st_mode & S_IFMT;
  return type != 0 && type != S_IFDIR && type != S_IFLNK;
}

// Copies up to `count` bytes; `in_off`/`out_off` < 0 mean the file offset.
// Stops early on a short read or write, like sendfile above.
Result<size_t> Copy(Task& t, FileDescription& in, int64_t* in_off, FileDescription& out,
                    int64_t* out_off, size_t count) {
  std::vector<char> buf(std::min(count, kChunk));
  size_t done = 0;
  while (done < count) {
    size_t want = std::min(count - done, buf.size());
    Result<size_t> n = *in_off >= 0 ? in.PRead(t, buf.data(), want, *in_off)
                                    : in.Read(t, buf.data(), want);
    if (!n.ok()) {
      if (done) break;
      return n.error();
    }
    if (*n == 0) break;
    size_t w = 0;
    while (w < *n) {
      Result<size_t> m = *out_off >= 0 ? out.PWrite(t, buf.data() + w, *n - w, *out_off + w)
                                       : out.Write(t, buf.data() + w, *n - w);
      if (!m.ok()) {
        if (done + w) break;
        return m.error();
      }
      w += *m;
    }
    if (*in_off >= 0) *in_off += static_cast<int64_t>(w);
    if (*out_off >= 0) *out_off += static_cast<int64_t>(w);
    done += w;
    // A short read (a pipe returns what it holds) or write ends the call.
    if (w < *n || *n < want) break;
  }
  return done;
}

Result<int64_t> OffsetArg(Task& t, UserAddr a) {
  if (a.IsNull()) return int64_t{-1};
  int64_t off;
  SV_TRY(t.CopyInObj(a, &off));
  if (off < 0) return Errno(EINVAL);
  return off;
}

// Waits until `p` has room (or no reader: the write then fails with EPIPE).
Status WaitWritable(Task& t, Pipe& p) { return p.WaitWritable(t); }

}  // namespace

SyscallReturn SysTee(Task& t, const SyscallArgs& a) {
  unsigned flags = a.Uint(3);
  if (flags & ~kSpliceFlags) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef in, GetIoFile(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(FileRef out, GetIoFile(t, a.Int(1)));
  if (!in->readable() || !out->writable()) return Errno(EBADF);
  auto* ip = dynamic_cast<PipeFile*>(in.get());
  auto* op = dynamic_cast<PipeFile*>(out.get());
  // tee(2): two different pipes.
  if (!ip || !op) return Errno(EINVAL);
  if (&ip->pipe() == &op->pipe()) return Errno(EINVAL);
  size_t len = std::min(a.Size(2), kMaxRw);
  if (len == 0) return 0;
  // do_tee(): O_NONBLOCK on either file counts as SPLICE_F_NONBLOCK.
  bool nonblock = (flags & SPLICE_F_NONBLOCK) || in->nonblocking() || out->nonblocking();
  std::vector<char> buf(std::min({len, ip->pipe().Capacity(), size_t{1} << 20}));
  for (;;) {
    // Wait for data in the input (ipipe_prep()), then for room in the
    // output (opipe_prep()); what fits is copied, nothing is consumed.
    SV_ASSIGN_OR_RETURN(size_t n, ip->pipe().Peek(t, buf.data(), buf.size(), nonblock));
    if (n == 0) return 0;  // empty with no writer left
    Result<size_t> m = op->pipe().Write(t, buf.data(), n, /*nonblock=*/true, /*packet=*/false);
    if (m.ok() || m.error() != Errno(EAGAIN) || nonblock) {
      SV_ASSIGN_OR_RETURN(size_t w, m);  // EPIPE: the dispatcher sends SIGPIPE
      return w;
    }
    SV_TRY(WaitWritable(t, op->pipe()));
  }
}

SyscallReturn SysVmsplice(Task& t, const SyscallArgs& a) {
  unsigned flags = a.Uint(3);
  if (flags & ~kSpliceFlags) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  auto* p = dynamic_cast<PipeFile*>(f.get());
  if (!p) return Errno(EBADF);  // vmsplice(2): fd must be a pipe
  SV_ASSIGN_OR_RETURN(auto iov, CopyInIovecs(t, a.Addr(1), static_cast<int>(a.Ulong(2))));
  bool nonblock = (flags & SPLICE_F_NONBLOCK) || f->nonblocking();
  if (f->writable()) {
    // Into the pipe: the user pages' bytes, as writev(2); it waits for room
    // once and then queues what fits (vmsplice_to_pipe()).
    SV_ASSIGN_OR_RETURN(std::string data, GatherFromUser(t, iov));
    if (data.empty()) return 0;
    for (;;) {
      Result<size_t> n = p->pipe().Write(t, data.data(), data.size(), /*nonblock=*/true,
                                         (f->flags() & O_DIRECT) != 0);
      if (n.ok() || n.error() != Errno(EAGAIN) || nonblock) {
        SV_ASSIGN_OR_RETURN(size_t w, n);
        return w;
      }
      SV_TRY(WaitWritable(t, p->pipe()));
    }
  }
  if (!f->readable()) return Errno(EBADF);
  // Out of the pipe into the iovecs, as readv(2) (vmsplice_to_user()).
  size_t total = 0;
  for (auto& v : iov) total += v.iov_len;
  total = std::min(total, kMaxRw);
  if (total == 0) return 0;
  std::vector<char> buf(std::min(total, size_t{1} << 20));
  SV_ASSIGN_OR_RETURN(size_t n, p->pipe().Read(t, buf.data(), buf.size(), nonblock));
  size_t done = 0;
  for (auto& v : iov) {
    if (done == n) break;
    size_t c = std::min(v.iov_len, n - done);
    SV_TRY(t.CopyOut(UserAddr(reinterpret_cast<uint64_t>(v.iov_base)), buf.data() + done, c));
    done += c;
  }
  return done;
}

SyscallReturn SysSplice(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef in, GetIoFile(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(FileRef out, GetIoFile(t, a.Int(2)));
  unsigned flags = a.Uint(5);
  if (flags & ~kSpliceFlags) return Errno(EINVAL);
  if (!in->readable() || !out->writable()) return Errno(EBADF);
  if (out->flags() & O_APPEND) return Errno(EINVAL);
  // splice(2): one end must be a pipe, and a pipe takes no offset.
  bool in_pipe = IsPipe(*in), out_pipe = IsPipe(*out);
  if (!in_pipe && !out_pipe) return Errno(EINVAL);
  if ((in_pipe && !a.Addr(1).IsNull()) || (out_pipe && !a.Addr(3).IsNull())) {
    return Errno(ESPIPE);
  }
  // do_splice(): an offset for the other end, if it has no position (a
  // socket, a terminal), is EINVAL, not ESPIPE.
  if ((!a.Addr(1).IsNull() && !in->Positional()) || (!a.Addr(3).IsNull() && !out->Positional())) {
    return Errno(EINVAL);
  }
  if (in.get() == out.get()) return Errno(EINVAL);
  if ((!in_pipe && !Splices(*in)) || (!out_pipe && !Splices(*out))) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(int64_t in_off, OffsetArg(t, a.Addr(1)));
  SV_ASSIGN_OR_RETURN(int64_t out_off, OffsetArg(t, a.Addr(3)));
  size_t count = std::min(a.Size(4), kMaxRw);
  if (count == 0) return 0;
  if (flags & SPLICE_F_NONBLOCK) {
    // splice(2): the pipe operations do not block; an empty input pipe
    // (with a writer left) or a full output pipe is EAGAIN.
    if (in_pipe && !static_cast<PipeFile&>(*in).pipe().ReadableNow()) return Errno(EAGAIN);
    if (out_pipe && !static_cast<PipeFile&>(*out).pipe().WritableNow()) return Errno(EAGAIN);
  }
  SV_ASSIGN_OR_RETURN(size_t n, Copy(t, *in, &in_off, *out, &out_off, count));
  if (!a.Addr(1).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(1), in_off));
  if (!a.Addr(3).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(3), out_off));
  return n;
}

SyscallReturn SysCopyFileRange(Task& t, const SyscallArgs& a) {
  if (a.Uint(5) != 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(FileRef in, GetIoFile(t, a.Int(0)));
  SV_ASSIGN_OR_RETURN(FileRef out, GetIoFile(t, a.Int(2)));
  if (!in->readable() || !out->writable() || (out->flags() & O_APPEND)) return Errno(EBADF);
  SV_ASSIGN_OR_RETURN(struct stat ist, in->Stat());
  SV_ASSIGN_OR_RETURN(struct stat ost, out->Stat());
  if (S_ISDIR(ist.st_mode) || S_ISDIR(ost.st_mode)) return Errno(EISDIR);
  if (!S_ISREG(ist.st_mode) || !S_ISREG(ost.st_mode)) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(int64_t in_off, OffsetArg(t, a.Addr(1)));
  SV_ASSIGN_OR_RETURN(int64_t out_off, OffsetArg(t, a.Addr(3)));
  size_t count = std::min(a.Size(4), kMaxRw);
  // The same file with overlapping ranges is EINVAL (copy_file_range(2)).
  if (ist.st_dev == ost.st_dev && ist.st_ino == ost.st_ino) {
    int64_t ib = in_off >= 0 ? in_off : *in->Seek(0, SEEK_CUR);
    int64_t ob = out_off >= 0 ? out_off : *out->Seek(0, SEEK_CUR);
    if (ib < ob + static_cast<int64_t>(count) && ob < ib + static_cast<int64_t>(count)) {
      return Errno(EINVAL);
    }
  }
  if (count == 0) return 0;
  SV_ASSIGN_OR_RETURN(size_t n, Copy(t, *in, &in_off, *out, &out_off, count));
  if (!a.Addr(1).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(1), in_off));
  if (!a.Addr(3).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(3), out_off));
  return n;
}

}  // namespace seedvisor::sentry
