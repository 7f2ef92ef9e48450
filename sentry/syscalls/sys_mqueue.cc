// POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive,
// mq_notify, mq_getsetattr (ipc/mqueue.c's argument checks, in its order).
// The queues and their filesystem are sentry/fs/mqueue.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/netlink_socket.h"
#include "sentry/socket/socket.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

using file_internal::FdLimit;

// The guest's struct sigevent on x86-64 (64 bytes): the value, the signal,
// the kind, then a union (the thread id for SIGEV_THREAD_ID).
struct GuestSigevent {
  uint64_t value;
  int32_t signo;
  int32_t notify;
  uint8_t rest[48];
};
static_assert(sizeof(GuestSigevent) == 64);

// prepare_timeout(): an absolute CLOCK_REALTIME time, checked before
// anything else (EFAULT, EINVAL), as a CLOCK_MONOTONIC deadline.
Result<bool> CopyInDeadline(Task& t, UserAddr addr, timespec* deadline) {
  if (addr.IsNull()) return false;
  timespec abs;
  SV_TRY(t.CopyInObj(addr, &abs));
  if (abs.tv_sec < 0 || abs.tv_nsec < 0 || abs.tv_nsec >= 1000000000L) return Errno(EINVAL);
  timespec rt, mono;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  int64_t left = (abs.tv_sec - rt.tv_sec) * 1000000000LL + (abs.tv_nsec - rt.tv_nsec);
  if (left < 0) left = 0;
  int64_t ns = mono.tv_sec * 1000000000LL + mono.tv_nsec + left;
  deadline->tv_sec = ns / 1000000000LL;
  deadline->tv_nsec = ns % 1000000000LL;
  return true;
}

// fdget() plus the mqueue_file_operations check: EBADF for anything else.
Result<std::pair<FileRef, MqueueFile*>> GetQueue(Task& t, int fd) {
  auto f = t.fds().Get(fd);
  if (!f.ok()) return Errno(EBADF);
  MqueueFile* mq = AsMqueueFile(**f);
  if (mq == nullptr) return Errno(EBADF);
  return std::make_pair(*f, mq);
}

}  // namespace

SyscallReturn SysMqOpen(Task& t, const SyscallArgs& a) {
  // The attributes are copied in whenever given (EFAULT), even without O_CREAT.
  GuestMqAttr attr{};
  const bool has_attr = !a.Addr(3).IsNull();
  if (has_attr) SV_TRY(t.CopyInObj(a.Addr(3), &attr));
  if (a.Addr(0).IsNull()) return Errno(EFAULT);
  SV_ASSIGN_OR_RETURN(std::string name, t.CopyInString(a.Addr(0), 4096));
  const int oflag = a.Int(1);
  SV_ASSIGN_OR_RETURN(FileRef f, t.kernel().mqueue().Open(t, Vfs::CredsOf(t), name, oflag,
                                                          static_cast<mode_t>(a.Uint(2)),
                                                          (oflag & O_CREAT) && has_attr ? &attr
                                                                                       : nullptr));
  // do_mq_open(): get_unused_fd_flags(O_CLOEXEC), whatever oflag says.
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, /*cloexec=*/true, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysMqUnlink(Task& t, const SyscallArgs& a) {
  if (a.Addr(0).IsNull()) return Errno(EFAULT);
  SV_ASSIGN_OR_RETURN(std::string name, t.CopyInString(a.Addr(0), 4096));
  SV_TRY(t.kernel().mqueue().Unlink(Vfs::CredsOf(t), name));
  return 0;
}

SyscallReturn SysMqTimedsend(Task& t, const SyscallArgs& a) {
  timespec deadline;
  SV_ASSIGN_OR_RETURN(bool timed, CopyInDeadline(t, a.Addr(4), &deadline));
  const uint64_t len = a.Ulong(2);
  if (a.Uint(3) >= kMqPrioMax) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(auto q, GetQueue(t, a.Int(0)));
  MqueueFile& f = *q.second;
  if (!f.writable()) return Errno(EBADF);
  if (len > static_cast<uint64_t>(f.queue().msgsize())) return Errno(EMSGSIZE);
  std::string msg(len, '\0');
  if (len) SV_TRY(t.CopyIn(a.Addr(1), msg.data(), len));
  SV_TRY(f.queue().Send(t, std::move(msg), a.Uint(3), f.nonblocking(), timed ? &deadline : nullptr));
  return 0;
}

SyscallReturn SysMqTimedreceive(Task& t, const SyscallArgs& a) {
  timespec deadline;
  SV_ASSIGN_OR_RETURN(bool timed, CopyInDeadline(t, a.Addr(4), &deadline));
  SV_ASSIGN_OR_RETURN(auto q, GetQueue(t, a.Int(0)));
  MqueueFile& f = *q.second;
  if (!f.readable()) return Errno(EBADF);
  // The buffer must hold the largest message the queue takes.
  if (a.Ulong(2) < static_cast<uint64_t>(f.queue().msgsize())) return Errno(EMSGSIZE);
  SV_ASSIGN_OR_RETURN(MessageQueue::Received r,
                      f.queue().Receive(t, f.nonblocking(), timed ? &deadline : nullptr));
  // The message is taken even if the copy-out faults (do_mq_timedreceive()).
  if (!a.Addr(3).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(3), r.prio));
  if (!r.data.empty()) SV_TRY(t.CopyOut(a.Addr(1), r.data.data(), r.data.size()));
  return r.data.size();
}

