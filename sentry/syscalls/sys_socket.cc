// socket, socketpair, bind, listen, accept, accept4, connect, shutdown,
// getsockname, getpeername, getsockopt, setsockopt over sentry/socket.
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/host_socket.h"
#include "sentry/socket/netstack_socket.h"
#include "sentry/socket/netlink_socket.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_socket.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr int kTypeFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

// sockfd_lookup_light(): an O_PATH file is no file for a socket call (EBADF).
Result<Socket*> GetSocket(Task& t, int fd, FileRef* hold) {
  SV_ASSIGN_OR_RETURN(*hold, GetIoFile(t, fd));
  Socket* s = AsSocket(**hold);
  if (!s) return Errno(ENOTSOCK);
  return s;
}

Result<std::string> CopyInAddr(Task& t, UserAddr addr, uint64_t len) {
  if (len > sizeof(sockaddr_storage)) return Errno(EINVAL);
  std::string s(len, '\0');
  if (len) SV_TRY(t.CopyIn(addr, s.data(), len));
  return s;
}

// Writes an address back as move_addr_to_user() does: truncated to the
// caller's buffer, the full length in *addrlen; EFAULT for a bad length
// pointer or a bad buffer of nonzero length.
Status MoveAddrToUser(Task& t, UserAddr addr, UserAddr lenp, const std::string& sa) {
  int32_t len;
  SV_TRY(t.CopyInObj(lenp, &len));
  if (len < 0) return Errno(EINVAL);
  size_t n = std::min(static_cast<size_t>(len), sa.size());
  if (n) SV_TRY(t.CopyOut(addr, sa.data(), n));
  int32_t full = static_cast<int32_t>(sa.size());
  SV_TRY(t.CopyOutObj(lenp, full));
  return {};
}

// accept(2) writes the peer's address only if asked (a null address).
Status CopyOutAddr(Task& t, UserAddr addr, UserAddr lenp, const std::string& sa) {
  if (addr.IsNull() || lenp.IsNull()) return {};
  return MoveAddrToUser(t, addr, lenp, sa);
}

SyscallReturn InstallFile(Task& t, FileRef f, int type_flags) {
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, type_flags & SOCK_CLOEXEC, 0, FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn DoAccept(Task& t, const SyscallArgs& a, int flags) {
  if (flags & ~kTypeFlags) return Errno(EINVAL);
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  std::string peer;
  auto f = s->Accept(t, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0, &peer);
  if (!f.ok()) {
    // accept(2) is restarted after a handler with SA_RESTART.
    return f.error() == Errno(EINTR) ? Errno(kERESTARTSYS) : f.error();
  }
  SV_TRY(CopyOutAddr(t, a.Addr(1), a.Addr(2), peer));
  return InstallFile(t, *f, flags);
}

}  // namespace

