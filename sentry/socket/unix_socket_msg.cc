// UnixSocket's data path: sendmsg/recvmsg (control messages: unix_socket_control.cc).
#include <poll.h>

#include <vector>

#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/socket/unix_socket_internal.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

namespace {

bool SameCred(const ucred& a, const ucred& b) {
  return a.pid == b.pid && a.uid == b.uid && a.gid == b.gid;
}

// An skb's worth of a stream send (unix_stream_sendmsg()): half the send
// buffer, at most a page-frag skb.
size_t StreamChunk(size_t sndbuf) {
  constexpr size_t kMaxSkb = 32768 + 3776;  // UNIX_SKB_FRAGS_SZ + SKB_MAX_HEAD(0)
  size_t half = sndbuf / 2 > 64 ? sndbuf / 2 - 64 : 64;
  return std::min(half, kMaxSkb);
}

}  // namespace

// ---- Queues ----

void UnixSocket::EnqueueLocked(Message m) {
  for (const FileRef& f : m.files) {
    if (auto* u = dynamic_cast<UnixSocket*>(f.get())) {
      ++Passed()[u];
      ++m.sockets;
    }
  }
  if (!m.files.empty()) UserInflight()[m.user] += m.files.size();
  m.charge = Truesize(m.data.size());
  m.acct->wmem += m.charge;
  rcvq_.push_back(std::move(m));
  rd_wait_.NotifyAll();
  SyncLocked(/*in_edge=*/true);
}

std::vector<FileRef> UnixSocket::TakeFilesLocked(Message& m) {
  for (size_t i = 0; m.sockets > 0 && i < m.files.size(); ++i) {
    auto* u = dynamic_cast<UnixSocket*>(m.files[i].get());
    if (u == nullptr) continue;
    --m.sockets;
    auto it = Passed().find(u);
    if (it != Passed().end() && --it->second == 0) Passed().erase(it);
  }
  m.sockets = 0;
  if (!m.files.empty()) {
    auto it = UserInflight().find(m.user);
    if (it != UserInflight().end() && (it->second -= std::min(it->second, m.files.size())) == 0) {
      UserInflight().erase(it);
    }
  }
  std::vector<FileRef> files = std::move(m.files);
  m.files.clear();
  return files;
}

void UnixSocket::UnchargeLocked(Message& m, Graveyard& g) {
  for (FileRef& f : TakeFilesLocked(m)) g.push_back(std::move(f));
  if (m.acct == nullptr) return;
  m.acct->wmem -= m.charge;
  if (UnixSocket* o = m.acct->owner; o != nullptr) {
    // unix_write_space(): blocked writers and pollers wake only once the
    // owner is writable again (unix_writable(): a quarter of its send
    // buffer or less in flight), not for every message read.
    const bool writable = m.acct->wmem * 4 <= o->sndbuf_;
    if (writable) o->wr_wait_->NotifyAll();
    o->SyncLocked(false, /*out_edge=*/writable);
  }
  m.acct.reset();
}

// ---- Send ----

Result<size_t> UnixSocket::SendMsg(Task& t, const MsgIn& m) {
  // unix_dgram_sendmsg(): no out-of-band data; a stream send needs a byte.
  if ((m.flags & MSG_OOB) && (type_ != SOCK_STREAM || m.data.empty())) return Errno(EOPNOTSUPP);
  SV_ASSIGN_OR_RETURN(Control c, ParseControl(t, m.control));
  if (type_ == SOCK_STREAM) return SendStream(t, m, std::move(c));
  return SendDgram(t, m, std::move(c));
}

