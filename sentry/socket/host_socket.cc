#include "sentry/socket/host_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include <netinet/in.h>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/kernel.h"
#include "sentry/socket/host_policy.h"
#include "sentry/socket/if_ioctl.h"
#include "sentry/socket/netns.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

// net.ipv4.ping_group_range as the sentry sees it, read once; "1 0" (nobody)
// if unreadable, as in a fresh network namespace.
std::pair<gid_t, gid_t> PingGroupRange() {
  static const std::pair<gid_t, gid_t> range = [] {
    std::pair<gid_t, gid_t> r{1, 0};
    if (FILE* f = fopen("/proc/sys/net/ipv4/ping_group_range", "re")) {
      unsigned long lo = 0, hi = 0;
      if (fscanf(f, "%lu %lu", &lo, &hi) == 2) r = {static_cast<gid_t>(lo), static_cast<gid_t>(hi)};
      fclose(f);
    }
    return r;
  }();
  return range;
}

HostSocketKind KindOf(int fd, int family) {
  HostSocketKind k;
  k.family = family;
  socklen_t len = sizeof(k.type);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &k.type, &len);
  return k;
}

const sockaddr* Sa(const std::string& a) { return reinterpret_cast<const sockaddr*>(a.data()); }

}  // namespace

NetPrivileges NetPrivilegesOf(Task& t) {
  NetPrivileges p;
  const Credentials& c = t.creds();
  p.net_raw = c.HasCap(CAP_NET_RAW) && t.kernel().options().net_raw;
  p.net_admin = c.HasCap(CAP_NET_ADMIN);
  p.egid = c.egid;
  p.groups = c.groups;
  std::tie(p.ping_low, p.ping_high) = PingGroupRange();
  return p;
}

namespace {

int TypeOf(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  return type;
}

// An edge-triggered host epoll of `fd`, for one blocking call that found
// the socket polling ready while its host call said EAGAIN: it reports
// the socket's next wakeup, not its standing state. Closed with the call.
class EdgeWait {
 public:
  ~EdgeWait() {
    if (ep_ >= 0) close(ep_);
  }
  bool active() const { return ep_ >= 0; }
  bool Start(int fd, short events) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) return false;
    epoll_event e{};
    e.events = static_cast<uint32_t>(events) | EPOLLRDHUP | EPOLLET;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) != 0) {
      close(ep_);
      ep_ = -1;
      return false;
    }
    return true;
  }
  // Takes the pending edge, before the host call: a wakeup after it stays.
  void Consume() {
    epoll_event e;
    while (epoll_wait(ep_, &e, 1, 0) > 0) {
    }
  }
  int fd() const { return ep_; }

 private:
  int ep_ = -1;
};

}  // namespace

HostSocket::HostSocket(int flags, int host_fd, int family)
    : Socket(flags), fd_(host_fd), family_(family), type_(TypeOf(host_fd)) {}

template <typename Op>
Result<ssize_t> HostSocket::Retry(Task& t, bool block, short events, bool send, Op op) {
  timespec dl{};
  const timespec* deadline = nullptr;
  if (int64_t ns = timeout_ns(send); ns > 0) {
    clock_gettime(CLOCK_MONOTONIC, &dl);
    int64_t total = dl.tv_nsec + ns;
    dl.tv_sec += total / 1000000000;
    dl.tv_nsec = total % 1000000000;
    deadline = &dl;
  }
  EdgeWait edge;
  for (;;) {
    if (edge.active()) edge.Consume();
    ssize_t n = op();
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Errno(errno);
    if (!block) return Errno(EAGAIN);
    int wait_fd = fd_;
    short wait_events = events;
    if (edge.active()) {
      wait_fd = edge.fd();
      wait_events = POLLIN;
    } else {
      pollfd p{fd_, events, 0};
      if (poll(&p, 1, 0) == 1 && edge.Start(fd_, events)) continue;  // ready, yet EAGAIN
    }
    Status s = TaskBlockOnFd(t, wait_fd, wait_events, deadline);
    if (s.ok()) continue;
    if (s.error() == Errno(ETIMEDOUT)) return Errno(EAGAIN);
    // sock_intr_errno(): with a timeout a signal is EINTR, never a restart
    // by SA_RESTART (a sandbox pause still restarts it).
    if (deadline != nullptr && s.error() == Errno(kERESTARTSYS)) return Errno(kERESTARTNOHAND);
    return s.error();
  }
}

bool HostSocket::RecvShutDown() const {
  if (type_ == SOCK_STREAM) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP);  // datagram_poll(): RCV_SHUTDOWN
}

absl::Status HostSocket::AdoptInForkChild(ForkFileContext&) {
  return absl::FailedPreconditionError(absl::StrCat(
      DisplayPath(), " (an AF_INET/AF_INET6 socket) is a host socket, which sandbox fork cannot ",
      "copy into another sandbox: close it before the pause"));
}

HostSocket::~HostSocket() { close(fd_); }

