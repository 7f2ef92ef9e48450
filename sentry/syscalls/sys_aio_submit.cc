// io_submit(2) (fs/aio.c's io_submit_one() and __io_submit_one()): each
// iocb runs to its end here (sys_aio.h). Errors found before the operation
// starts fail the iocb, and io_submit returns them if it is the first;
// the operation's own result, a byte count or -errno, is the event's res.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "sentry/fs/eventfd/eventfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_aio.h"
#include "sentry/syscalls/sys_aio_poll.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_ioprio.h"
#include "sentry/vfs/fsnotify.h"

namespace seedvisor::sentry {

using namespace aio_internal;   // NOLINT
using namespace file_internal;  // NOLINT

namespace {

constexpr int kRwfSupported = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND;

// What an operation's result is in the event: ERESTART* (a signal
// interrupted a blocking read) is -EINTR, as aio_rw_done() makes it.
int64_t EventRes(const Result<size_t>& r) {
  if (r.ok()) return static_cast<int64_t>(r.value());
  int e = r.error().value();
  if (e >= kERESTARTSYS && e <= kERESTART_RESTARTBLOCK) e = EINTR;
  return -e;
}

// RWF_NOWAIT on a file that may block (a pipe, socket, terminal): EAGAIN
// unless it is ready now. Regular files never block in the sandbox.
bool WouldBlock(Task& t, FileDescription& f, int fd, short events) {
  if (!f.IsStream()) return false;
  std::vector<pollfd> p{{fd, events, 0}};
  timespec now = MonotonicNowTimespec();
  auto n = DoPoll(t, p, &now);
  return !n.ok() || *n == 0;
}

// aio_read()/aio_write() after aio_prep_rw(): the checks io_submit fails
// with, then the transfer, whose result is returned for the event.
Result<Result<size_t>> ReadWrite(Task& t, const iocb& cb, FileDescription& f, bool write,
                                 bool vectored) {
  if (cb.aio_flags & IOCB_FLAG_IOPRIO) SV_TRY(IoprioCheck(t, cb.aio_reqprio));
  if (cb.aio_rw_flags & ~kRwfSupported) return Errno(EOPNOTSUPP);
  if (write ? !f.writable() : !f.readable()) return Errno(EBADF);
  std::vector<iovec> iov;
  if (vectored) {
    if (cb.aio_nbytes > static_cast<uint64_t>(kUioMaxIov)) return Errno(EINVAL);
    SV_ASSIGN_OR_RETURN(iov, CopyInIovecs(t, UserAddr(cb.aio_buf), int(cb.aio_nbytes)));
  } else {
    iov.push_back({reinterpret_cast<void*>(cb.aio_buf), std::min<size_t>(cb.aio_nbytes, kMaxRw)});
  }
  uint64_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  // rw_verify_area()
  const int64_t pos = cb.aio_offset;
  if (pos < 0 || static_cast<int64_t>(pos + total) < 0) return Errno(EINVAL);
  // A pipe, socket or terminal has no offset: the transfer is at its
  // stream position.
  const bool stream = f.IsStream();
  if ((cb.aio_rw_flags & RWF_NOWAIT) &&
      WouldBlock(t, f, static_cast<int>(cb.aio_fildes), write ? POLLOUT : POLLIN)) {
    return Result<size_t>(Errno(EAGAIN));
  }
  if (!write) {
    size_t done = 0;
    for (const auto& v : iov) {
      Result<size_t> n = ReadToUser(t, f, UserAddr(reinterpret_cast<uint64_t>(v.iov_base)),
                                    v.iov_len, stream ? -1 : pos + int64_t(done));
      if (!n.ok()) return done > 0 ? Result<size_t>(done) : n;
      done += *n;
      if (*n < v.iov_len || (stream && done > 0)) break;
    }
    return Result<size_t>(done);
  }
  int64_t at = stream ? -1 : pos;
  if (!stream && ((cb.aio_rw_flags & RWF_APPEND) || (f.flags() & O_APPEND))) {
    SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
    at = st.st_size;
  }
  Result<std::string> data = GatherFromUser(t, iov);
  if (!data.ok()) return Result<size_t>(data.error());
  // generic_write_checks() in the write_iter: its EFBIG is the event's.
  Result<size_t> allowed = LimitToFileSize(t, f, data->size(), at);
  if (!allowed.ok()) return Result<size_t>(allowed.error());
  data->resize(*allowed);
  Result<size_t> n = at >= 0 ? f.PWrite(t, data->data(), data->size(), at)
                             : f.Write(t, data->data(), data->size());
  if (n.ok() && *n > 0) FsnotifyFile(f, IN_MODIFY);
  if (n.ok() && (cb.aio_rw_flags & (RWF_DSYNC | RWF_SYNC))) {
    if (Status s = f.Sync(); !s.ok()) return Result<size_t>(s.error());
  }
  return n;
}

// aio_fsync(): no buffer, offset, length or flags; files without ->fsync
// (pipes, sockets, terminals, eventfds) are EINVAL.
Result<Result<size_t>> Fsync(const iocb& cb, FileDescription& f) {
  if (cb.aio_buf || cb.aio_offset || cb.aio_nbytes || cb.aio_rw_flags) return Errno(EINVAL);
  if (f.IsStream()) return Errno(EINVAL);
  Status s = f.Sync();
  if (!s.ok()) return Result<size_t>(s.error());
  return Result<size_t>(size_t{0});
}

// aio_poll(): the iocb's aio_buf holds the poll events; the event's res is
// the ready mask. A file ready now completes at once; else the request
// stays in flight until it is (sys_aio_poll.h): nullopt.
Result<std::optional<Result<size_t>>> Poll(Task& t, const iocb& cb, const FileRef& f,
                                           const std::shared_ptr<AioContext>& ctx,
                                           const io_event& ev, const FileRef& eventfd) {
  if (cb.aio_offset || cb.aio_nbytes || cb.aio_rw_flags || (cb.aio_buf >> 16)) {
    return Errno(EINVAL);
  }
  short events = static_cast<short>(cb.aio_buf) | POLLERR | POLLHUP;
  std::vector<pollfd> p{{static_cast<int>(cb.aio_fildes), events, 0}};
  timespec now = MonotonicNowTimespec();
  SV_ASSIGN_OR_RETURN(int n, DoPoll(t, p, &now));
  if (n > 0) {
    return std::optional<Result<size_t>>(
        Result<size_t>(static_cast<size_t>(static_cast<unsigned short>(p[0].revents))));
  }
  AddPendingPoll(ctx, PendingPoll{f, events, ev, eventfd});
  return std::optional<Result<size_t>>();
}

// io_submit_one().
Status SubmitOne(Task& t, const std::shared_ptr<AioContext>& ctx_ref, UserAddr user_iocb) {
  AioContext& ctx = *ctx_ref;
  iocb cb;
  SV_TRY(t.CopyInObj(user_iocb, &cb));
  if (cb.aio_reserved2) return Errno(EINVAL);
  if (static_cast<int64_t>(cb.aio_nbytes) < 0) return Errno(EINVAL);
  if (!HasRoom(t, ctx)) return Errno(EAGAIN);
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, static_cast<int>(cb.aio_fildes)));
  FileRef eventfd;
  if (cb.aio_flags & IOCB_FLAG_RESFD) {
    SV_ASSIGN_OR_RETURN(eventfd, GetFile(t, static_cast<int>(cb.aio_resfd)));
    if (dynamic_cast<EventFdFile*>(eventfd.get()) == nullptr) return Errno(EINVAL);
  }
  const uint32_t key = 0;  // KIOCB_KEY
  SV_TRY(t.CopyOutObj(user_iocb + offsetof(iocb, aio_key), key));
  io_event ev{.data = cb.aio_data, .obj = user_iocb.value(), .res = 0, .res2 = 0};
  if (cb.aio_lio_opcode == IOCB_CMD_POLL) {
    SV_ASSIGN_OR_RETURN(auto done, Poll(t, cb, f, ctx_ref, ev, eventfd));
    if (done.has_value()) {
      ev.res = EventRes(*done);
      Complete(t, ctx, ev, eventfd);
    }
    return {};
  }
  Result<Result<size_t>> r = Errno(EINVAL);
  switch (cb.aio_lio_opcode) {
    case IOCB_CMD_PREAD: r = ReadWrite(t, cb, *f, false, false); break;
    case IOCB_CMD_PWRITE: r = ReadWrite(t, cb, *f, true, false); break;
    case IOCB_CMD_PREADV: r = ReadWrite(t, cb, *f, false, true); break;
    case IOCB_CMD_PWRITEV: r = ReadWrite(t, cb, *f, true, true); break;
    case IOCB_CMD_FSYNC:
    case IOCB_CMD_FDSYNC: r = Fsync(cb, *f); break;
    default: break;
  }
  if (!r.ok()) return r.error();
  ev.res = EventRes(*r);
  Complete(t, ctx, ev, eventfd);
  return {};
}

}  // namespace

// io_submit(2): the number of iocbs taken (at most the ring's size), or the
// first one's error.
SyscallReturn SysIoSubmit(Task& t, const SyscallArgs& a) {
  long nr = a.Long(1);
  if (nr < 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(auto ctx, LookupContext(t, a.Ulong(0)));
  CompleteReadyPolls(t, *ctx);
  nr = std::min<long>(nr, ctx->nr_events());
  long i = 0;
  Status err;
  for (; i < nr; ++i) {
    uint64_t p;
    err = t.CopyInObj(a.Addr(2) + uint64_t(i) * sizeof(uint64_t), &p);
    if (err.ok()) err = SubmitOne(t, ctx, UserAddr(p));
    if (!err.ok()) break;
  }
  if (i > 0) return static_cast<uint64_t>(i);
  if (!err.ok()) return err.error();
  return 0;
}

}  // namespace seedvisor::sentry