Result<size_t> UnixSocket::SendStream(Task& t, const MsgIn& m, Control c) {
  Graveyard g;  // after the lock: unsent files
  for (FileRef& f : c.files) g.push_back(std::move(f));
  FileRef urgent;  // the receiver of an out-of-band byte: SIGURG after the lock
  size_t sent = 0;
  {
    std::unique_lock l(Mu());
    // unix_stream_sendmsg().
    if (!m.addr.empty()) return Errno(state_ == State::kConnected ? EISCONN : EOPNOTSUPP);
    if (state_ != State::kConnected) return Errno(ENOTCONN);
    if (shutdown_ & kSendShutdown) return Errno(EPIPE);
    SockDeadline dl = DeadlineOf(*this, /*send=*/true);
    const size_t len = m.data.size();
    // MSG_OOB: the last byte goes alone, after the rest (queue_oob()).
    const size_t inband = (m.flags & MSG_OOB) ? len - 1 : len;
    bool files_sent = false;
    while (sent < len) {
      if (int e = TakeErrorLocked()) {  // sock_error() in sock_alloc_send_pskb()
        if (sent) break;
        return Errno(e);
      }
      if (shutdown_ & kSendShutdown || peer_ == nullptr || (peer_->shutdown_ & kRcvShutdown)) {
        if (sent) break;
        return Errno(EPIPE);
      }
      if (acct_->wmem >= sndbuf_) {
        if (Status s = WaitIfBlocking(Blocking(m.flags), *wr_wait_, t, l, dl); !s.ok()) {
          if (sent) break;
          return s.error();
        }
        continue;
      }
      const bool oob = sent >= inband;
      size_t chunk = oob ? 1 : std::min(inband - sent, StreamChunk(sndbuf_));
      Message msg;
      msg.data.assign(m.data, sent, chunk);
      msg.cred = c.cred;
      msg.sender = c.sender;
      msg.acct = acct_;
      if (!files_sent) {
        msg.files = std::move(g);
        msg.user = c.user;
        g.clear();
        files_sent = true;
      }
      if (oob) {
        // The receiver's earlier out-of-band byte, if still pending, is
        // ordinary data from now on.
        if (peer_->oob_pending_) {
          for (Message& q : peer_->rcvq_) q.oob = false;
        }
        msg.oob = true;
        peer_->oob_pending_ = true;
        urgent = peer_->weak_from_this().lock();
      }
      peer_->EnqueueLocked(std::move(msg));
      sent += chunk;
    }
    SyncLocked();
  }
  if (urgent != nullptr) SendSigurg(t, *urgent);  // sk_send_sigurg()
  return sent;
}

Result<size_t> UnixSocket::SendDgram(Task& t, const MsgIn& m, Control c) {
  const bool by_addr = !m.addr.empty() && type_ == SOCK_DGRAM;
  std::string key;
  if (by_addr) {
    SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(m.addr));
    SV_ASSIGN_OR_RETURN(key, KeyOf(t, a));
  }
  Graveyard g;  // after the lock: unsent files, what a disconnect drops
  std::unique_lock l(Mu());
  // unix_seqpacket_sendmsg(): connected only, any address ignored.
  if (type_ == SOCK_SEQPACKET && state_ != State::kConnected) return Errno(ENOTCONN);
  // unix_dgram_sendmsg().
  if ((passcred_ || passpidfd_) && local_.kind == UnixAddr::kUnnamed) SV_TRY(AutobindLocked());
  if (m.data.size() + 32 > sndbuf_) return Errno(EMSGSIZE);
  SockDeadline dl = DeadlineOf(*this, /*send=*/true);
  for (;;) {
    if (int e = TakeErrorLocked()) return Errno(e);
    if (shutdown_ & kSendShutdown) return Errno(EPIPE);
    UnixSocket* target;
    if (by_addr) {
      target = FindLocked(key);
      if (target == nullptr) return Errno(ECONNREFUSED);
      if (target->type_ != type_) return Errno(EPROTOTYPE);  // a path's
    } else {
      target = peer_;
      if (target == nullptr) {
        if (type_ == SOCK_SEQPACKET) return Errno(EPIPE);
        if (peer_gone_) {  // the target went: refused once, then unconnected
          peer_gone_ = false;
          DgramDisconnectedLocked(nullptr, g);
          return Errno(ECONNREFUSED);
        }
        return Errno(ENOTCONN);
      }
    }
    // unix_may_send(): a target connected elsewhere takes nothing from us.
    if (type_ == SOCK_DGRAM && target->peer_ != nullptr && target->peer_ != this) {
      return Errno(EPERM);
    }
    if (target->shutdown_ & kRcvShutdown) return Errno(EPIPE);
    // The queue, not the target: the target's last close wakes us
    // (unix_socket.h), and the next round finds it gone.
    std::shared_ptr<WaitQueue> q;
    if (acct_->wmem >= sndbuf_) {
      q = wr_wait_;
    } else if (target != this && target->peer_ != this && target->RecvqFullLocked()) {
      q = target->peer_wait_;
    }
    if (q != nullptr) {
      SV_TRY(WaitIfBlocking(Blocking(m.flags), *q, t, l, dl));
      continue;
    }
    Message msg;
    msg.data = m.data;
    msg.cred = c.cred;
    msg.sender = c.sender;
    msg.files = std::move(c.files);
    msg.user = c.user;
    if (type_ == SOCK_DGRAM && local_.kind != UnixAddr::kUnnamed) msg.from = local_.ToSockaddr();
    msg.acct = acct_;
    target->EnqueueLocked(std::move(msg));
    SyncLocked();
    return m.data.size();
  }
}