Status HostSocket::Bind(Task& t, const std::string& addr) {
  // inet_bind(): a port below ip_unprivileged_port_start (1024) needs
  // CAP_NET_BIND_SERVICE. The host would ask the sentry, which keeps that
  // capability for its guests; the guest's own is what counts.
  uint16_t port = 0;
  if (addr.size() >= sizeof(sockaddr_in) &&
      (Sa(addr)->sa_family == AF_INET || Sa(addr)->sa_family == AF_INET6)) {
    // sin_port and sin6_port sit at the same offset.
    memcpy(&port, addr.data() + offsetof(sockaddr_in, sin_port), sizeof(port));
    port = ntohs(port);
  }
  if (port != 0 && port < 1024 && !t.creds().HasCap(CAP_NET_BIND_SERVICE)) return Errno(EACCES);
  // SAFETY: the bytes are a sockaddr of addr.size() bytes; the host checks it.
  if (bind(fd_, Sa(addr), static_cast<socklen_t>(addr.size())) != 0) return Errno(errno);
  return {};
}

Status HostSocket::Listen(Task&, int backlog) {
  if (listen(fd_, backlog) != 0) return Errno(errno);
  return {};
}

Result<FileRef> HostSocket::Accept(Task& t, int flags, std::string* peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  SV_ASSIGN_OR_RETURN(ssize_t nfd, Retry(t, !nonblocking(), POLLIN, false, [&] {
                        len = sizeof(ss);
                        return static_cast<ssize_t>(accept4(
                            fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
                      }));
  if (peer) peer->assign(reinterpret_cast<char*>(&ss), len);
  return FileRef(std::make_shared<HostSocket>(O_RDWR | (flags & O_NONBLOCK),
                                              static_cast<int>(nfd), family_));
}

Status HostSocket::Connect(Task& t, const std::string& addr) {
  if (connect(fd_, Sa(addr), static_cast<socklen_t>(addr.size())) == 0) return {};
  if (errno != EINPROGRESS) return Errno(errno);
  if (nonblocking()) return Errno(EINPROGRESS);
  // A blocking connect(2): wait for the handshake, then leave the host
  // socket as a blocking __inet_stream_connect() would. The wait alone
  // leaves it SS_CONNECTING: a later connect then succeeded on the
  // connected socket instead of EISCONN, or after a refusal failed
  // ECONNABORTED whatever its address.
  for (;;) {
    pollfd p{fd_, POLLOUT, 0};
    if (poll(&p, 1, 0) == 1) break;
    SV_TRY(TaskBlockOnFd(t, fd_, POLLOUT));
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    // Refused or reset: back to SS_UNCONNECTED (connect(AF_UNSPEC) on a
    // closed socket changes nothing else), so that it may connect again.
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    (void)connect(fd_, &unspec, sizeof(unspec));
    return Errno(err);
  }
  // Established: the second connect moves it to SS_CONNECTED (0).
  if (connect(fd_, Sa(addr), static_cast<socklen_t>(addr.size())) == 0 || errno == EISCONN) {
    return {};
  }
  return Errno(errno);
}

Result<size_t> HostSocket::SendMsg(Task& t, const MsgIn& m) {
  iovec iov{const_cast<char*>(m.data.data()), m.data.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  if (!m.addr.empty()) {
    h.msg_name = const_cast<char*>(m.addr.data());
    h.msg_namelen = static_cast<socklen_t>(m.addr.size());
  }
  if (!m.control.empty()) {
    SV_TRY(CheckHostSendControl(NetPrivilegesOf(t), KindOf(fd_, family_), m.control));
    h.msg_control = const_cast<char*>(m.control.data());
    h.msg_controllen = m.control.size();
  }
  int hflags = (m.flags & ~MSG_DONTWAIT) | MSG_NOSIGNAL | MSG_DONTWAIT;
  bool nb = nonblocking() || (m.flags & MSG_DONTWAIT);
  SV_ASSIGN_OR_RETURN(ssize_t n,
                      Retry(t, !nb, POLLOUT, true, [&] { return sendmsg(fd_, &h, hflags); }));
  return static_cast<size_t>(n);
}

Result<MsgOut> HostSocket::RecvMsg(Task& t, char* buf, size_t len, int flags, size_t controllen) {
  MsgOut out;
  sockaddr_storage ss{};
  std::vector<char> control(controllen);
  // The error queue is read at once or not at all (ip_recv_error()).
  bool nb = nonblocking() || (flags & (MSG_DONTWAIT | MSG_ERRQUEUE));
  int hflags = (flags & ~(MSG_DONTWAIT | MSG_WAITALL | MSG_CMSG_CLOEXEC)) | MSG_DONTWAIT;
  msghdr h{};
  SV_ASSIGN_OR_RETURN(ssize_t n, Retry(t, !nb, POLLIN, false, [&]() -> ssize_t {
                        iovec iov{buf, len};
                        h = msghdr{};
                        h.msg_iov = &iov;
                        h.msg_iovlen = 1;
                        h.msg_name = &ss;
                        h.msg_namelen = sizeof(ss);
                        h.msg_control = controllen ? control.data() : nullptr;
                        h.msg_controllen = controllen;
                        ssize_t r = recvmsg(fd_, &h, hflags);
                        if (r < 0 && errno == EAGAIN && !nb && RecvShutDown()) {
                          h.msg_namelen = 0;
                          h.msg_controllen = 0;
                          h.msg_flags = 0;
                          return 0;  // a blocking receive's end of file
                        }
                        return r;
                      }));
  out.len = static_cast<size_t>(n);
  // MSG_WAITALL on a stream: keep reading until full, EOF, error or signal.
  if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK) && n > 0) {
    while (out.len < len) {
      auto more = Retry(t, !nb, POLLIN, false,
                        [&] { return recv(fd_, buf + out.len, len - out.len, MSG_DONTWAIT); });
      if (!more.ok() || *more == 0) break;
      out.len += static_cast<size_t>(*more);
    }
  }
  out.addr.assign(reinterpret_cast<char*>(&ss), h.msg_namelen);
  out.control.assign(control.data(), h.msg_controllen);
  out.flags = h.msg_flags;
  return out;
}

Status HostSocket::Shutdown(Task&, int how) {
  if (shutdown(fd_, how) != 0) return Errno(errno);
  return {};
}

Result<std::string> HostSocket::GetSockName() {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Errno(errno);
  return std::string(reinterpret_cast<char*>(&ss), len);
}

Result<std::string> HostSocket::GetPeerName() {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Errno(errno);
  return std::string(reinterpret_cast<char*>(&ss), len);
}

Result<std::string> HostSocket::GetSockOpt(Task&, int level, int name, size_t optlen) {
  SV_TRY(CheckHostGetSockOpt(KindOf(fd_, family_), level, name));
  std::string v(optlen, '\0');
  socklen_t len = static_cast<socklen_t>(optlen);
  if (getsockopt(fd_, level, name, v.data(), &len) != 0) return Errno(errno);
  v.resize(len);
  return v;
}

Status HostSocket::SetSockOpt(Task& t, int level, int name, const std::string& val) {
  HostSocketKind kind = KindOf(fd_, family_);
  if (level == SOL_SOCKET && (name == SO_BINDTODEVICE || name == SO_BINDTOIFINDEX)) {
    int ifindex = 0;
    socklen_t len = sizeof(ifindex);
    kind.bound_to_device =
        getsockopt(fd_, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, &len) == 0 && ifindex != 0;
  }
  SV_TRY(CheckHostSetSockOpt(NetPrivilegesOf(t), kind, level, name, val));
  if (setsockopt(fd_, level, name, val.data(), static_cast<socklen_t>(val.size())) != 0) {
    return Errno(errno);
  }
  return {};
}

Result<struct stat> HostSocket::Stat() {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return Errno(errno);
  return st;
}

Result<long> HostSocket::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  const bool inet = family_ == AF_INET || family_ == AF_INET6;
  switch (cmd) {
    case FIONREAD:
    case TIOCOUTQ: {
      int n = 0;
      if (ioctl(fd_, cmd, &n) != 0) return Errno(errno);
      SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
      return 0L;
    }
    case SIOCGSTAMP:
    case SIOCGSTAMPNS:
    case kSiocgstampNew:
    case kSiocgstampnsNew: {
      // sock_gettstamp() of inet sockets (the last datagram's or segment's
      // arrival; ENOENT before one), from the host socket that received it.
      // Netlink has none (ENOTTY).
      if (!inet) break;
      timespec ts{};  // timeval and long long[2] alike: 16 bytes on x86-64
      if (ioctl(fd_, cmd, &ts) != 0) return Errno(errno);
      SV_TRY(TaskCopyOut(t, arg, &ts, sizeof(ts)));
      return 0L;
    }
    case SIOCATMARK: {
      // tcp_ioctl(): whether the next byte read is the urgent mark. UDP
      // takes no such ioctl (ENOTTY, after CommonIoctl's ifreq read).
      if (!inet) break;
      int n = 0;
      if (ioctl(fd_, SIOCATMARK, &n) != 0) {
        if (errno == ENOTTY) break;
        return Errno(errno);
      }
      SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
      return 0L;
    }
    default:
      // inet_ioctl() -> devinet_ioctl(): IPv4 sockets only.
      if (family_ == AF_INET && IsInetInterfaceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
      break;
  }
  return CommonIoctl(t, cmd, arg);
}

std::string HostSocket::DisplayPath() const {
  struct stat st {};
  fstat(fd_, &st);
  return absl::StrCat("socket:[", st.st_ino, "]");
}

Result<int> NewHostInetSocket(Task& t, int domain, int type, int protocol) {
  SV_TRY(CheckHostSocket(NetPrivilegesOf(t), domain, type, protocol));
  return NewHostSocket(domain, type, protocol, t.kernel().options().network == "host");
}

Result<int> NewHostSocket(int domain, int type, int protocol, bool host_network) {
  int t = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  if (!host_network) return NetnsSocket(domain, t, protocol);
  int fd = socket(domain, t, protocol);
  if (fd < 0) return Errno(errno);
  return fd;
}

}  // namespace seedvisor::sentry
