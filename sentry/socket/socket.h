// Socket: the interface the socket syscalls (sentry/syscalls/sys_socket*.cc)
// call on a socket file. Two families implement it: UnixSocket (AF_UNIX,
// entirely inside the sandbox) and HostSocket (AF_INET/AF_INET6 passed
// through to a host socket).
//
// Addresses and control messages are in the guest's byte layout (identical
// to the host's on x86-64); the syscall layer only copies them in and out.
//
//   SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
//   Socket* s = AsSocket(*f);   // null: ENOTSOCK
//   SV_TRY(s->Bind(t, addr));
#ifndef SEEDVISOR_SENTRY_SOCKET_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_SOCKET_H_

#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <string>

#include "sentry/vfs/file.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// One sendmsg(2)/recvmsg(2): data is flattened from/into the iovecs.
struct MsgIn {
  std::string data;
  std::string addr;     // msg_name, empty if none
  std::string control;  // msg_control
  int flags = 0;
};
struct MsgOut {
  size_t len = 0;       // bytes of data (the syscall's result)
  std::string addr;     // the source address, empty if none/unnamed
  std::string control;  // already truncated to the caller's controllen
  int flags = 0;        // msg_flags (MSG_TRUNC, MSG_CTRUNC, ...)
};

class Socket : public FileDescription {
 public:
  using FileDescription::FileDescription;

  // sock_fasync(): O_ASYNC sticks; SIGIO comes from the socket's readiness
  // (its data moves in the host kernel, the sandbox stack or unix socket
  // code on several paths): sentry/kernel/file_owner.h's WatchAsync.
  bool SupportsAsync() const override { return true; }
  bool SigioFromReadiness() const override { return true; }
  bool Positional() const override { return false; }  // sock_alloc_file()

  virtual int family() const = 0;
  // SO_TYPE: SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW.
  virtual int type() const = 0;
  // Only stream sockets raise SIGPIPE with EPIPE (unix_stream_sendmsg(),
  // tcp's sk_stream_error(); not unix_dgram_sendmsg() or udp_sendmsg()).
  bool EpipeRaisesSigpipe() const override { return type() == SOCK_STREAM; }
  virtual Status Bind(Task& t, const std::string& addr) = 0;
  virtual Status Listen(Task& t, int backlog) = 0;
  // Returns the new connection's file (flags O_NONBLOCK as asked).
  virtual Result<FileRef> Accept(Task& t, int flags, std::string* peer) = 0;
  virtual Status Connect(Task& t, const std::string& addr) = 0;
  virtual Result<size_t> SendMsg(Task& t, const MsgIn& m) = 0;
  // `len` bytes at most into out->data-like `buf`; `controllen` is the room
  // the caller gave for control messages.
  virtual Result<MsgOut> RecvMsg(Task& t, char* buf, size_t len, int flags,
                                 size_t controllen) = 0;
  virtual Status Shutdown(Task& t, int how) = 0;
  virtual Result<std::string> GetSockName() = 0;
  virtual Result<std::string> GetPeerName() = 0;
  // Option values as raw bytes; `optlen` is the caller's buffer size.
  virtual Result<std::string> GetSockOpt(Task& t, int level, int name, size_t optlen) = 0;
  virtual Status SetSockOpt(Task& t, int level, int name, const std::string& val) = 0;

  // read(2)/write(2) are recv/send without flags.
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;

  // sock_ioctl()'s own ioctls and the interface queries any socket answers
  // (FIOSETOWN, SIOCSPGRP, FIOGETOWN, SIOCGPGRP; if_ioctl.h's device
  // ioctls; the interface-changing ones are EPERM); ENOTTY for the rest. A
  // family's Ioctl calls it for what it does not know itself.
  Result<long> CommonIoctl(Task& t, unsigned long cmd, UserAddr arg);

  // SO_RCVTIMEO / SO_SNDTIMEO in ns (0: wait forever); the blocking waits
  // of each family apply them.
  void set_timeout_ns(bool send, int64_t ns) { (send ? snd_timeout_ : rcv_timeout_).store(ns); }
  int64_t timeout_ns(bool send) const { return (send ? snd_timeout_ : rcv_timeout_).load(); }

 private:
  std::atomic<int64_t> rcv_timeout_{0};
  std::atomic<int64_t> snd_timeout_{0};
};

inline Socket* AsSocket(FileDescription& f) { return dynamic_cast<Socket*>(&f); }

// put_cmsg(): appends one control message of `len` bytes to `out->control`,
// which may grow to `room` bytes (the caller's msg_controllen). One that
// does not fit is cut to the room left (its cmsg_len says so) and
// MSG_CTRUNC set; without room for a cmsghdr nothing is written.
void PutCmsg(MsgOut* out, size_t room, int level, int type, const void* data, size_t len);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_SOCKET_H_