// ---- Receive ----

Result<MsgOut> UnixSocket::RecvMsg(Task& t, char* buf, size_t len, int flags, size_t controllen) {
  if (type_ == SOCK_STREAM) return RecvStream(t, buf, len, flags, controllen);
  return RecvDgram(t, buf, len, flags, controllen);
}

UnixSocket::Message* UnixSocket::PassOobLocked(Message* m, bool peek, size_t copied, size_t* pi,
                                               bool* stop, Graveyard& g) {
  auto next = [&]() -> Message* {
    if (peek) return ++*pi < rcvq_.size() ? &rcvq_[*pi] : nullptr;
    UnchargeLocked(*m, g);
    rcvq_.pop_front();
    return rcvq_.empty() ? nullptr : &rcvq_.front();
  };
  if (m->left() == 0) {  // an out-of-band byte recv(MSG_OOB) took
    if (copied && (!oob_pending_ || m->oob)) {
      *stop = true;
      return nullptr;
    }
    if ((m = next()) == nullptr) return nullptr;
  }
  if (!m->oob) return m;
  if (copied) {
    *stop = true;
    return nullptr;
  }
  if (!peek) {
    m->oob = false;
    oob_pending_ = false;
    if (!oobinline_) {  // read past without taking it: gone
      ++dropped_oob_;
      m = next();
    }
  } else if (!oobinline_) {
    m = next();
  }
  return m;
}

bool UnixSocket::AtMarkLocked() const {
  // unix_ioctl(SIOCATMARK).
  if (rcvq_.empty()) return false;
  const Message& m = rcvq_.front();
  if (m.oob) return true;
  return m.left() == 0 && (!oob_pending_ || (rcvq_.size() > 1 && rcvq_[1].oob));
}

Result<MsgOut> UnixSocket::RecvOob(char* buf, size_t len, int flags) {
  MsgOut out;
  std::lock_guard l(Mu());
  if (state_ != State::kConnected) return Errno(EINVAL);
  if (oobinline_ || !oob_pending_) return Errno(EINVAL);
  for (Message& m : rcvq_) {
    if (!m.oob) continue;
    // One byte, whatever `len` says (a zero-length receive takes it too).
    if (len > 0) buf[0] = m.data[m.off];
    if (!(flags & MSG_PEEK)) {
      m.oob = false;
      oob_pending_ = false;
      m.off = m.data.size();  // its empty message stays: the mark
      SyncLocked();
    }
    out.len = 1;
    out.flags = MSG_OOB;
    return out;
  }
  return Errno(EINVAL);
}