SyscallReturn SysSocket(Task& t, const SyscallArgs& a) {
  int domain = a.Int(0), type = a.Int(1), protocol = a.Int(2);
  int flags = type & kTypeFlags;
  int base = type & ~kTypeFlags;
  int fl = O_RDWR | ((flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
  // __sock_create(): the family's range, then the type's, before any
  // family looks at them.
  if (domain < 0 || domain >= AF_MAX) return Errno(EAFNOSUPPORT);
  if (base < 0 || base > SOCK_PACKET) return Errno(EINVAL);
  switch (domain) {
    case AF_UNIX: {
      if (protocol != 0 && protocol != PF_UNIX) return Errno(EPROTONOSUPPORT);
      SV_ASSIGN_OR_RETURN(auto s, UnixSocket::Create(t, base, fl));
      return InstallFile(t, s, flags);
    }
    case AF_INET:
    case AF_INET6: {
      // --network=sandbox: the sentry's own stack; the guest never gets a
      // host inet socket.
      if (NetService* net = t.kernel().net()) {
        SV_ASSIGN_OR_RETURN(FileRef s, NewNetstackSocket(t, *net, domain, base, protocol, fl));
        return InstallFile(t, s, flags);
      }
      SV_ASSIGN_OR_RETURN(int hfd, NewHostInetSocket(t, domain, type, protocol));
      return InstallFile(t, std::make_shared<HostSocket>(fl, hfd, domain), flags);
    }
    case AF_NETLINK: {
      bool host = t.kernel().options().network == "host";
      SV_ASSIGN_OR_RETURN(FileRef s, NewNetlinkSocket(t, base, protocol, fl, host));
      return InstallFile(t, s, flags);
    }
    case AF_PACKET: {
      // packet_create(): EPERM without CAP_NET_RAW; not implemented with it.
      Status s = CheckHostSocket(NetPrivilegesOf(t), domain, type, protocol);
      return s.ok() ? Errno(EAFNOSUPPORT) : s.error();
    }
    default:
      return Errno(EAFNOSUPPORT);
  }
}

SyscallReturn SysSocketpair(Task& t, const SyscallArgs& a) {
  int domain = a.Int(0), type = a.Int(1), protocol = a.Int(2);
  if (domain == AF_INET || domain == AF_INET6) {
    // __sys_socketpair() makes both sockets first (sock_create(): their
    // type and protocol errors), then inet's socketpair op refuses.
    SV_TRY(CheckHostSocket(NetPrivilegesOf(t), domain, type, protocol));
    return Errno(EOPNOTSUPP);
  }
  if (domain != AF_UNIX) return Errno(EAFNOSUPPORT);
  if (protocol != 0 && protocol != PF_UNIX) return Errno(EPROTONOSUPPORT);
  int flags = type & kTypeFlags;
  SV_ASSIGN_OR_RETURN(auto pair, UnixSocket::Pair(t, type & ~kTypeFlags,
                                                  (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0));
  int limit = FdLimit(t);
  SV_ASSIGN_OR_RETURN(int fd0, t.fds().Install(pair.first, flags & SOCK_CLOEXEC, 0, limit));
  auto fd1 = t.fds().Install(pair.second, flags & SOCK_CLOEXEC, 0, limit);
  if (!fd1.ok()) {
    (void)t.fds().Remove(fd0);
    return fd1.error();
  }
  int out[2] = {fd0, *fd1};
  if (!t.CopyOut(a.Addr(3), out, sizeof(out)).ok()) {
    (void)t.fds().Remove(fd0);
    (void)t.fds().Remove(*fd1);
    return Errno(EFAULT);
  }
  return 0;
}

SyscallReturn SysBind(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_ASSIGN_OR_RETURN(std::string sa, CopyInAddr(t, a.Addr(1), a.Ulong(2)));
  SV_TRY(s->Bind(t, sa));
  return 0;
}

SyscallReturn SysListen(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_TRY(s->Listen(t, a.Int(1)));
  return 0;
}

SyscallReturn SysAccept(Task& t, const SyscallArgs& a) { return DoAccept(t, a, 0); }
SyscallReturn SysAccept4(Task& t, const SyscallArgs& a) { return DoAccept(t, a, a.Int(3)); }

SyscallReturn SysConnect(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_ASSIGN_OR_RETURN(std::string sa, CopyInAddr(t, a.Addr(1), a.Ulong(2)));
  Status st = s->Connect(t, sa);
  // tcp_finish_connect(): the connection's completion signals an O_ASYNC
  // owner POLL_OUT (sk_wake_async(SOCK_WAKE_IO)), also when a blocking
  // connect waited for it; a unix socket's connect signals nothing.
  const bool tcp = (s->family() == AF_INET || s->family() == AF_INET6) &&
                   (s->type() & 0xf) == SOCK_STREAM;
  if (!st.ok() ? st.error() == Errno(EINPROGRESS) : tcp) s->NoteAsyncOutWanted();
  SV_TRY(st);
  return 0;
}

SyscallReturn SysShutdown(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_TRY(s->Shutdown(t, a.Int(1)));
  return 0;
}

SyscallReturn SysGetsockname(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_ASSIGN_OR_RETURN(std::string sa, s->GetSockName());
  SV_TRY(MoveAddrToUser(t, a.Addr(1), a.Addr(2), sa));
  return 0;
}

SyscallReturn SysGetpeername(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  SV_ASSIGN_OR_RETURN(std::string sa, s->GetPeerName());
  SV_TRY(MoveAddrToUser(t, a.Addr(1), a.Addr(2), sa));
  return 0;
}

// SO_RCVTIMEO/SO_SNDTIMEO, old and new names (both a 64-bit timeval on
// x86-64); the sentry applies them (Socket::Retry).
bool IsTimeoutOpt(int level, int name, bool* send) {
  if (level != SOL_SOCKET) return false;
  switch (name) {
    case SO_RCVTIMEO_OLD:
    case SO_RCVTIMEO_NEW:
      *send = false;
      return true;
    case SO_SNDTIMEO_OLD:
    case SO_SNDTIMEO_NEW:
      *send = true;
      return true;
    default:
      return false;
  }
}

SyscallReturn SysGetsockopt(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  int32_t len;
  SV_TRY(t.CopyInObj(a.Addr(4), &len));
  if (len < 0) return Errno(EINVAL);
  if (bool send; IsTimeoutOpt(a.Int(1), a.Int(2), &send)) {
    int64_t ns = s->timeout_ns(send);
    timeval tv{static_cast<time_t>(ns / 1000000000), static_cast<suseconds_t>(ns % 1000000000 / 1000)};
    int32_t n = std::min<int32_t>(len, sizeof(tv));
    SV_TRY(t.CopyOut(a.Addr(3), &tv, n));
    SV_TRY(t.CopyOutObj(a.Addr(4), n));
    return 0;
  }
  SV_ASSIGN_OR_RETURN(std::string v, s->GetSockOpt(t, a.Int(1), a.Int(2),
                                                   std::min<size_t>(len, 4096)));
  if (!v.empty()) SV_TRY(t.CopyOut(a.Addr(3), v.data(), v.size()));
  int32_t out = static_cast<int32_t>(v.size());
  SV_TRY(t.CopyOutObj(a.Addr(4), out));
  return 0;
}

SyscallReturn SysSetsockopt(Task& t, const SyscallArgs& a) {
  FileRef hold;
  SV_ASSIGN_OR_RETURN(Socket * s, GetSocket(t, a.Int(0), &hold));
  uint64_t len = a.Ulong(4);
  if (len > 4096) return Errno(EINVAL);
  std::string v(len, '\0');
  if (len) SV_TRY(t.CopyIn(a.Addr(3), v.data(), len));
  if (bool send; IsTimeoutOpt(a.Int(1), a.Int(2), &send)) {
    timeval tv;
    if (v.size() < sizeof(tv)) return Errno(EINVAL);
    memcpy(&tv, v.data(), sizeof(tv));
    // sock_set_timeout(): usec out of range is EDOM; a negative time is 0.
    if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) return Errno(EDOM);
    int64_t ns = tv.tv_sec < 0 ? 0 : tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL;
    s->set_timeout_ns(send, ns);
    return 0;
  }
  SV_TRY(s->SetSockOpt(t, a.Int(1), a.Int(2), v));
  return 0;
}

}  // namespace seedvisor::sentry
