// UnixSocket: AF_UNIX sockets inside the sandbox (stream, datagram,
// seqpacket). Nothing of them is visible on the host: names live in the
// sandbox (paths as S_IFSOCK nodes of the sandbox VFS, abstract names in a
// table private to the sentry) and data moves through anonymous host
// socketpairs the sentry makes.
//
//  - connect() on a stream/seqpacket socket makes a host socketpair of that
//    type, keeps one end and queues the other on the listener; accept()
//    takes it. A listener's readiness is an eventfd counting queued
//    connections.
//  - Each datagram socket owns a host datagram socketpair: it reads one end,
//    senders write the other ("inject" end). socketpair(2) is a plain host
//    socketpair.
//  - SCM_RIGHTS carries sandbox files via rights.h; SCM_CREDENTIALS and
//    SO_PEERCRED report sandbox pids and ids (the peer's at connect time).
//
// A listener queues backlog + 1 connections; then connect() is EAGAIN, or
// waits for an accept() (in 5 ms polls) when blocking.
// Known gaps: socket-file permissions are not checked on connect; MSG_PEEK does not install SCM_RIGHTS files.
//
//   SV_ASSIGN_OR_RETURN(auto s, UnixSocket::Create(t, SOCK_STREAM, 0));
//   SV_TRY(s->Bind(t, SockaddrUn("/tmp/sock")));
#ifndef SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sentry/socket/socket.h"

namespace seedvisor::sentry {

// A unix socket address as the sandbox names it.
struct UnixAddr {
  enum Kind { kUnnamed, kPath, kAbstract };
  Kind kind = kUnnamed;
  std::string name;  // the path, or the abstract name without its leading NUL
  // Parses a guest sockaddr_un (EINVAL if malformed).
  static Result<UnixAddr> Parse(const std::string& sa);
  std::string ToSockaddr() const;
};

class UnixSocket : public Socket {
 public:
  // socket(2): `flags` may hold O_NONBLOCK.
  static Result<std::shared_ptr<UnixSocket>> Create(Task& t, int type, int flags);
  // socketpair(2).
  static Result<std::pair<FileRef, FileRef>> Pair(Task& t, int type, int flags);
  UnixSocket(int flags, int type, int fd, int inject_fd);
  ~UnixSocket() override;

  int family() const override { return AF_UNIX; }
  int type() const { return type_; }
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
  int PollFd() const override { return fd_.load(); }
  // Sandbox fork: refused, naming the socket. Its data moves through a host
  // socketpair (or its listener's eventfd counts host socketpairs) that the
  // seed shares; copying it needs the queued bytes, queued SCM_RIGHTS files
  // and pending connections copied in the seed under the quiesce — reading
  // them here would steal the paused seed's data. Not done yet.
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;
  std::string DisplayPath() const override;

 private:
  enum class State { kUnconnected, kListening, kConnected };
  struct Pending {  // a connection waiting in accept()'s queue
    int fd;
    ucred cred;
    UnixAddr addr;
  };

  // Finds the socket bound to `a` (ECONNREFUSED / ENOENT as connect(2)).
  static Result<std::shared_ptr<UnixSocket>> Lookup(Task& t, const UnixAddr& a);
  // The host control buffer for the guest's control messages.
  // `from` (non-empty) is the sender's address to carry with a datagram.
  Result<std::string> ControlToHost(Task& t, const std::string& guest, const std::string& from,
                                    int* rights_fd);
  // The guest control buffer from the host's (installs received files).
  // `from` gets the sender's address if the message carried one.
  std::string ControlToGuest(Task& t, const char* host, size_t len, size_t room, int flags,
                             int* msg_flags, std::string* from);
  bool Blocking(int flags) const { return !nonblocking() && !(flags & MSG_DONTWAIT); }

  const int type_;
  std::atomic<int> fd_;  // read and polled
  mutable std::mutex mu_;
  int inject_fd_ = -1;            // datagram: where senders write
  std::vector<int> retired_fds_;  // earlier fd_s, kept open for pollers
  State state_ = State::kUnconnected;
  bool host_connected_ = false;  // fd_ itself reaches the peer (pairs, streams)
  UnixAddr local_, peer_;
  ucred peer_cred_{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  ucred own_cred_{0, 0, 0};  // at listen()/connect() time
  std::weak_ptr<UnixSocket> dgram_peer_;
  std::deque<Pending> queue_;
  int listen_efd_ = -1;
  int backlog_ = 0;  // listen(2)'s, clamped to SOMAXCONN
  bool passcred_ = false;
  std::string key_;  // in the name table, if bound
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_