Result<MsgOut> UnixSocket::RecvStream(Task& t, char* buf, size_t len, int flags,
                                      size_t controllen) {
  if (flags & MSG_OOB) return RecvOob(buf, len, flags);
  Ancillary anc;  // received: installed after the lock
  bool have_cred = false;
  size_t copied = 0;
  MsgOut out;
  {
    Graveyard g;
    std::unique_lock l(Mu());
    // unix_stream_read_generic().
    if (state_ != State::kConnected) return Errno(EINVAL);
    const bool peek = flags & MSG_PEEK;
    const size_t target = (flags & MSG_WAITALL) && !peek ? std::max<size_t>(len, 1) : 1;
    SockDeadline dl = DeadlineOf(*this, /*send=*/false);
    size_t pi = 0, poff = 0;  // the peek cursor: message, bytes into it
    // SO_PEEK_OFF: a peek starts that far in (and waits for data there).
    size_t skip = peek && peek_off_ > 0 ? static_cast<size_t>(peek_off_) : 0;
    bool consumed = false;
    for (;;) {
      for (; skip > 0 && pi < rcvq_.size(); ++pi, poff = 0) {
        size_t avail = rcvq_[pi].left() - poff;
        if (skip < avail) {
          poff += skip;
          skip = 0;
          break;
        }
        skip -= avail;
      }
      Message* m = nullptr;
      if (peek ? pi < rcvq_.size() : !rcvq_.empty()) m = peek ? &rcvq_[pi] : &rcvq_.front();
      if (m != nullptr && (m->left() == 0 || m->oob)) {
        bool stop = false;
        const bool had_oob = oob_pending_;
        const size_t before = rcvq_.size(), pi_before = pi;
        m = PassOobLocked(m, peek, copied, &pi, &stop, g);
        if (had_oob != oob_pending_ || before != rcvq_.size()) consumed = true;
        if (pi != pi_before) poff = 0;
        if (stop || (m == nullptr && copied)) break;
      }
      if (m == nullptr) {
        if (copied >= target) break;
        if (int e = TakeErrorLocked()) {  // POSIX 1003.1g: the error before EOF
          if (copied) break;
          return Errno(e);
        }
        if (shutdown_ & kRcvShutdown) break;
        if (Status s = WaitIfBlocking(Blocking(flags), rd_wait_, t, l, dl); !s.ok()) {
          if (copied) break;
          return s.error();
        }
        continue;
      }
      // Never glue data from different writers (with SO_PASSCRED or
      // SO_PASSPIDFD: unix_skb_scm_eq()).
      if (have_cred) {
        if (!SameCred(anc.cred, m->cred) || anc.sender != m->sender) break;
      } else if (passcred_ || passpidfd_) {
        anc.cred = m->cred;
        anc.sender = m->sender;
        have_cred = true;
      }
      size_t at = m->off + (peek ? poff : 0);
      size_t chunk = std::min(m->data.size() - at, len - copied);
      memcpy(buf + copied, m->data.data() + at, chunk);
      copied += chunk;
      // sk_peek_offset_fwd()/_bwd().
      if (peek_off_ >= 0) {
        peek_off_ = peek ? peek_off_ + static_cast<int>(chunk)
                         : std::max(peek_off_ - static_cast<int>(chunk), 0);
      }
      if (!peek) {
        m->off += chunk;
        if (!m->files.empty()) anc.files = TakeFilesLocked(*m);
        if (m->left() > 0) break;  // the caller's buffer is full
        UnchargeLocked(*m, g);
        rcvq_.pop_front();
        consumed = true;
        if (!anc.files.empty()) break;  // files end a read
      } else {
        if (!m->files.empty()) {
          anc.files = m->files;  // unix_peek_fds(): the peeker gets them too
          break;
        }
        poff += chunk;
        if (at + chunk < m->data.size()) break;
        ++pi;
        poff = 0;
      }
      if (copied >= len) break;
    }
    if (consumed) SyncLocked();
    anc.want_cred = passcred_;
    anc.want_pidfd = passpidfd_;
    // unix_copy_addr(): the peer's name, or nothing if unnamed.
    if (peer_addr_.kind != UnixAddr::kUnnamed) out.addr = peer_addr_.ToSockaddr();
  }
  out.len = copied;
  out.flags = flags & MSG_CMSG_CLOEXEC;
  out.control = BuildControl(t, anc, controllen, flags, &out.flags);
  return out;
}

