// sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg: guest buffers and
// msghdrs are flattened here; Socket::SendMsg/RecvMsg do the rest.
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/socket.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_socket.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr size_t kMaxControl = 64 * 1024;  // well above sysctl_optmem_max's default

// sockfd_lookup_light(): an O_PATH file is no file for a socket call (EBADF).
Result<Socket*> GetSocket(Task& t, int fd, FileRef* hold) {
  SV_ASSIGN_OR_RETURN(*hold, GetIoFile(t, fd));
  Socket* s = AsSocket(**hold);
  if (!s) return Errno(ENOTSOCK);
  return s;
}

Result<std::vector<iovec>> CopyInIovecs(Task& t, UserAddr addr, uint64_t n) {
  if (n > static_cast<uint64_t>(kUioMaxIov)) return Errno(EMSGSIZE);
  std::vector<iovec> v(n);
  if (n) SV_TRY(t.CopyIn(addr, v.data(), n * sizeof(iovec)));
  size_t total = 0;
  for (const iovec& i : v) {
    if (i.iov_len > kMaxRw) return Errno(EINVAL);
    total += i.iov_len;
    if (total > kMaxRw) return Errno(EINVAL);
  }
  return v;
}

size_t TotalLen(const std::vector<iovec>& v) {
  size_t n = 0;
  for (const iovec& i : v) n += i.iov_len;
  return n;
}

// EPIPE on a send to a stream socket raises SIGPIPE unless MSG_NOSIGNAL
// (send(2); Socket::EpipeRaisesSigpipe).
SyscallReturn FinishSend(Task& t, const Socket& s, Result<size_t> r, int flags) {
  if (!r.ok() && r.error() == Errno(EPIPE) && !(flags & MSG_NOSIGNAL) && s.EpipeRaisesSigpipe()) {
    siginfo_t info{};
    info.si_signo = SIGPIPE;
    info.si_code = SI_USER;
    info.si_pid = t.tgid();
    absl::MutexLock l(&t.kernel().mu());
    (void)t.kernel().SendTaskSignal(t, info);
  }
  // No room: the next writable edge signals an O_ASYNC owner (SOCKWQ_ASYNC_NOSPACE).
  if (!r.ok() && r.error() == Errno(EAGAIN)) s.NoteAsyncOutWanted();
  if (!r.ok()) return r.error();
  return static_cast<uint64_t>(*r);
}

Status CopyOutAddrLen(Task& t, UserAddr addr, UserAddr lenp, const std::string& sa) {
  if (addr.IsNull() || lenp.IsNull()) return {};
  int32_t len;
  SV_TRY(t.CopyInObj(lenp, &len));
  if (len < 0) return Errno(EINVAL);
  size_t n = std::min(static_cast<size_t>(len), sa.size());
  if (n) SV_TRY(t.CopyOut(addr, sa.data(), n));
  int32_t full = static_cast<int32_t>(sa.size());
  return t.CopyOutObj(lenp, full);
}

// One sendmsg(2) of the guest msghdr at `mh`.
SyscallReturn SendOne(Task& t, Socket& s, UserAddr mh, int flags) {
  msghdr h;
  SV_TRY(t.CopyInObj(mh, &h));
  MsgIn m;
  m.flags = flags;
  SV_ASSIGN_OR_RETURN(auto iov, CopyInIovecs(t, UserAddr(reinterpret_cast<uint64_t>(h.msg_iov)),
                                              h.msg_iovlen));
  m.data.resize(TotalLen(iov));
  size_t off = 0;
  for (const iovec& i : iov) {
    if (i.iov_len) {
      SV_TRY(t.CopyIn(UserAddr(reinterpret_cast<uint64_t>(i.iov_base)), m.data.data() + off,
                      i.iov_len));
    }
    off += i.iov_len;
  }
  if (h.msg_name && h.msg_namelen) {
    if (h.msg_namelen > sizeof(sockaddr_storage)) return Errno(EINVAL);
    m.addr.resize(h.msg_namelen);
    SV_TRY(t.CopyIn(UserAddr(reinterpret_cast<uint64_t>(h.msg_name)), m.addr.data(),
                    h.msg_namelen));
  }
  if (h.msg_control && h.msg_controllen) {
    if (h.msg_controllen > kMaxControl) return Errno(ENOBUFS);
    m.control.resize(h.msg_controllen);
    SV_TRY(t.CopyIn(UserAddr(reinterpret_cast<uint64_t>(h.msg_control)), m.control.data(),
                    h.msg_controllen));
  }
  return FinishSend(t, s, s.SendMsg(t, m), flags);
}

