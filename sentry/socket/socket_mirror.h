// SocketMirror: a host fd whose poll readiness is a sentry socket's, for
// poll, select and (host) epoll, level and edge triggered.
//
// A sentry socket (UnixSocket) keeps its queues in sentry memory, so the
// host kernel cannot see when it is readable. The mirror is a host AF_UNIX
// socket of the guest socket's own type that carries no guest data: the
// sentry keeps the end it hands to pollers ("m") in the state the guest
// socket is in, through the other end of a host pair ("d"), and Linux's own
// unix_poll()/unix_dgram_poll() then report it:
//   POLLIN     a message queued on m by d (one more for each new arrival,
//              so that an edge-triggered epoll sees a new edge, as
//              sk_data_ready gives one);
//   POLLOUT    off while m's tiny send buffer is full (m wrote to d, which
//              does not read), on again when d reads;
//   POLLPRI    stream: an out-of-band byte d sent to m (MSG_OOB), taken
//              back by m's recv(MSG_OOB) when the guest's goes;
//   POLLRDHUP  m's receive side shut (by d's SHUT_WR; a datagram m by its
//              own SHUT_RD), which implies POLLIN, as in Linux;
//   POLLHUP    m's send side shut too (both directions shut);
//   POLLERR    stream/seqpacket: close(d) with a message unread, so m gets
//              ECONNRESET and a hangup, as a socket whose peer went with
//              data unread does. Datagram: d disconnects with a message
//              unread (unix_dgram_disconnected() sets ECONNRESET on m
//              alone) and connects back to m's autobound name. SO_ERROR on
//              m clears it.
// RDHUP and HUP never go back, as in Linux. An unconnected stream or
// seqpacket socket (POLLOUT|POLLHUP) is an unconnected m; when the guest
// socket connects or listens, m connects on the host to a listener made
// for the purpose and d is what that accepts. The fd never changes, so
// epoll registrations made before connect() or listen() stay live.
//
// It holds no data, so a sandbox fork's child makes its own. Not
// thread-safe: its owner calls it under its own lock.
//
//   SocketMirror mirror;
//   if (mirror.Make(SOCK_DGRAM, true)) mirror.Set(POLLOUT, false, false);
//   int fd = mirror.fd();   // poll it
#ifndef SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_
#define SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>

namespace seedvisor::sentry {

class SocketMirror {
 public:
  SocketMirror() = default;
  ~SocketMirror();
  SocketMirror(const SocketMirror&) = delete;
  SocketMirror& operator=(const SocketMirror&) = delete;

  // Makes the host objects for a guest socket of `type` (a datagram socket
  // counts as connected). False if the host refused.
  bool Make(int type, bool connected);
  // The guest socket connected or listens: an unconnected m becomes one
  // end of a pair, on the same fd. False if the host refused.
  bool Connect();
  // Closes everything (a sandbox fork's child: these are the seed's).
  void Close();
  int fd() const { return m_; }
  int type() const { return type_; }
  bool unconnected() const { return unconnected_; }
  // Makes m poll as `mask` (POLLIN, POLLPRI, POLLOUT, POLLRDHUP, POLLHUP,
  // POLLERR).
  // `in_edge`: new data came (a new POLLIN edge); `out_edge`: room was
  // made (a new POLLOUT edge).
  void Set(short mask, bool in_edge, bool out_edge);

 private:
  void Paired();
  void Fill();
  void Drain(int fd);
  void SetDgramError(bool want);
  void SetPri(bool want);

  int m_ = -1;
  int d_ = -1;
  int type_ = SOCK_STREAM;
  bool unconnected_ = false;
  bool in_ = false, out_ = true, rdhup_ = false, hup_ = false, err_ = false, pri_ = false;
  size_t in_count_ = 0;  // messages queued on m
  sockaddr_un m_addr_{};  // a datagram m's autobound name (d connects to it)
  socklen_t m_addr_len_ = 0;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_