Result<MsgOut> UnixSocket::RecvDgram(Task& t, char* buf, size_t len, int flags,
                                     size_t controllen) {
  if (flags & MSG_OOB) return Errno(EOPNOTSUPP);
  Ancillary anc;
  MsgOut out;
  out.flags = flags & MSG_CMSG_CLOEXEC;
  {
    Graveyard g;
    std::unique_lock l(Mu());
    // unix_seqpacket_recvmsg(), __unix_dgram_recvmsg().
    if (type_ == SOCK_SEQPACKET && state_ != State::kConnected) return Errno(ENOTCONN);
    SockDeadline dl = DeadlineOf(*this, /*send=*/false);
    // SO_PEEK_OFF: a peek starts that many bytes into the queue, in the
    // message it lands in (__skb_try_recv_from_queue()).
    size_t skip = 0, at = 0;
    for (;;) {
      if (int e = TakeErrorLocked()) return Errno(e);
      skip = (flags & MSG_PEEK) && peek_off_ > 0 ? static_cast<size_t>(peek_off_) : 0;
      for (at = 0; at < rcvq_.size(); ++at) {
        size_t n = rcvq_[at].data.size();
        if (skip < n || (n == 0 && skip == 0)) break;
        skip -= n;
      }
      if (at < rcvq_.size()) break;
      bool shut = shutdown_ & kRcvShutdown;
      if (!Blocking(flags)) {
        // EOF only on a seqpacket socket; a datagram one says EAGAIN.
        if (shut && type_ == SOCK_SEQPACKET) return out;
        return Errno(EAGAIN);
      }
      if (shut) return out;  // __skb_wait_for_more_packets(): no error, no data
      SV_TRY(Wait(rd_wait_, t, l, dl));
    }
    Message& m = rcvq_[at];
    const size_t size = m.data.size() - skip;
    size_t n = std::min(len, size);
    memcpy(buf, m.data.data() + skip, n);
    if (n < size) out.flags |= MSG_TRUNC;
    out.len = (flags & MSG_TRUNC) ? size : n;
    if (peek_off_ >= 0) {  // sk_peek_offset_fwd()/_bwd()
      peek_off_ = (flags & MSG_PEEK) ? peek_off_ + static_cast<int>(n)
                                     : std::max(peek_off_ - static_cast<int>(size), 0);
    }
    out.addr = type_ == SOCK_DGRAM ? m.from
                                   : (peer_addr_.kind != UnixAddr::kUnnamed ? peer_addr_.ToSockaddr()
                                                                            : std::string());
    anc.want_cred = passcred_;
    anc.want_pidfd = passpidfd_;
    anc.cred = m.cred;
    anc.sender = m.sender;
    if (flags & MSG_PEEK) {
      anc.files = m.files;
    } else {
      anc.files = TakeFilesLocked(m);
      UnchargeLocked(m, g);
      rcvq_.pop_front();
      peer_wait_->NotifyAll();
      for (UnixSocket* s : dgram_from_) s->SyncLocked(false, true);
      SyncLocked();
    }
  }
  out.control = BuildControl(t, anc, controllen, flags, &out.flags);
  return out;
}

}  // namespace seedvisor::sentry