SyscallReturn SysMqNotify(Task& t, const SyscallArgs& a) {
  MessageQueue::Notification n;
  const bool set = !a.Addr(1).IsNull();
  if (set) {
    GuestSigevent sev;
    SV_TRY(t.CopyInObj(a.Addr(1), &sev));
    n.notify = sev.notify;
    n.signo = sev.signo;
    n.value = sev.value;
    // do_mq_notify(): the kinds it knows, and a valid signal (0 allowed).
    if (n.notify != SIGEV_NONE && n.notify != SIGEV_SIGNAL && n.notify != SIGEV_THREAD) {
      return Errno(EINVAL);
    }
    if (n.notify == SIGEV_SIGNAL && (n.signo < 0 || n.signo > kNumSignals)) return Errno(EINVAL);
    if (n.notify == SIGEV_THREAD) {
      // The cookie glibc's helper thread gets back, then the netlink socket
      // sigev_signo names (netlink_getsockbyfilp()).
      n.cookie.resize(kMqCookieLen);
      SV_TRY(t.CopyIn(UserAddr(sev.value), n.cookie.data(), n.cookie.size()));
      auto s = t.fds().Get(n.signo);
      if (!s.ok()) return Errno(EBADF);
      Socket* sock = AsSocket(**s);
      if (sock == nullptr) return Errno(ENOTSOCK);
      // Only the sandbox's own netlink sockets can take a message from
      // the sentry; a --network=host one is the host's.
      auto nl = std::dynamic_pointer_cast<NetlinkSocket>(*s);
      if (nl == nullptr) return Errno(ECONNREFUSED);
      n.deliver = [nl](std::string msg) { nl->DeliverFromKernel(std::move(msg)); };
    }
  }
  SV_ASSIGN_OR_RETURN(auto q, GetQueue(t, a.Int(0)));
  SV_TRY(q.second->queue().SetNotification(t, q.second, set ? &n : nullptr));
  return 0;
}

SyscallReturn SysMqGetsetattr(Task& t, const SyscallArgs& a) {
  GuestMqAttr in{};
  const bool set = !a.Addr(1).IsNull();
  if (set) {
    SV_TRY(t.CopyInObj(a.Addr(1), &in));
    if (in.flags & ~static_cast<int64_t>(O_NONBLOCK)) return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(auto q, GetQueue(t, a.Int(0)));
  MqueueFile& f = *q.second;
  GuestMqAttr out{};
  out.flags = f.flags() & O_NONBLOCK;
  out.maxmsg = f.queue().maxmsg();
  out.msgsize = f.queue().msgsize();
  out.curmsgs = f.queue().curmsgs();
  if (set) f.SetStatusFlags((f.flags() & ~O_NONBLOCK) | static_cast<int>(in.flags & O_NONBLOCK));
  if (!a.Addr(2).IsNull()) SV_TRY(t.CopyOutObj(a.Addr(2), out));
  return 0;
}

namespace file_internal {

void FlushOnClose(Task& t, FileDescription& f) {
  ReleaseRecordLocks(f, t.tgid());
  // mqueue_flush_file(): the registering process's close drops its
  // notification.
  if (MqueueFile* mq = AsMqueueFile(f)) mq->queue().FlushOwner(t.tgid());
  DnotifyFlush(t, f);  // dnotify_flush()
}

}  // namespace file_internal
}  // namespace seedvisor::sentry
