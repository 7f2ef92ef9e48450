#include "sentry/socket/socket_mirror.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sentry/base/log.h"

namespace seedvisor::sentry {

namespace {
char g_zeros[65536];
constexpr int kNb = SOCK_NONBLOCK | SOCK_CLOEXEC;
constexpr int kSend = MSG_DONTWAIT | MSG_NOSIGNAL;
}  // namespace

SocketMirror::~SocketMirror() { Close(); }

void SocketMirror::Close() {
  if (m_ >= 0) close(m_);
  if (d_ >= 0) close(d_);
  m_ = d_ = -1;
}

bool SocketMirror::Make(int type, bool connected) {
  Close();
  type_ = type;
  if (type != SOCK_DGRAM && !connected) {
    m_ = socket(AF_UNIX, type | kNb, 0);
    unconnected_ = true;
  } else if (int sv[2]; socketpair(AF_UNIX, type | kNb, 0, sv) == 0) {
    m_ = sv[0];
    d_ = sv[1];
    if (type == SOCK_DGRAM) {
      // Autobind: d connects back to this name after making an error.
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      m_addr_len_ = sizeof(m_addr_);
      if (bind(m_, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)) != 0 ||
          getsockname(m_, reinterpret_cast<sockaddr*>(&m_addr_), &m_addr_len_) != 0) {
        Close();
      }
    }
    Paired();
  }
  if (m_ < 0) {
    Log::Warning("socket readiness: %s", strerror(errno));
    return false;
  }
  // The smallest send buffer (SOCK_MIN_SNDBUF): a few KiB turn POLLOUT off.
  // Set now: setting it wakes writers (sk_write_space), a POLLOUT edge the
  // guest socket never had if m were connected already.
  int one = 1;
  setsockopt(m_, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
  return true;
}

bool SocketMirror::Connect() {
  if (!unconnected_) return true;
  // A listener of our type under an autobound abstract name, for one
  // connection; m's connect completes at once (unix_stream_connect()).
  int l = socket(AF_UNIX, type_ | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  socklen_t len = sizeof(a);
  int d = -1;
  if (l >= 0 && bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)) == 0 &&
      listen(l, 1) == 0 && getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
      connect(m_, reinterpret_cast<sockaddr*>(&a), len) == 0) {
    d = accept4(l, nullptr, nullptr, kNb);
  }
  int err = errno;
  if (l >= 0) close(l);
  if (d < 0) {
    Log::Warning("socket readiness: connecting: %s", strerror(err));
    return false;
  }
  d_ = d;
  Paired();
  return true;
}

void SocketMirror::Paired() {
  unconnected_ = false;
  in_ = rdhup_ = hup_ = err_ = pri_ = false;
  out_ = true;
  in_count_ = 0;
}

void SocketMirror::Fill() {
  // A message must fit the send buffer (unix_dgram_sendmsg()'s EMSGSIZE).
  const size_t chunk = type_ == SOCK_STREAM ? sizeof(g_zeros) : 2048;
  for (int i = 0; i < 64; ++i) {
    if (send(m_, g_zeros, chunk, kSend) <= 0) return;
  }
}

void SocketMirror::Drain(int fd) {
  // Never read: one sink for every thread (thread_local would add 64 KiB to
  // every host thread's TLS, which glibc zeroes as each thread starts:
  // 16 page faults, on a sandbox fork's path too).
  static char scratch[65536];
  // A datagram m's error comes before its messages (sock_error() in
  // __skb_try_recv_datagram()) and goes with that recv: drain on past it
  // (SetDgramError makes it again if it is still wanted).
  bool error_taken = false;
  for (;;) {
    ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && !error_taken) {
      error_taken = true;
      continue;
    }
    return;
  }
}

