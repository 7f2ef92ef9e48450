#include "sentry/socket/netstack_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/if_ioctl.h"
#include "sentry/socket/inet_addr.h"
#include "sentry/socket/unix_socket_internal.h"

namespace seedvisor::sentry {
namespace {

using netstack::SockAddr;

std::atomic<uint64_t> g_next_ino{0x40000000};

}  // namespace

NetstackSocket::NetstackSocket(int family, int flags, std::shared_ptr<netstack::TcpEndpoint> tcp)
    : Socket(flags), family_(family), tcp_(std::move(tcp)), ino_(g_next_ino++) {}

NetstackSocket::NetstackSocket(int family, int flags, std::shared_ptr<netstack::UdpEndpoint> udp)
    : Socket(flags), family_(family), udp_(std::move(udp)), ino_(g_next_ino++) {}

NetstackSocket::~NetstackSocket() {
  if (tcp_) tcp_->Close();  // also drops the observer
  if (udp_) {
    udp_->SetObserver(nullptr);
    udp_->Close();
  }
}

void NetstackSocket::Attach(uint32_t uid) {
  std::weak_ptr<FileDescription> self = weak_from_this();
  auto fn = [self] {
    if (auto f = self.lock()) static_cast<NetstackSocket*>(f.get())->Changed();
  };
  uid_ = uid;
  netstack::Endpoint& ep = endpoint();
  ep.SetObserver(fn);
  ep.SetOwner(ino_, uid);
}

uint32_t NetstackSocket::Readiness() const {
  return tcp_ ? tcp_->Readiness() : udp_->Readiness();
}

void NetstackSocket::Changed() {
  std::lock_guard l(mu_);
  waiters_.NotifyAll();
  if (mirror_ == nullptr) return;
  if (mirror_->unconnected() && tcp_ && !tcp_->Unused()) {
    if (!mirror_->Connect()) return;
  }
  uint32_t m = Readiness();
  mirror_->Set(short(m), m & POLLIN, m & POLLOUT);
}

template <typename Op>
auto NetstackSocket::Block(Task& t, bool send, uint32_t events, int flags, Op op)
    -> decltype(op()) {
  const bool nonblock = nonblocking() || (flags & MSG_DONTWAIT);
  unix_internal::SockDeadline dl = unix_internal::DeadlineOf(*this, send);
  for (;;) {
    auto r = op();
    if (r.ok()) {
      // Taking data or queueing it changes readiness without an event
      // from the stack (POLLIN off after a read, POLLOUT off when full).
      Changed();
      return r;
    }
    if (r.error() != Errno(EAGAIN) || nonblock) return r;
    std::unique_lock l(mu_);
    // The observer takes mu_ too: a change after this check wakes us.
    if (Readiness() & events) continue;
    Status s = unix_internal::Wait(waiters_, t, l, dl);
    if (!s.ok()) return s.error();
  }
}

Status NetstackSocket::Bind(Task&, const std::string& addr) {
  SV_ASSIGN_OR_RETURN(SockAddr a, ParseInetAddr(family_, addr, InetUse::kBind));
  // inet6_bind(): an IPv4-mapped address needs a socket that speaks IPv4.
  if (family_ == AF_INET6 && a.ip.is_v4() && v6only_) return Errno(EINVAL);
  // A link-local address needs its interface (sin6_scope_id).
  if (family_ == AF_INET6) SV_TRY(endpoint().SetScope(a.ip, InetScopeId(addr), true));
  return tcp_ ? tcp_->Bind(a) : udp_->Bind(a);
}

Status NetstackSocket::Listen(Task&, int backlog) {
  if (!tcp_) return Errno(EOPNOTSUPP);
  SV_TRY(tcp_->Listen(backlog));
  Changed();
  return {};
}

Result<FileRef> NetstackSocket::Accept(Task& t, int flags, std::string* peer) {
  if (!tcp_) return Errno(EOPNOTSUPP);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<netstack::TcpEndpoint> c,
                      Block(t, false, POLLIN, 0, [&] { return tcp_->Accept(); }));
  auto s = std::make_shared<NetstackSocket>(family_, O_RDWR | (flags & O_NONBLOCK), std::move(c));
  s->v6only_ = v6only_;
  // sk_clone_lock() copies the listener's sk_uid.
  s->Attach(uid_);
  if (peer) {
    auto r = s->tcp_->remote();
    *peer = r.ok() ? FormatInetAddr(family_, *r, s->tcp_->ScopeOf(r->ip)) : std::string();
  }
  return FileRef(s);
}

