#include "sentry/socket/netlink_socket.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/if_ioctl.h"
#include "sentry/socket/netlink_route.h"

namespace seedvisor::sentry {

namespace {

// The netlink port ids in use by the sandbox's NetlinkSockets.
std::mutex g_ports_mu;
std::set<uint32_t>* g_ports = new std::set<uint32_t>;
uint32_t g_next_port = 0xfffff000u;  // netlink_autobind() also counts down from -4096

// A sockaddr_nl from the guest's bytes: EINVAL unless it is one.
Result<sockaddr_nl> ParseAddr(const std::string& addr) {
  if (addr.size() < sizeof(sockaddr_nl)) return Errno(EINVAL);
  sockaddr_nl sa;
  memcpy(&sa, addr.data(), sizeof(sa));
  if (sa.nl_family != AF_NETLINK) return Errno(EINVAL);
  return sa;
}

std::string AddrBytes(uint32_t port) {
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_pid = port;
  return std::string(reinterpret_cast<const char*>(&sa), sizeof(sa));
}

Result<std::string> IntOpt(int v, size_t optlen) {
  if (optlen < sizeof(int)) return Errno(EINVAL);
  return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
}

}  // namespace

Result<FileRef> NewNetlinkSocket(Task& t, int type, int protocol, int flags, bool host_network) {
  (void)t;
  if (type != SOCK_RAW && type != SOCK_DGRAM) return Errno(ESOCKTNOSUPPORT);
  if (protocol != NETLINK_ROUTE) return Errno(EPROTONOSUPPORT);
  if (host_network) {
    SV_ASSIGN_OR_RETURN(int hfd, NewHostSocket(AF_NETLINK, type, protocol, true));
    return FileRef(std::make_shared<HostNetlinkSocket>(flags, hfd, AF_NETLINK));
  }
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Errno(errno);
  return FileRef(std::make_shared<NetlinkSocket>(flags, type, efd));
}

absl::Status NetlinkSocket::AdoptInForkChild(ForkFileContext&) {
  std::lock_guard l(mu_);
  int fd = eventfd(ready_ ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("netlink socket: eventfd: ", strerror(errno)));
  int r = dup3(fd, efd_, O_CLOEXEC);  // the number stays ours
  int e = errno;
  close(fd);
  if (r < 0) return absl::InternalError(absl::StrCat("netlink socket: dup3: ", strerror(e)));
  return absl::OkStatus();
}

NetlinkSocket::NetlinkSocket(int flags, int type, int efd) : Socket(flags), type_(type), efd_(efd) {}

NetlinkSocket::~NetlinkSocket() {
  close(efd_);
  if (port_) {
    std::lock_guard<std::mutex> l(g_ports_mu);
    g_ports->erase(port_);
  }
}

Status NetlinkSocket::BindLocked(Task& t, uint32_t port) {
  std::lock_guard<std::mutex> l(g_ports_mu);
  if (port == 0) {
    // The first socket of a process gets its pid, later ones a counter.
    port = static_cast<uint32_t>(t.tgid());
    while (g_ports->count(port)) port = g_next_port--;
  } else if (g_ports->count(port)) {
    return Errno(EADDRINUSE);
  }
  g_ports->insert(port);
  port_ = port;
  return {};
}

Status NetlinkSocket::Bind(Task& t, const std::string& addr) {
  SV_ASSIGN_OR_RETURN(sockaddr_nl sa, ParseAddr(addr));
  std::lock_guard<std::mutex> l(mu_);
  if (port_) return sa.nl_pid == port_ ? Status{} : Errno(EINVAL);
  // Multicast groups are accepted; the sandbox's network never changes, so
  // no notification ever arrives.
  return BindLocked(t, sa.nl_pid);
}

Status NetlinkSocket::Connect(Task& t, const std::string& addr) {
  SV_ASSIGN_OR_RETURN(sockaddr_nl sa, ParseAddr(addr));
  if (sa.nl_pid != 0 || sa.nl_groups != 0) return Errno(ECONNREFUSED);
  std::lock_guard<std::mutex> l(mu_);
  if (!port_) SV_TRY(BindLocked(t, 0));
  return {};
}

void NetlinkSocket::SetReadyLocked() {
  bool want = !queue_.empty() || pending_error_ != 0;
  if (want == ready_) return;
  uint64_t v = 1;
  if (want) {
    (void)!write(efd_, &v, sizeof(v));
  } else {
    (void)!read(efd_, &v, sizeof(v));
  }
  ready_ = want;
}

void NetlinkSocket::DeliverFromKernel(std::string msg) {
  std::lock_guard<std::mutex> l(mu_);
  queued_bytes_ += msg.size();
  queue_.push_back(std::move(msg));
  SetReadyLocked();
}

Result<size_t> NetlinkSocket::SendMsg(Task& t, const MsgIn& m) {
  if (!m.addr.empty()) {
    SV_ASSIGN_OR_RETURN(sockaddr_nl sa, ParseAddr(m.addr));
    if (sa.nl_groups != 0) return Errno(EPERM);  // multicast needs privilege
    if (sa.nl_pid != 0) return Errno(ECONNREFUSED);  // no other ports to talk to
  }
  std::lock_guard<std::mutex> l(mu_);
  if (m.data.size() > static_cast<size_t>(sndbuf_)) return Errno(EMSGSIZE);
  if (!port_) SV_TRY(BindLocked(t, 0));
  std::vector<std::string> replies;
  HandleRouteRequests(SandboxNetView(t.kernel()), m.data, port_, &replies);
  // A reader that never reads cannot make the sentry grow without bound:
  // replies past the receive buffer are dropped and the next read fails
  // with ENOBUFS, as netlink_overrun() reports.
  const size_t limit = std::max<size_t>(static_cast<size_t>(rcvbuf_), 64 * 1024);
  for (std::string& r : replies) {
    if (queued_bytes_ + r.size() > limit) {
      pending_error_ = ENOBUFS;
      break;
    }
    queued_bytes_ += r.size();
    queue_.push_back(std::move(r));
  }
  SetReadyLocked();
  return m.data.size();
}

Result<MsgOut> NetlinkSocket::RecvMsg(Task& t, char* buf, size_t len, int flags, size_t) {
  bool nb = nonblocking() || (flags & MSG_DONTWAIT);
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (pending_error_) {
        int e = pending_error_;
        pending_error_ = 0;
        SetReadyLocked();
        return Errno(e);
      }
      if (!queue_.empty()) {
        const std::string& d = queue_.front();
        MsgOut out;
        size_t n = std::min(len, d.size());
        memcpy(buf, d.data(), n);
        // MSG_TRUNC asks for the datagram's real length (glibc peeks with
        // it to size its buffer).
        out.len = (flags & MSG_TRUNC) ? d.size() : n;
        if (d.size() > len) out.flags |= MSG_TRUNC;
        out.addr = AddrBytes(0);  // from the kernel
        if (!(flags & MSG_PEEK)) {
          queued_bytes_ -= d.size();
          queue_.pop_front();
          SetReadyLocked();
        }
        return out;
      }
    }
    if (nb) return Errno(EAGAIN);
    SV_TRY(TaskBlockOnFd(t, efd_, POLLIN));
  }
}