void SocketMirror::SetDgramError(bool want) {
  // A send on m (an out edge, Fill, the hangup's message) takes m's error
  // (sock_error() in sock_alloc_send_pskb()): one we keep up is made
  // again if it went. poll() looks without taking it.
  if (want && err_) {
    pollfd p{m_, POLLERR, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) return;
    err_ = false;
  }
  if (want == err_) return;
  err_ = want;
  if (!want) {
    int e;
    socklen_t l = sizeof(e);
    getsockopt(m_, SOL_SOCKET, SO_ERROR, &e, &l);
    return;
  }
  // unix_dgram_disconnected(): d leaves with a message unread (one m wrote
  // to make POLLOUT go, or one written now), m is reset; then d pairs again.
  if (out_ && !hup_) (void)!send(m_, "e", 1, kSend);
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  connect(d_, &unspec, sizeof(unspec));
  connect(d_, reinterpret_cast<sockaddr*>(&m_addr_), m_addr_len_);
  if (!hup_) {
    if (!out_) Fill();  // the drop made room
  } else {
    out_ = true;
  }
}

void SocketMirror::SetPri(bool want) {
  if (want == pri_ || type_ != SOCK_STREAM) return;
  if (want) {
    // m's oob_skb (Linux >= 5.15 with CONFIG_AF_UNIX_OOB): POLLPRI. A host
    // without it refuses, and the mirror goes without.
    if (d_ < 0 || rdhup_ || send(d_, "p", 1, kSend | MSG_OOB) != 1) return;
  } else {
    char c;
    (void)!recv(m_, &c, 1, MSG_OOB | MSG_DONTWAIT);
  }
  pri_ = want;
}

void SocketMirror::Set(short mask, bool in_edge, bool out_edge) {
  if (m_ < 0 || unconnected_) return;
  const bool want_err = mask & POLLERR, want_hup = mask & POLLHUP;
  const bool want_rdhup = (mask & POLLRDHUP) || want_hup;
  const bool want_in = mask & POLLIN, want_out = mask & POLLOUT;
  if (type_ == SOCK_DGRAM) {
    // The error last (below): what comes before may send on m.
  } else if (d_ < 0) {  // after ERR: only the error and an urgent byte can still go
    if (!(mask & POLLPRI)) SetPri(false);
    if (err_ && !want_err) {
      int e;
      socklen_t l = sizeof(e);
      getsockopt(m_, SOL_SOCKET, SO_ERROR, &e, &l);
      err_ = false;
    }
    return;
  } else if (want_err && want_hup) {
    // unix_release_sock(): the peer went with data unread.
    if (!hup_) {
      if (out_) (void)!send(m_, "e", 1, kSend);
      close(d_);
      d_ = -1;
      err_ = hup_ = rdhup_ = in_ = out_ = true;
    }
    return;
  }
  if (!hup_) {
    if (want_out != out_) {
      if (want_out) {
        Drain(d_);
      } else {
        Fill();
      }
      out_ = want_out;
    } else if (want_out && out_edge && !(type_ == SOCK_DGRAM && want_err)) {
      // One more skb freed: sk_write_space wakes the writers again. (Not
      // while a datagram m shows an error: the send would take it.)
      if (send(m_, "o", 1, kSend) == 1) Drain(d_);
    }
  }
  if (!rdhup_) {
    if (want_in && (!in_ || in_edge)) {
      if (in_count_ >= 64) {
        Drain(m_);  // reads past an urgent byte too: it goes
        in_count_ = 0;
        pri_ = false;
      }
      if (send(d_, "i", 1, kSend) == 1) ++in_count_;
      in_ = true;
    } else if (!want_in && in_) {
      SetPri(false);
      Drain(m_);
      in_count_ = 0;
      in_ = false;
    }
  }
  SetPri(mask & POLLPRI);
  if (want_rdhup && !rdhup_) {
    // A datagram d's shutdown is its own (unix_shutdown() tells only a
    // connection's peer): shut m's receive side itself.
    if (type_ == SOCK_DGRAM) {
      shutdown(m_, SHUT_RD);
    } else {
      shutdown(d_, SHUT_WR);
    }
    rdhup_ = in_ = true;
  }
  if (want_hup && !hup_) {
    // A datagram m can no longer write after this: leave d a message, so
    // that an error can still be made (SetDgramError).
    if (type_ == SOCK_DGRAM && out_) (void)!send(m_, "e", 1, kSend);
    shutdown(m_, SHUT_WR);
    hup_ = true;
  }
  if (type_ == SOCK_DGRAM) SetDgramError(want_err);
}

}  // namespace seedvisor::sentry