Status NetstackSocket::Connect(Task& t, const std::string& addr) {
  if (addr.size() >= sizeof(sa_family_t)) {
    sa_family_t fam;
    memcpy(&fam, addr.data(), sizeof fam);
    if (fam == AF_UNSPEC && udp_) return udp_->Disconnect();
  }
  SV_ASSIGN_OR_RETURN(SockAddr a, ParseInetAddr(family_, addr, InetUse::kConnect, v6only_));
  if (family_ == AF_INET6) SV_TRY(endpoint().SetScope(a.ip, InetScopeId(addr), false));
  if (udp_) return udp_->Connect(a);
  Status s = tcp_->Connect(a);
  Changed();
  if (s.ok()) return s;
  // A blocking connect (also one restarted after a signal: EALREADY) waits
  // for the handshake (inet_wait_for_connect()).
  if (s.error() != Errno(EINPROGRESS) && s.error() != Errno(EALREADY)) return s;
  if (nonblocking()) return s;
  Result<int> r = Block(t, true, POLLOUT | POLLHUP | POLLERR, 0, [&]() -> Result<int> {
    netstack::TcpState st = tcp_->state();
    if (st == netstack::TcpState::kSynSent || st == netstack::TcpState::kSynRcvd) {
      return Errno(EAGAIN);
    }
    return tcp_->TakeError();
  });
  if (!r.ok()) {
    // Interrupted: the handshake goes on; a timeout is EINPROGRESS
    // (inet_stream_connect(): sock_sndtimeo ran out).
    return r.error() == Errno(EAGAIN) ? Errno(EINPROGRESS) : r.error();
  }
  if (*r) return Errno(*r);
  return {};
}

Result<size_t> NetstackSocket::SendMsg(Task& t, const MsgIn& m) {
  if (udp_) {
    std::optional<SockAddr> to;
    if (!m.addr.empty()) {
      // ping_v6_sendmsg() takes only a whole sockaddr_in6, rawv6_sendmsg()
      // one of at least SIN6_LEN_RFC2133.
      if (udp_->ping() && family_ == AF_INET6 && m.addr.size() < sizeof(sockaddr_in6)) {
        return Errno(EINVAL);
      }
      InetUse use = udp_->ping() || udp_->raw() ? InetUse::kBind : InetUse::kConnect;
      SV_ASSIGN_OR_RETURN(SockAddr a, ParseInetAddr(family_, m.addr, use, v6only_));
      to = a;
    }
    // udpv6_sendmsg(): a link-local destination's own scope first.
    const uint32_t scope = to && to->ip.link_local() ? InetScopeId(m.addr) : 0;
    netstack::SendInfo info;
    if (!m.control.empty()) {
      // The control messages of the destination's family (an AF_INET6
      // socket's IPv4-mapped peer goes through udp_sendmsg()).
      bool dst_v4 = family_ == AF_INET;
      if (to) {
        dst_v4 = to->ip.is_v4();
      } else if (auto r = udp_->remote(); r.ok()) {
        dst_v4 = r->ip.is_v4();
      }
      SV_ASSIGN_OR_RETURN(info, ParseInetSendControl(family_, protocol(), dst_v4, m.control));
    }
    return udp_->SendTo(m.data, to, scope, info);
  }
  // TCP ignores a destination (tcp_sendmsg()); a blocking send goes on
  // until everything is queued, or returns what it queued when a signal
  // or a timeout comes.
  size_t done = 0;
  std::string_view rest(m.data);
  do {
    Result<size_t> n = Block(t, true, POLLOUT, m.flags, [&] { return tcp_->Send(rest); });
    if (!n.ok()) {
      if (done) return done;
      return n.error();
    }
    done += *n;
    rest.remove_prefix(*n);
  } while (!rest.empty() && !nonblocking() && !(m.flags & MSG_DONTWAIT));
  return done;
}