Result<std::string> NetlinkSocket::GetSockName() {
  std::lock_guard<std::mutex> l(mu_);
  return AddrBytes(port_);
}

Result<std::string> NetlinkSocket::GetPeerName() { return AddrBytes(0); }

Result<std::string> NetlinkSocket::GetSockOpt(Task&, int level, int name, size_t optlen) {
  std::lock_guard<std::mutex> l(mu_);
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_TYPE: return IntOpt(type_, optlen);
      case SO_DOMAIN: return IntOpt(AF_NETLINK, optlen);
      case SO_PROTOCOL: return IntOpt(NETLINK_ROUTE, optlen);
      case SO_RCVBUF: return IntOpt(rcvbuf_, optlen);
      case SO_SNDBUF: return IntOpt(sndbuf_, optlen);
      case SO_ERROR: {
        int e = pending_error_;
        pending_error_ = 0;
        SetReadyLocked();
        return IntOpt(e, optlen);
      }
      default: return Errno(ENOPROTOOPT);
    }
  }
  if (level == SOL_NETLINK) return IntOpt(0, optlen);
  return Errno(ENOPROTOOPT);
}

Status NetlinkSocket::SetSockOpt(Task&, int level, int name, const std::string& val) {
  if (level != SOL_SOCKET && level != SOL_NETLINK) return Errno(ENOPROTOOPT);
  if (val.size() < sizeof(int)) return Errno(EINVAL);
  int v;
  memcpy(&v, val.data(), sizeof(v));
  std::lock_guard<std::mutex> l(mu_);
  if (level == SOL_SOCKET) {
    // socket(7): the kernel doubles the value for its bookkeeping.
    constexpr int kMax = 16 << 20;
    if (name == SO_RCVBUF || name == SO_RCVBUFFORCE) rcvbuf_ = std::clamp(v, 1152, kMax) * 2;
    if (name == SO_SNDBUF || name == SO_SNDBUFFORCE) sndbuf_ = std::clamp(v, 2304, kMax) * 2;
  }
  // Everything else (SO_PASSCRED, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK,
  // group memberships ...) changes nothing the sandbox's replies depend on.
  return {};
}

Result<struct stat> NetlinkSocket::Stat() {
  struct stat st {};
  if (fstat(efd_, &st) != 0) return Errno(errno);
  st.st_mode = S_IFSOCK | 0777;
  return st;
}

Result<long> NetlinkSocket::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  return CommonIoctl(t, cmd, arg);  // netlink_ioctl() has none of its own
}

std::string NetlinkSocket::DisplayPath() const {
  struct stat st {};
  fstat(efd_, &st);
  return absl::StrCat("socket:[", st.st_ino, "]");
}

Status HostNetlinkSocket::Connect(Task& t, const std::string& addr) {
  SV_ASSIGN_OR_RETURN(sockaddr_nl sa, ParseAddr(addr));
  if (sa.nl_pid != 0 || sa.nl_groups != 0) return Errno(EPERM);
  return HostSocket::Connect(t, addr);
}

Result<size_t> HostNetlinkSocket::SendMsg(Task& t, const MsgIn& m) {
  if (!m.addr.empty()) {
    SV_ASSIGN_OR_RETURN(sockaddr_nl sa, ParseAddr(m.addr));
    if (sa.nl_pid != 0 || sa.nl_groups != 0) return Errno(EPERM);
  }
  // Control messages would carry the sentry's own fds or credentials.
  if (!m.control.empty()) return Errno(EINVAL);
  if (!RouteBatchIsReadOnly(m.data)) return Errno(EPERM);
  return HostSocket::SendMsg(t, m);
}

}  // namespace seedvisor::sentry
