// HostSocket: an AF_INET/AF_INET6 socket passed through to a host socket.
//
// With --network=host the host socket lives in the host's network
// namespace; with --network=none it is made in a private namespace that has
// only a loopback interface (NetnsSocket in netns.h), so the guest can talk
// to itself over 127.0.0.1/::1 and nothing else. The host fd is O_NONBLOCK;
// blocking calls wait in TaskBlockOnFd so signals interrupt them, and apply
// SO_RCVTIMEO/SO_SNDTIMEO themselves.
//
// A blocking call waits for what the host call needs, not for whatever
// poll(2) reports: a socket can poll ready while the call still says EAGAIN
// (an ICMP error left in the error queue after IP_RECVERR keeps POLLERR up;
// a datagram socket shut down for reading keeps POLLIN), and a level-
// triggered wait would return at once, forever. Then the call waits for the
// socket's next wakeup instead (an edge-triggered host epoll of it), and a
// blocking datagram receive that finds the socket shut down for reading
// returns end of file, as __skb_wait_for_more_packets(). MSG_ERRQUEUE never
// waits (ip_recv_error()).
//
// What the guest may ask of the host socket (types, options, control
// messages) is decided by host_policy.h against the guest's credentials:
// the host would check the sentry's.
//
//   SV_ASSIGN_OR_RETURN(int hfd, NewHostInetSocket(t, AF_INET, SOCK_STREAM, 0));
//   auto s = std::make_shared<HostSocket>(O_RDWR, hfd, AF_INET);
#ifndef SEEDVISOR_SENTRY_SOCKET_HOST_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_HOST_SOCKET_H_

#include <string>

#include "sentry/socket/host_policy.h"
#include "sentry/socket/socket.h"

namespace seedvisor::sentry {

class HostSocket : public Socket {
 public:
  HostSocket(int flags, int host_fd, int family);  // owns host_fd
  ~HostSocket() override;

  int family() const override { return family_; }
  int type() const override { return type_; }
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
  int PollFd() const override { return fd_; }
  std::string DisplayPath() const override;
  // Sandbox fork: refused, naming the socket. The host socket is the
  // connection (or the bound port) itself, in the host's network
  // (--network=host) or in the seed's loopback namespace; no copy of it can
  // exist, and sharing it would let two sandboxes read one stream.
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  // Runs the non-blocking host call `op` until it does not fail with EAGAIN,
  // waiting for `events` if `block`; the send (`send`) or receive timeout
  // turns into EAGAIN, as socket(7) says.
  // (Defined and used in host_socket.cc only.)
  template <typename Op>
  Result<ssize_t> Retry(Task& t, bool block, short events, bool send, Op op);
  // A receive that found nothing: is it end of file? (A datagram socket
  // shut down for reading; a stream socket's host call says so itself.)
  bool RecvShutDown() const;

  const int fd_;
  const int family_;
  const int type_;  // SO_TYPE
};

// SIOCGSTAMP_NEW and SIOCGSTAMPNS_NEW (linux/sockios.h: _IOR(0x89, 6 or 7,
// long long[2])); glibc's SIOCGSTAMP and SIOCGSTAMPNS are the _OLD ones,
// the same layout on x86-64.
inline constexpr unsigned long kSiocgstampNew = 0x80108906;
inline constexpr unsigned long kSiocgstampnsNew = 0x80108907;

// The guest's network privileges (capabilities, --net-raw, groups).
NetPrivileges NetPrivilegesOf(Task& t);

// socket(2) of AF_INET/AF_INET6 (or AF_PACKET, refused) for the guest: the
// policy (CheckHostSocket) first, then a host socket in the sandbox's
// network (the host's with --network=host, else the loopback-only one).
Result<int> NewHostInetSocket(Task& t, int domain, int type, int protocol);

// A new host socket (O_NONBLOCK|O_CLOEXEC), no policy: in the host's network
// namespace if `host_network`, else in the loopback-only one.
Result<int> NewHostSocket(int domain, int type, int protocol, bool host_network);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_HOST_SOCKET_H_
