// NetstackSocket: an AF_INET or AF_INET6 SOCK_STREAM (TCP) or SOCK_DGRAM (UDP or
// ICMP echo: a "ping socket", IPPROTO_ICMP / IPPROTO_ICMPV6) socket, or a SOCK_RAW
// one of ICMP or ICMPv6 (CAP_NET_RAW and --net-raw, as runsc)
// served by the sandbox's own stack (--network=sandbox; net_service.h),
// entirely in sentry memory: no host socket stands behind it.
//
// The netstack never blocks; this class does what a socket's caller
// expects of one: blocking calls wait on the socket's WaitQueue until the
// endpoint's observer says its readiness changed (a signal ends the wait
// with a restart, SO_RCVTIMEO/SO_SNDTIMEO with EAGAIN, as unix sockets
// do), and poll/select/epoll see the readiness through a SocketMirror made
// on the first PollFd(). Lock order: the socket's mutex, then the stack's;
// the stack calls observers with its own lock released.
//
//   SV_ASSIGN_OR_RETURN(FileRef f, NewNetstackSocket(t, net, AF_INET6, SOCK_STREAM, 0, O_RDWR));
#ifndef SEEDVISOR_SENTRY_SOCKET_NETSTACK_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_NETSTACK_SOCKET_H_

#include <netinet/in.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "netstack/stack.h"
#include "sentry/socket/inet_cmsg.h"
#include "sentry/socket/net_service.h"
#include "sentry/socket/socket.h"
#include "sentry/socket/socket_mirror.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

class NetstackSocket : public Socket {
 public:
  NetstackSocket(int family, int flags, std::shared_ptr<netstack::TcpEndpoint> tcp);
  NetstackSocket(int family, int flags, std::shared_ptr<netstack::UdpEndpoint> udp);
  ~NetstackSocket() override;

  int family() const override { return family_; }
  int type() const override {
    if (tcp_) return SOCK_STREAM;
    return udp_->raw() ? SOCK_RAW : SOCK_DGRAM;
  }
  int protocol() const {
    if (tcp_) return IPPROTO_TCP;
    if (!udp_->ping() && !udp_->raw()) return IPPROTO_UDP;
    return family_ == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  }
  Status Bind(Task& t, const std::string& addr) override;
  Status Listen(Task& t, int backlog) override;
  Result<FileRef> Accept(Task& t, int flags, std::string* peer) override;
  Status Connect(Task& t, const std::string& addr) override;
  Result<size_t> SendMsg(Task& t, const MsgIn& m) override;
  Result<MsgOut> RecvMsg(Task& t, char* buf, size_t len, int flags, size_t controllen) override;
  Status Shutdown(Task& t, int how) override;
  Result<std::string> GetSockName() override;
  Result<std::string> GetPeerName() override;
  Result<std::string> GetSockOpt(Task& t, int level, int name, size_t optlen) override;
  Status SetSockOpt(Task& t, int level, int name, const std::string& val) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  size_t BytesReadable() const override;
  int PollFd() const override;
  std::string DisplayPath() const override;
  // Sandbox fork: the endpoint is sentry memory the fork copied; only the
  // readiness mirror (host fds) is remade.
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

  netstack::Endpoint& endpoint() const {
    return tcp_ ? static_cast<netstack::Endpoint&>(*tcp_) : *udp_;
  }
  // Hooks the endpoint's observer to this socket (after make_shared) and
  // tells it the socket's inode and owner `uid` (/proc/net shows both).
  void Attach(uint32_t uid);

 private:
  uint32_t Readiness() const;
  // The endpoint's readiness changed: wake waiters, update the mirror.
  void Changed();
  // Runs `op` until it is not EAGAIN, waiting for `events` unless the
  // socket (or `flags`) is non-blocking.
  template <typename Op>
  auto Block(Task& t, bool send, uint32_t events, int flags, Op op) -> decltype(op());

  // recvmsg(MSG_ERRQUEUE).
  Result<MsgOut> RecvError(char* buf, size_t len, size_t controllen);
  // IPPROTO_IPV6 options (AF_INET6 only).
  Result<std::string> GetIpv6Opt(int name, size_t optlen);
  Status SetIpv6Opt(int name, const std::string& val);
  // IPPROTO_IP options (also an AF_INET6 socket's, for its IPv4 peers);
  // null when `name` is not one of them.
  std::optional<Result<std::string>> GetIpOpt(int name, size_t optlen);
  std::optional<Status> SetIpOpt(int name, const std::string& val);
  // A raw ICMP socket's: SOL_RAW ICMP_FILTER and IPV6_CHECKSUM,
  // SOL_ICMPV6 ICMP6_FILTER (raw_setsockopt(), rawv6_setsockopt()); null
  // when `level` is none of a raw socket's.
  std::optional<Result<std::string>> GetRawOpt(int level, int name, size_t optlen);
  std::optional<Status> SetRawOpt(int level, int name, const std::string& val);

  friend Result<FileRef> NewNetstackSocket(Task& t, NetService& net, int family, int type,
                                           int protocol, int flags);

  const int family_;
  bool v6only_ = false;  // IPV6_V6ONLY (net.ipv6.bindv6only is 0)
  std::shared_ptr<netstack::TcpEndpoint> tcp_;
  std::shared_ptr<netstack::UdpEndpoint> udp_;
  const uint64_t ino_;
  uint32_t uid_ = 0;  // the creator's fsuid; accepted sockets: the listener's
  mutable std::mutex mu_;  // guards waiters_ and mirror_
  WaitQueue waiters_;
  mutable std::unique_ptr<SocketMirror> mirror_;
  bool reuse_addr_ = false;
  bool nodelay_ = false;
  bool udp_keepalive_ = false;  // SO_KEEPALIVE on a UDP socket: a flag only
  bool broadcast_ = false;      // SO_BROADCAST (the endpoint's, for UDP, ping, raw)
  int rcvbuf_ = 0, sndbuf_ = 0;  // as set (Linux reports twice the value)
  InetRecvOpts rx_;  // which control messages recvmsg returns (inet_cmsg.h)
};

// socket(2) for AF_INET and AF_INET6 with --network=sandbox.
Result<FileRef> NewNetstackSocket(Task& t, NetService& net, int family, int type, int protocol,
                                  int flags);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NETSTACK_SOCKET_H_