// One recvmsg(2) into the guest msghdr at `mh`.
SyscallReturn RecvOne(Task& t, Socket& s, UserAddr mh, int flags) {
  msghdr h;
  SV_TRY(t.CopyInObj(mh, &h));
  SV_ASSIGN_OR_RETURN(auto iov, CopyInIovecs(t, UserAddr(reinterpret_cast<uint64_t>(h.msg_iov)),
                                              h.msg_iovlen));
  std::vector<char> buf(TotalLen(iov));
  size_t room = h.msg_control ? std::min<size_t>(h.msg_controllen, kMaxControl) : 0;
  SV_ASSIGN_OR_RETURN(MsgOut out, s.RecvMsg(t, buf.data(), buf.size(), flags, room));
  size_t copied = std::min(out.len, buf.size());
  size_t off = 0;
  for (const iovec& i : iov) {
    if (off >= copied) break;
    size_t n = std::min(i.iov_len, copied - off);
    SV_TRY(t.CopyOut(UserAddr(reinterpret_cast<uint64_t>(i.iov_base)), buf.data() + off, n));
    off += n;
  }
  msghdr back = h;
  if (h.msg_name) {
    size_t n = std::min<size_t>(h.msg_namelen, out.addr.size());
    if (n) SV_TRY(t.CopyOut(UserAddr(reinterpret_cast<uint64_t>(h.msg_name)), out.addr.data(), n));
    back.msg_namelen = static_cast<socklen_t>(out.addr.size());
  }
  if (h.msg_control && !out.control.empty()) {
    SV_TRY(t.CopyOut(UserAddr(reinterpret_cast<uint64_t>(h.msg_control)), out.control.data(),
                     out.control.size()));
  }
  back.msg_controllen = out.control.size();
  back.msg_flags = out.flags;
  SV_TRY(t.CopyOutObj(mh, back));
  return static_cast<uint64_t>(out.len);
}

}  // namespace

SyscallReturn SysSendto(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  size_t len = std::min(a.Size(2), kMaxRw);
  int flags = a.Int(3);
  MsgIn m;
  m.flags = flags;
  m.data.resize(len);
  if (len) SV_TRY(t.CopyIn(a.Addr(1), m.data.data(), len));
  if (!a.Addr(4).IsNull() && a.Ulong(5)) {
    if (a.Ulong(5) > sizeof(sockaddr_storage)) return Errno(EINVAL);
    m.addr.resize(a.Ulong(5));
    SV_TRY(t.CopyIn(a.Addr(4), m.addr.data(), m.addr.size()));
  }
  return FinishSend(t, *s, s->SendMsg(t, m), flags);
}

SyscallReturn SysRecvfrom(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  size_t len = std::min(a.Size(2), kMaxRw);
  std::vector<char> buf(len);
  SV_ASSIGN_OR_RETURN(MsgOut out, s->RecvMsg(t, buf.data(), len, a.Int(3), 0));
  size_t n = std::min(out.len, len);
  if (n) SV_TRY(t.CopyOut(a.Addr(1), buf.data(), n));
  SV_TRY(CopyOutAddrLen(t, a.Addr(4), a.Addr(5), out.addr));
  return static_cast<uint64_t>(out.len);
}

SyscallReturn SysSendmsg(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  return SendOne(t, *s, a.Addr(1), a.Int(2));
}

SyscallReturn SysRecvmsg(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  return RecvOne(t, *s, a.Addr(1), a.Int(2));
}

// sendmmsg(2)/recvmmsg(2): one message at a time; an error after the first
// message ends the batch with the count so far.
SyscallReturn SysSendmmsg(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  unsigned n = std::min(a.Uint(2), 1024u);  // UIO_MAXIOV
  unsigned i = 0;
  for (; i < n; ++i) {
    UserAddr mm = a.Addr(1) + i * sizeof(mmsghdr);
    auto r = SendOne(t, *s, mm, a.Int(3));
    if (!r.ok()) {
      if (i == 0) return r.error();
      break;
    }
    uint32_t len = static_cast<uint32_t>(*r);
    SV_TRY(t.CopyOut(mm + offsetof(mmsghdr, msg_len), &len, sizeof(len)));
  }
  return i;
}

SyscallReturn SysRecvmmsg(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  unsigned n = std::min(a.Uint(2), 1024u);
  int flags = a.Int(3);
  // do_recvmmsg(): a timeout is checked after each message only (a call
  // blocks in a receive as recvmsg(2) would, then stops once it is past);
  // an invalid one is EINVAL before anything is received. What is left of
  // it is written back (__sys_recvmmsg()).
  timespec end{};
  const bool timed = !a.Addr(4).IsNull();
  if (timed) {
    timespec ts;
    SV_TRY(t.CopyInObj(a.Addr(4), &ts));
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return Errno(EINVAL);
    if (ts.tv_sec != 0 || ts.tv_nsec != 0) {
      clock_gettime(CLOCK_MONOTONIC, &end);
      end.tv_sec += ts.tv_sec;
      end.tv_nsec += ts.tv_nsec;
      if (end.tv_nsec >= 1000000000) {
        end.tv_sec += 1;
        end.tv_nsec -= 1000000000;
      }
    }
  }
  unsigned i = 0;
  timespec left{};
  for (; i < n; ++i) {
    UserAddr mm = a.Addr(1) + i * sizeof(mmsghdr);
    auto r = RecvOne(t, *s, mm, flags & ~MSG_WAITFORONE);
    if (!r.ok()) {
      if (i == 0) return r.error();
      break;
    }
    uint32_t len = static_cast<uint32_t>(*r);
    SV_TRY(t.CopyOut(mm + offsetof(mmsghdr, msg_len), &len, sizeof(len)));
    if (flags & MSG_WAITFORONE) flags |= MSG_DONTWAIT;
    if (timed) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t ns = (end.tv_sec - now.tv_sec) * 1000000000LL + (end.tv_nsec - now.tv_nsec);
      if (ns <= 0) {
        left = timespec{};
        ++i;
        break;
      }
      left = timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
  }
  if (timed && i > 0) SV_TRY(t.CopyOutObj(a.Addr(4), left));
  return i;
}

}  // namespace seedvisor::sentry
