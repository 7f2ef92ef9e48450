// UnixSocket: options, ioctls, stat and poll readiness.
#include <poll.h>
#include <sys/ioctl.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fd_table.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/socket/unix_socket_internal.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

namespace {

// SOCK_MIN_SNDBUF / SOCK_MIN_RCVBUF on x86-64.
constexpr size_t kMinSndbuf = 4608;
constexpr size_t kMinRcvbuf = 2304;

// SOL_SOCKET options a unix socket keeps and reports but that change
// nothing here (sock_setsockopt() stores them all the same).
bool IsKeptOption(int name) {
  switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
    case SO_KEEPALIVE:
    case SO_BROADCAST:
    case SO_DONTROUTE:
    case SO_PRIORITY:
    case SO_LINGER:
    case SO_TIMESTAMP_OLD:
    case SO_TIMESTAMPNS_OLD:
    case SO_PASSSEC:
    case SO_RCVLOWAT:
    case SO_SNDLOWAT:
    case SO_MARK:
    case SO_BSDCOMPAT:
    case SO_NO_CHECK:
    case SO_RXQ_OVFL:
    case SO_WIFI_STATUS:
    case SO_BUSY_POLL:
      return true;
    default:
      return false;
  }
}

std::string DefaultOption(int name) {
  if (name == SO_LINGER) return std::string(sizeof(linger), '\0');
  int v = (name == SO_RCVLOWAT || name == SO_SNDLOWAT) ? 1 : 0;
  return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
}

}  // namespace

Result<std::string> UnixSocket::GetSockOpt(Task& t, int level, int name, size_t optlen) {
  if (level != SOL_SOCKET) return Errno(EOPNOTSUPP);
  auto as_int = [&](int v) -> Result<std::string> {
    if (optlen < sizeof(int)) return Errno(EINVAL);
    return std::string(reinterpret_cast<char*>(&v), sizeof(v));
  };
  if (name == kSoPeerPidfd) {
    // sk_getsockopt(): a new pidfd of sk_peer_pid (ENODATA if none).
    if (optlen < sizeof(int)) return Errno(EINVAL);
    std::shared_ptr<ThreadGroup> tg;
    {
      std::lock_guard l(Mu());
      tg = peer_tg_;
    }
    if (tg == nullptr) return Errno(ENODATA);
    SV_ASSIGN_OR_RETURN(FileRef f, NewPidfd(t, std::move(tg)));
    SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, /*cloexec=*/true));
    return as_int(fd);
  }
  if (name == SO_PEERCRED) {
    // unix(7): the peer's credentials at connect() time, its pid as the
    // caller's pid namespace shows it: pid_vnr() of sk_peer_pid, the number
    // the process had there, also once reaped (0 if it had none there).
    ucred c;
    std::shared_ptr<ThreadGroup> peer;
    {
      std::lock_guard l(Mu());
      c = peer_cred_;
      peer = peer_tg_;
    }
    c.pid = PidNumbers::In(peer != nullptr ? peer->pid_numbers.get() : nullptr, t.pid_ns());
    std::string v(reinterpret_cast<const char*>(&c), sizeof(ucred));
    v.resize(std::min(optlen, sizeof(ucred)));
    return v;
  }
  std::lock_guard l(Mu());
  switch (name) {
    case SO_TYPE: return as_int(type_);
    case SO_DOMAIN: return as_int(AF_UNIX);
    case SO_PROTOCOL: return as_int(0);
    case SO_ACCEPTCONN: return as_int(state_ == State::kListening);
    case SO_ERROR: return as_int(TakeErrorLocked());
    case SO_PASSCRED: return as_int(passcred_);
    case SO_OOBINLINE: return as_int(oobinline_);
    case kSoPassPidfd: return as_int(passpidfd_);
    case SO_SNDBUF: return as_int(static_cast<int>(sndbuf_));
    case SO_RCVBUF: return as_int(static_cast<int>(rcvbuf_));
    case SO_PEEK_OFF: return as_int(peek_off_);
    case SO_PEERSEC: return Errno(ENOPROTOOPT);
    default: break;
  }
  if (!IsKeptOption(name)) return Errno(ENOPROTOOPT);
  auto it = opts_.find(name);
  std::string v = it != opts_.end() ? it->second : DefaultOption(name);
  if (name != SO_LINGER && optlen < sizeof(int)) return Errno(EINVAL);
  v.resize(std::min(optlen, v.size()));
  return v;
}