Result<MsgOut> NetstackSocket::RecvError(char* buf, size_t len, size_t controllen) {
  // tcp_recvmsg() -> inet_recv_error(): TCP queues nothing here (yet).
  if (!udp_) return Errno(EAGAIN);
  SV_ASSIGN_OR_RETURN(netstack::IcmpError e, udp_->TakeQueuedError());
  MsgOut out;
  out.len = std::min(len, e.payload.size());
  memcpy(buf, e.payload.data(), out.len);
  out.flags = MSG_ERRQUEUE | (e.payload.size() > len ? MSG_TRUNC : 0);
  out.addr = FormatInetAddr(family_, e.dest);
  // ip_recv_error()/ipv6_recv_error(): the extended error and the
  // offender, a sockaddr of the socket's family (IPv4 offenders mapped in
  // an AF_INET6 socket's), at SOL_IP or SOL_IPV6 by the socket's family.
  sock_extended_err ee{};
  ee.ee_errno = uint32_t(e.err);
  ee.ee_origin = e.icmp6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
  ee.ee_type = e.type;
  ee.ee_code = e.code;
  ee.ee_info = e.info;
  std::string data(reinterpret_cast<const char*>(&ee), sizeof ee);
  data += FormatInetAddr(family_, {e.offender, 0});
  bool six = family_ == AF_INET6;
  PutCmsg(&out, controllen, six ? SOL_IPV6 : SOL_IP, six ? IPV6_RECVERR : IP_RECVERR,
          data.data(), data.size());
  return out;
}

Result<MsgOut> NetstackSocket::RecvMsg(Task& t, char* buf, size_t len, int flags,
                                       size_t controllen) {
  // ip_recv_error(): never waits, never peeks.
  if (flags & MSG_ERRQUEUE) return RecvError(buf, len, controllen);
  MsgOut out;
  const bool peek = flags & MSG_PEEK;
  if (udp_) {
    SockAddr from;
    uint32_t scope = 0;
    netstack::RecvInfo info;
    const bool may_wait = !nonblocking() && !(flags & MSG_DONTWAIT);
    SV_ASSIGN_OR_RETURN(size_t n, Block(t, false, POLLIN, flags, [&] {
                          return udp_->RecvFrom(buf, len, peek, &from, may_wait, &scope, &info);
                        }));
    // (No NIC: no datagram, the end of file after SHUT_RD.)
    if (info.nic) PutInetRecvControl(&out, controllen, family_, rx_, info);
    out.len = std::min(n, len);
    if (n > len) out.flags |= MSG_TRUNC;
    // udp_recvmsg(): the real length; ping_recvmsg() does not do that.
    if ((flags & MSG_TRUNC) && !udp_->ping()) out.len = n;
    out.addr = FormatInetAddr(family_, from, scope);
    return out;
  }
  if (flags & MSG_OOB) return Errno(EINVAL);  // no urgent data yet
  size_t got = 0;
  for (;;) {
    Result<size_t> n = Block(t, false, POLLIN, flags,
                             [&] { return tcp_->Recv(buf + got, len - got, peek); });
    if (!n.ok()) {
      if (got) break;
      return n.error();
    }
    got += *n;
    // MSG_WAITALL: on until len, end of stream, or an error.
    if (!(flags & MSG_WAITALL) || peek || *n == 0 || got == len) break;
  }
  out.len = got;
  return out;
}

Status NetstackSocket::Shutdown(Task&, int how) {
  Status s = tcp_ ? tcp_->Shutdown(how) : udp_->Shutdown(how);
  Changed();
  return s;
}

Result<std::string> NetstackSocket::GetSockName() {
  SockAddr a = endpoint().local();
  return FormatInetAddr(family_, a, endpoint().ScopeOf(a.ip));
}

Result<std::string> NetstackSocket::GetPeerName() {
  SV_ASSIGN_OR_RETURN(SockAddr a, tcp_ ? tcp_->remote() : udp_->remote());
  return FormatInetAddr(family_, a, endpoint().ScopeOf(a.ip));
}

Result<struct stat> NetstackSocket::Stat() {
  struct stat st {};
  st.st_mode = S_IFSOCK | 0777;
  st.st_ino = ino_;
  st.st_dev = 0x8;  // sockfs
  st.st_nlink = 1;
  st.st_blksize = 4096;
  return st;
}

size_t NetstackSocket::BytesReadable() const {
  return tcp_ ? tcp_->Available() : udp_->Available();
}

Result<long> NetstackSocket::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if ((cmd == FIONREAD || cmd == TIOCOUTQ) && udp_ && udp_->ping()) {
    return Errno(ENOTTY);  // ping_prot has no ioctl: sock_do_ioctl() says ENOTTY
  }
  if (cmd == FIONREAD || cmd == TIOCOUTQ) {
    // tcp_ioctl(): EINVAL on a listener; udp_ioctl(): the next datagram.
    if (tcp_ && tcp_->state() == netstack::TcpState::kListen) return Errno(EINVAL);
    size_t v = cmd == FIONREAD ? BytesReadable() : (tcp_ ? tcp_->Unsent() : 0);
    int n = int(std::min<size_t>(v, INT_MAX));
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof n));
    return 0L;
  }
  if (cmd == SIOCATMARK && tcp_) {
    // tcp_ioctl(): at the urgent mark only with urgent data pending,
    // which this stack does not keep apart (recv(MSG_OOB) is EINVAL).
    int n = 0;
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof n));
    return 0L;
  }
  // inet_ioctl() -> devinet_ioctl(): the sandbox stack's addresses.
  if (IsInetInterfaceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
  return CommonIoctl(t, cmd, arg);
}

