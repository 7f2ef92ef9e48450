// AF_NETLINK sockets, NETLINK_ROUTE only (other protocols: EPROTONOSUPPORT).
//
// NetlinkSocket (--network=none) answers inside the sentry from
// netlink_route.h: the sandbox's one interface lo and its loopback
// addresses, which is what if_nameindex(3), getifaddrs(3), getaddrinfo's
// AI_ADDRCONFIG and `ip addr` ask for. Each reply message is one datagram;
// readiness comes from a host eventfd that is readable while replies wait.
//
// HostNetlinkSocket (--network=host) passes requests to a host
// NETLINK_ROUTE socket, but only batches that read state (RTM_GET*, see
// RouteBatchIsReadOnly): anything that would change the host's network is
// refused with EPERM before it reaches the host.
//
//   SV_ASSIGN_OR_RETURN(FileRef f, NewNetlinkSocket(t, SOCK_RAW, NETLINK_ROUTE,
//                                                   O_RDWR, /*host_network=*/false));
#ifndef SEEDVISOR_SENTRY_SOCKET_NETLINK_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_NETLINK_SOCKET_H_

#include <deque>
#include <mutex>
#include <string>

#include "sentry/socket/host_socket.h"
#include "sentry/socket/socket.h"

namespace seedvisor::sentry {

// socket(AF_NETLINK, type, protocol) for the sandbox; `flags` are the file's
// open flags (O_RDWR | O_NONBLOCK as asked).
Result<FileRef> NewNetlinkSocket(Task& t, int type, int protocol, int flags, bool host_network);

class NetlinkSocket : public Socket {
 public:
  NetlinkSocket(int flags, int type, int efd);  // owns the eventfd `efd`
  ~NetlinkSocket() override;

  int family() const override { return AF_NETLINK; }
  int type() const override { return type_; }
  Status Bind(Task& t, const std::string& addr) override;
  Status Listen(Task&, int) override { return Errno(EOPNOTSUPP); }
  Result<FileRef> Accept(Task&, int, std::string*) override { return Errno(EOPNOTSUPP); }
  Status Connect(Task& t, const std::string& addr) override;
  Result<size_t> SendMsg(Task& t, const MsgIn& m) override;
  Result<MsgOut> RecvMsg(Task& t, char* buf, size_t len, int flags, size_t controllen) override;
  Status Shutdown(Task&, int) override { return {}; }
  Result<std::string> GetSockName() override;
  Result<std::string> GetPeerName() override;
  Result<std::string> GetSockOpt(Task& t, int level, int name, size_t optlen) override;
  Status SetSockOpt(Task& t, int level, int name, const std::string& val) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override { return efd_; }
  std::string DisplayPath() const override;
  // netlink_sendskb(): a message from the kernel itself (mq_notify(2)'s
  // SIGEV_THREAD cookie), queued whatever the receive buffer holds.
  void DeliverFromKernel(std::string msg);
  // Sandbox fork: the replies are sentry memory; the readiness eventfd is
  // recreated (readable iff replies or an error wait).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  // Binds to `port` (0: pick one, as netlink_autobind() does). Needs mu_.
  Status BindLocked(Task& t, uint32_t port);
  // Makes the eventfd readable iff replies or an error wait. Needs mu_.
  void SetReadyLocked();

  const int type_;
  const int efd_;
  std::mutex mu_;
  uint32_t port_ = 0;  // 0 until bound
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  int pending_error_ = 0;  // ENOBUFS after a reply was dropped
  bool ready_ = false;     // the eventfd's counter is 1
  int rcvbuf_ = 212992, sndbuf_ = 212992;
};

class HostNetlinkSocket : public HostSocket {
 public:
  using HostSocket::HostSocket;
  // Only the kernel (nl_pid 0, no groups) as the peer: never another host
  // process's netlink port.
  Status Connect(Task& t, const std::string& addr) override;
  Result<size_t> SendMsg(Task& t, const MsgIn& m) override;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NETLINK_SOCKET_H_