Status UnixSocket::SetSockOpt(Task& t, int level, int name, const std::string& val) {
  if (level != SOL_SOCKET) return Errno(EOPNOTSUPP);
  int v = 0;
  if (name == SO_LINGER) {
    if (val.size() < sizeof(linger)) return Errno(EINVAL);
  } else {
    if (val.size() < sizeof(int)) return Errno(EINVAL);
    memcpy(&v, val.data(), sizeof(v));
  }
  std::lock_guard l(Mu());
  switch (name) {
    case SO_PASSCRED:
      passcred_ = v != 0;
      return {};
    case kSoPassPidfd:
      passpidfd_ = v != 0;
      return {};
    case SO_OOBINLINE:
      oobinline_ = v != 0;
      return {};
    case SO_PEEK_OFF:  // unix_set_peek_off()
      peek_off_ = v;
      return {};
    case SO_SNDBUF:
    case SO_SNDBUFFORCE: {
      // sock_setsockopt(): doubled, clamped to wmem_max unless forced;
      // writers may go on (sk_write_space()).
      if (name == SO_SNDBUFFORCE && !t.creds().HasCap(CAP_NET_ADMIN)) return Errno(EPERM);
      uint64_t n = static_cast<uint32_t>(v);
      if (name == SO_SNDBUF) n = std::min<uint64_t>(n, Limits().wmem_max);
      n = std::min<uint64_t>(n, INT32_MAX / 2);
      sndbuf_ = std::max<size_t>(n * 2, kMinSndbuf);
      wr_wait_->NotifyAll();
      SyncLocked(false, true);
      return {};
    }
    case SO_RCVBUF:
    case SO_RCVBUFFORCE: {
      if (name == SO_RCVBUFFORCE && !t.creds().HasCap(CAP_NET_ADMIN)) return Errno(EPERM);
      uint64_t n = static_cast<uint32_t>(v);
      if (name == SO_RCVBUF) n = std::min<uint64_t>(n, Limits().rmem_max);
      n = std::min<uint64_t>(n, INT32_MAX / 2);
      rcvbuf_ = std::max<size_t>(n * 2, kMinRcvbuf);
      return {};
    }
    case SO_TYPE:
    case SO_DOMAIN:
    case SO_PROTOCOL:
    case SO_ACCEPTCONN:
    case SO_ERROR:
    case SO_PEERCRED:
    case SO_PEERSEC:
    case kSoPeerPidfd:
      return Errno(ENOPROTOOPT);
    default:
      break;
  }
  if (!IsKeptOption(name)) return Errno(ENOPROTOOPT);
  opts_[name] = name == SO_LINGER ? val.substr(0, sizeof(linger)) : val.substr(0, sizeof(int));
  return {};
}

Result<struct stat> UnixSocket::Stat() {
  struct stat st {};
  st.st_mode = S_IFSOCK | 0777;
  st.st_ino = ino_;
  st.st_dev = 0x8;  // sockfs
  st.st_nlink = 1;
  st.st_uid = owner_.uid;
  st.st_gid = owner_.gid;
  st.st_blksize = 4096;
  return st;
}

size_t UnixSocket::BytesReadable() const {
  std::lock_guard l(Mu());
  // unix_inq_len(): all of a stream or seqpacket queue, a datagram's first.
  if (type_ == SOCK_DGRAM) return rcvq_.empty() ? 0 : rcvq_.front().left();
  size_t n = 0;
  for (const Message& m : rcvq_) n += m.left();
  return n;
}

Result<long> UnixSocket::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD || cmd == TIOCOUTQ) {
    int n;
    {
      std::lock_guard l(Mu());
      if (cmd == FIONREAD && state_ == State::kListening) return Errno(EINVAL);
    }
    if (cmd == FIONREAD) {
      // Linux 6.17+ answers a stream socket's FIONREAD from a running
      // count (u->inq_len) that manage_oob() does not lower when a read
      // drops an out-of-band byte it reached first: each stays counted.
      size_t dropped;
      {
        std::lock_guard l(Mu());
        dropped = type_ == SOCK_STREAM ? dropped_oob_ : 0;
      }
      n = static_cast<int>(std::min<size_t>(BytesReadable() + dropped, INT32_MAX));
    } else {
      std::lock_guard l(Mu());
      n = static_cast<int>(std::min<size_t>(acct_->wmem, INT32_MAX));  // unix_outq_len()
    }
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  if (cmd == SIOCATMARK) {
    // unix_ioctl(): stream sockets only.
    if (type_ != SOCK_STREAM) return Errno(EOPNOTSUPP);
    int v;
    {
      std::lock_guard l(Mu());
      v = AtMarkLocked();
    }
    SV_TRY(TaskCopyOut(t, arg, &v, sizeof(v)));
    return 0L;
  }
  return CommonIoctl(t, cmd, arg);
}

// ---- Readiness ----

int UnixSocket::TakeErrorLocked() {
  int e = err_;
  if (e != 0) {
    err_ = 0;
    SyncLocked();
  }
  return e;
}

bool UnixSocket::WritableLocked() const {
  if (state_ == State::kListening) return false;
  // unix_writable(): a quarter of the send buffer or less in flight.
  if (acct_->wmem * 4 > sndbuf_) return false;
  // unix_dgram_poll(): a full receiver that is not connected back to us.
  if (type_ != SOCK_STREAM && peer_ != nullptr && peer_->peer_ != this &&
      peer_->RecvqFullLocked()) {
    return false;
  }
  return true;
}

short UnixSocket::PollMaskLocked() const {
  // unix_poll() / unix_dgram_poll().
  short m = 0;
  if (err_) m |= POLLERR;
  if (shutdown_ == (kRcvShutdown | kSendShutdown)) m |= POLLHUP;
  if (shutdown_ & kRcvShutdown) m |= POLLRDHUP | POLLIN;
  if (!rcvq_.empty() || !acceptq_.empty()) m |= POLLIN;
  if (oob_pending_) m |= POLLPRI;
  if (type_ != SOCK_DGRAM && state_ == State::kUnconnected) m |= POLLHUP;
  if (WritableLocked()) m |= POLLOUT;
  return m;
}

void UnixSocket::SyncLocked(bool in_edge, bool out_edge) const {
  if (mirror_ == nullptr) return;
  if (mirror_->unconnected() && state_ != State::kUnconnected) {
    if (!mirror_->Connect()) return;
  }
  mirror_->Set(PollMaskLocked(), in_edge, out_edge);
}

int UnixSocket::PollFd() const {
  std::lock_guard l(Mu());
  if (mirror_ == nullptr) {
    auto m = std::make_unique<SocketMirror>();
    if (!m->Make(type_, state_ != State::kUnconnected)) return -1;
    mirror_ = std::move(m);
    SyncLocked();
  }
  return mirror_->fd();
}

}  // namespace seedvisor::sentry
