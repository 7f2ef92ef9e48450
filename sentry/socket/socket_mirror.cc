#include "sentry/socket/socket_mirror.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sentry/base/log.h"

namespace seedvisor::sentry {

namespace {
char g_zeros[65536];
}  // namespace

SocketMirror::~SocketMirror() { Close(); }

void SocketMirror::Close() {
  if (m_ >= 0) close(m_);
  if (d_ >= 0) close(d_);
  for (int fd : retired_) close(fd);
  retired_.clear();
  m_ = d_ = -1;
}

bool SocketMirror::Make(int unconnected_type) {
  int m = -1, d = -1;
  if (unconnected_type >= 0) {
    m = socket(AF_UNIX, unconnected_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  } else {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
      m = sv[0];
      d = sv[1];
      // The smallest send buffer (SOCK_MIN_SNDBUF): a few KiB turn POLLOUT off.
      int one = 1;
      setsockopt(m, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
    }
  }
  if (m < 0) {
    Log::Warning("socket readiness: %s", strerror(errno));
    return false;
  }
  if (m_ >= 0) retired_.push_back(m_);
  if (d_ >= 0) close(d_);
  m_ = m;
  d_ = d;
  unconnected_ = unconnected_type >= 0;
  in_ = rdhup_ = hup_ = err_ = false;
  out_ = true;
  in_bytes_ = 0;
  return true;
}

void SocketMirror::Fill() {
  for (int i = 0; i < 64; ++i) {
    if (send(m_, g_zeros, sizeof(g_zeros), MSG_DONTWAIT | MSG_NOSIGNAL) <= 0) return;
  }
}

void SocketMirror::Drain(int fd) {
  thread_local char scratch[65536];
  while (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0) {
  }
}

void SocketMirror::Set(short mask, bool in_edge, bool out_edge) {
  if (m_ < 0 || unconnected_) return;
  const bool want_err = mask & POLLERR, want_hup = mask & POLLHUP;
  const bool want_rdhup = (mask & POLLRDHUP) || want_hup;
  const bool want_in = mask & POLLIN, want_out = mask & POLLOUT;
  if (d_ < 0) {  // after ERR: only the error can still go
    if (err_ && !want_err) {
      int e;
      socklen_t l = sizeof(e);
      getsockopt(m_, SOL_SOCKET, SO_ERROR, &e, &l);
      err_ = false;
    }
    return;
  }
  if (want_err && want_hup) {
    // unix_release_sock(): the peer went with data unread.
    if (!hup_) {
      if (out_) (void)!send(m_, "e", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
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
    } else if (want_out && out_edge) {
      // One more skb freed: sk_write_space wakes the writers again.
      if (send(m_, "o", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) Drain(d_);
    }
  }
  if (!rdhup_) {
    if (want_in && (!in_ || in_edge)) {
      if (in_bytes_ >= 4096) {
        Drain(m_);
        in_bytes_ = 0;
      }
      if (send(d_, "i", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) ++in_bytes_;
      in_ = true;
    } else if (!want_in && in_) {
      Drain(m_);
      in_bytes_ = 0;
      in_ = false;
    }
  }
  if (want_rdhup && !rdhup_) {
    shutdown(d_, SHUT_WR);
    rdhup_ = in_ = true;
  }
  if (want_hup && !hup_) {
    shutdown(m_, SHUT_WR);
    hup_ = true;
  }
}

}  // namespace seedvisor::sentry
