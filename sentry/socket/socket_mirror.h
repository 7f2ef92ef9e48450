// SocketMirror: a host fd whose poll readiness is a sentry socket's, for
// poll, select and (host) epoll, level and edge triggered.
//
// A sentry socket (UnixSocket) keeps its queues in sentry memory, so the
// host kernel cannot see when it is readable. The mirror is a host
// AF_UNIX stream socketpair that carries no guest data: the sentry keeps
// the end it hands to pollers ("m") in the state the guest socket is in,
// and Linux's own unix_poll() then reports it:
//   POLLIN     a byte queued on m (one more for each new arrival, so that
//              an edge-triggered epoll sees a new edge, as sk_data_ready
//              gives one);
//   POLLOUT    off while m's tiny send buffer is full (m wrote to the
//              driver end "d", which does not read), on again when d reads;
//   POLLRDHUP  shutdown(d, SHUT_WR) (implies POLLIN, as in Linux);
//   POLLHUP    shutdown(m, SHUT_WR) too (both directions shut);
//   POLLERR    close(d) with a byte unread: m gets ECONNRESET and HUP, as a
//              socket whose peer went with unread data does; SO_ERROR on m
//              clears it.
// The last three never go back, as in Linux. An unconnected stream or
// seqpacket socket is mirrored by an unconnected host socket of its type
// instead (its poll bits are exactly that); when the guest socket connects
// or listens, the mirror becomes a pair and its fd changes (the old one is
// kept open, so pollers registered on it see no event, never a closed fd).
//
// It holds no data, so a sandbox fork's child makes its own (Remake). Not
// thread-safe: its owner calls it under its own lock.
//
//   SocketMirror mirror;
//   if (mirror.Make(-1)) mirror.Set(POLLOUT, false, false);   // writable
//   int fd = mirror.fd();   // poll it
#ifndef SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_
#define SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_

#include <cstddef>
#include <vector>

namespace seedvisor::sentry {

class SocketMirror {
 public:
  SocketMirror() = default;
  ~SocketMirror();
  SocketMirror(const SocketMirror&) = delete;
  SocketMirror& operator=(const SocketMirror&) = delete;

  // Makes the host objects: an unconnected host socket of `unconnected_type`
  // if >= 0, else a pair (polls POLLOUT). The previous fd, if any, is
  // retired (kept open). False if the host refused.
  bool Make(int unconnected_type);
  // Closes everything (a sandbox fork's child: these are the seed's).
  void Close();
  int fd() const { return m_; }
  bool unconnected() const { return unconnected_; }
  // Makes m poll as `mask` (POLLIN, POLLOUT, POLLRDHUP, POLLHUP, POLLERR).
  // `in_edge`: new data came (a new POLLIN edge); `out_edge`: room was
  // made (a new POLLOUT edge).
  void Set(short mask, bool in_edge, bool out_edge);

 private:
  void Fill();
  void Drain(int fd);

  int m_ = -1;
  int d_ = -1;
  bool unconnected_ = false;
  bool in_ = false, out_ = true, rdhup_ = false, hup_ = false, err_ = false;
  size_t in_bytes_ = 0;
  std::vector<int> retired_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_SOCKET_MIRROR_H_