int NetstackSocket::PollFd() const {
  std::lock_guard l(mu_);
  if (mirror_ == nullptr) {
    auto m = std::make_unique<SocketMirror>();
    // A fresh stream socket polls as an unconnected one (POLLOUT|POLLHUP);
    // one that connected, listened or failed to connect has a pair.
    bool connected = udp_ || !tcp_->Unused();
    if (!m->Make(type(), connected)) return -1;
    mirror_ = std::move(m);
    uint32_t r = Readiness();
    mirror_->Set(short(r), r & POLLIN, false);
  }
  return mirror_->fd();
}

std::string NetstackSocket::DisplayPath() const { return absl::StrCat("socket:[", ino_, "]"); }

absl::Status NetstackSocket::AdoptInForkChild(ForkFileContext&) {
  std::lock_guard l(mu_);
  if (mirror_ != nullptr) {
    bool connected = !mirror_->unconnected();
    mirror_ = std::make_unique<SocketMirror>();
    if (!mirror_->Make(type(), connected)) {
      return absl::ResourceExhaustedError(
          absl::StrCat(DisplayPath(), ": cannot make its readiness socket"));
    }
    uint32_t r = Readiness();
    mirror_->Set(short(r), r & POLLIN, false);
  }
  return absl::OkStatus();
}

Result<FileRef> NewNetstackSocket(Task& t, NetService& net, int family, int type, int protocol,
                                  int flags) {
  std::shared_ptr<NetstackSocket> s;
  switch (type) {
    case SOCK_STREAM:
      if (protocol != 0 && protocol != IPPROTO_TCP) return Errno(EPROTONOSUPPORT);
      s = std::make_shared<NetstackSocket>(family, flags, net.stack().NewTcp());
      break;
    case SOCK_DGRAM: {
      // inet_create()/inet6_create(): ICMP echo sockets are IPPROTO_ICMP
      // on AF_INET, IPPROTO_ICMPV6 on AF_INET6 (net/ipv4/ping.c).
      const int ping_proto = family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
      if (protocol == ping_proto) {
        const Credentials& c = t.creds();
        if (!net.MayPing(c.egid, c.groups)) return Errno(EACCES);  // ping_init_sock()
        s = std::make_shared<NetstackSocket>(family, flags,
                                             net.stack().NewPing(family == AF_INET6));
        s->v6only_ = family == AF_INET6;
        s->reuse_addr_ = true;  // INET_PROTOSW_REUSE, as the endpoint's
        s->Attach(t.creds().fsuid);
        return FileRef(s);
      }
      if (protocol != 0 && protocol != IPPROTO_UDP) return Errno(EPROTONOSUPPORT);
      s = std::make_shared<NetstackSocket>(family, flags, net.stack().NewUdp());
      break;
    }
    case SOCK_RAW: {
      // inet_create(): CAP_NET_RAW, which the guest has only with runsc's
      // --net-raw, after the protocol lookup that no protocol 0 passes.
      // Only ICMP's raw sockets so far (busybox ping's).
      if (protocol == 0) return Errno(EPROTONOSUPPORT);
      if (!t.creds().HasCap(CAP_NET_RAW) || !t.kernel().options().net_raw) return Errno(EPERM);
      if (protocol != (family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP})) {
        return Errno(EPROTONOSUPPORT);
      }
      s = std::make_shared<NetstackSocket>(family, flags,
                                           net.stack().NewRawIcmp(family == AF_INET6));
      s->v6only_ = family == AF_INET6;
      s->reuse_addr_ = true;  // INET_PROTOSW_REUSE, as the endpoint's
      s->Attach(t.creds().fsuid);
      return FileRef(s);
    }
    default:
      return Errno(ESOCKTNOSUPPORT);
  }
  if (family == AF_INET6) SV_TRY(s->endpoint().SetFamily6(false));
  s->Attach(t.creds().fsuid);
  return FileRef(s);
}

}  // namespace seedvisor::sentry
