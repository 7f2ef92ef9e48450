// UnixSocket: AF_UNIX sockets inside the sandbox (stream, datagram,
// seqpacket), entirely in sentry memory, as Linux's net/unix/af_unix.c.
//
// Names live in the sandbox: paths are S_IFSOCK nodes of the sandbox VFS
// (looked up by device and inode, so links and bind mounts find them),
// abstract names a table private to the sentry. Every socket has a receive
// queue of messages (bytes, the sender's credentials, SCM_RIGHTS files as
// sentry FileRefs, a datagram's source address). A stream send appends
// skb-sized messages to the peer's queue and a read coalesces them, except
// across different credentials (with SO_PASSCRED) or past one carrying
// files (unix_stream_read_generic()); datagram and seqpacket sends are one
// message each.
//
// Capacity follows Linux: a message is charged to its sender's send buffer
// (its length plus an skb's overhead, what SIOCOUTQ reports) until it is
// read; a sender blocks while its charge reaches SO_SNDBUF, and POLLOUT is
// on while the charge is at most a quarter of it (unix_writable()). A
// datagram sender also waits while an unconnected receiver holds more than
// max_dgram_qlen messages. A stream send with MSG_OOB queues its last
// byte as a message of its own, the out-of-band byte (CONFIG_AF_UNIX_OOB:
// recv(MSG_OOB), the mark, SIOCATMARK, POLLPRI, SIGURG to the receiver's
// owner). connect() makes the server-side socket at once
// (the "embryo", queued on the listener until accept(), data may already
// arrive); a listener queues backlog + 1, then connect() waits or is
// EAGAIN. A released socket ends its peer (POLLHUP, ECONNRESET if it left
// data unread or was never accepted), as unix_release_sock().
//
// All state is guarded by one lock for all unix sockets (they point at each
// other: peers, datagram targets, charges). Blocked calls wait on the
// sockets' WaitQueues (vfs/waiter.h): a signal ends them (EINTR, or a
// restart by SA_RESTART unless SO_RCVTIMEO/SO_SNDTIMEO is set, as
// sock_intr_errno()), a sandbox pause parks them and they restart. Files
// are never released under the lock (a queued file may be a socket), and
// sockets released by a release go in one loop, not recursively. Sockets
// queued in sockets that nothing else holds (a cycle) are collected when a
// unix socket is released, as unix_gc() does (CollectLocked).
//
// Host objects: none, except a readiness mirror (socket_mirror.h) made on
// the first PollFd(); its fd stays the same when the socket connects or
// listens. A sandbox fork copies everything with the sentry's
// memory: the child only remakes the mirror and adopts the queued files.
//
//   SV_ASSIGN_OR_RETURN(auto s, UnixSocket::Create(t, SOCK_STREAM, 0));
//   SV_TRY(s->Bind(t, UnixAddr{UnixAddr::kPath, "/tmp/sock"}.ToSockaddr()));
#ifndef SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_
#define SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_

#include <sys/socket.h>
#include <sys/un.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sentry/socket/socket.h"
#include "sentry/socket/socket_mirror.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

class ThreadGroup;

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
  UnixSocket(int flags, int type);
  ~UnixSocket() override;

  int family() const override { return AF_UNIX; }
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
  int PollFd() const override;
  bool IsStream() const override { return true; }
  size_t BytesReadable() const override;
  // Sandbox fork: the queues came with the sentry's memory. Remakes the
  // readiness mirror (the seed's host fds) in the same state, and has the
  // walk adopt the files queued here and the connections waiting in
  // accept()'s queue, which no fd table holds.
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;
  std::string DisplayPath() const override;

 private:
  enum class State { kUnconnected, kListening, kConnected };
  // What a socket's sends are charged to; queued messages keep it, so that
  // a read after the sender's release still finds it (owner null then).
  struct SendAccount {
    size_t wmem = 0;
    UnixSocket* owner = nullptr;
  };
  struct Message {
    std::string data;
    size_t off = 0;  // stream: bytes already read
    std::vector<FileRef> files;
    ucred cred{};
    std::string from;  // datagrams: the sender's address, if bound
    std::shared_ptr<SendAccount> acct;
    size_t charge = 0;
    size_t sockets = 0;  // how many of `files` are unix sockets (for Collect)
    uid_t user = 0;      // whose files in flight `files` count as (UserInflight)
    std::shared_ptr<ThreadGroup> sender;  // for SCM_PIDFD (UNIXCB(skb).pid)
    // Stream: the pending out-of-band byte (u->oob_skb), a message of its
    // own; at most one message of a queue has it (oob_pending_).
    bool oob = false;
    size_t left() const { return data.size() - off; }
  };
  // Control messages of one send, parsed before the lock.
  struct Control {
    std::vector<FileRef> files;
    ucred cred{};
    uid_t user = 0;  // the sender's real uid (current_user())
    std::shared_ptr<ThreadGroup> sender;
  };
  // What a receive passes on as control messages, taken under the lock.
  struct Ancillary {
    bool want_cred = false;
    bool want_pidfd = false;
    ucred cred{};
    std::shared_ptr<ThreadGroup> sender;
    std::vector<FileRef> files;
  };
  // Files and sockets released by work done under the lock; they go after
  // it is dropped (declare before the lock).
  using Graveyard = std::vector<FileRef>;

  // Finds the bound socket's table key for `a` (ENOENT, ECONNREFUSED as
  // connect(2)); resolve paths before the lock.
  Result<std::string> KeyOf(Task& t, const UnixAddr& a) const;
  // Binds a free autobind name (bind(2) of no name, or a send or connect
  // with SO_PASSCRED from an unbound socket).
  Status AutobindLocked();
  static UnixSocket* FindLocked(const std::string& key);
  Result<Control> ParseControl(Task& t, const std::string& guest);
  // Installs the received files (and a pidfd) and lays out the control
  // messages in `room` bytes; MSG_CTRUNC into `msg_flags` for what did not fit.
  std::string BuildControl(Task& t, const Ancillary& a, size_t room, int flags, int* msg_flags);
  Result<size_t> SendStream(Task& t, const MsgIn& m, Control c);
  Result<size_t> SendDgram(Task& t, const MsgIn& m, Control c);
  Result<MsgOut> RecvStream(Task& t, char* buf, size_t len, int flags, size_t controllen);
  Result<MsgOut> RecvDgram(Task& t, char* buf, size_t len, int flags, size_t controllen);
  // recv(MSG_OOB) of a stream socket (unix_stream_recv_urg()).
  Result<MsgOut> RecvOob(char* buf, size_t len, int flags);

  // All *Locked members run under the lock of all unix sockets.
  // Queues `m` (charged to its account) for this socket's reader.
  void EnqueueLocked(Message m);
  void UnchargeLocked(Message& m, Graveyard& g);
  // Moves `m`'s files out (the in-flight count follows).
  static std::vector<FileRef> TakeFilesLocked(Message& m);
  // unix_gc(): sockets that only queues of unreachable sockets hold (a
  // socket sent over itself, two sent over each other, a listener queued on
  // its own embryo) lose their queues, so the cycles end. Reachable means
  // held by anything else (an fd table, a mapping, a call in progress) or
  // queued in a reachable socket. Runs at a release while sockets are queued
  // as files (SCM_RIGHTS); its work grows with the sockets in flight, not
  // with all sockets.
  static void CollectLocked(Graveyard& g);
  // sock_error(): the pending error, now cleared (0 if none).
  int TakeErrorLocked();
  bool RecvqFullLocked() const { return rcvq_.size() > static_cast<size_t>(backlog_); }
  // manage_oob(): a stream read (or peek, from message `*pi`) about to
  // take `m`, with `copied` bytes read so far, steps over a taken
  // out-of-band byte's empty message and over (dropping, unless
  // SO_OOBINLINE) a pending byte it reaches first, and stops at the mark
  // when it has read something. Returns the message to read next, or null
  // (nothing queued past the mark, or `*stop`: end the read here).
  Message* PassOobLocked(Message* m, bool peek, size_t copied, size_t* pi, bool* stop,
                         Graveyard& g);
  // SIOCATMARK: the next byte read is the mark.
  bool AtMarkLocked() const;
  bool WritableLocked() const;
  short PollMaskLocked() const;
  // After a change: updates the mirror (`in_edge`: data came, `out_edge`:
  // room was made).
  void SyncLocked(bool in_edge = false, bool out_edge = false) const;
  void ConnectPairLocked(UnixSocket* other);
  // unix_dgram_disconnected(): a datagram socket leaves `old` (null: it was
  // released) with messages unread; they go, and `old`, if it is still
  // connected to us, is reset (ECONNRESET: POLLERR without a hangup).
  void DgramDisconnectedLocked(UnixSocket* old, Graveyard& g);
  bool Blocking(int flags) const { return !nonblocking() && !(flags & MSG_DONTWAIT); }

  const int type_;
  const uint64_t ino_;
  ucred owner_{};  // the creator (stat's uid and gid)
  State state_ = State::kUnconnected;
  // Stream/seqpacket: the other end (null once it is released). Datagram:
  // connect()'s target; `dgram_from_` are the sockets whose target we are.
  UnixSocket* peer_ = nullptr;
  bool peer_gone_ = false;  // datagram: the target was released (ECONNREFUSED once)
  std::set<UnixSocket*> dgram_from_;
  std::deque<Message> rcvq_;
  std::deque<std::shared_ptr<UnixSocket>> acceptq_;  // embryos
  bool embryo_ = false;                              // not accepted yet
  std::shared_ptr<SendAccount> acct_;
  size_t sndbuf_;
  size_t rcvbuf_;
  int shutdown_ = 0;  // RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2)
  int err_ = 0;       // sk_err: SO_ERROR and the next call report it once
  UnixAddr local_, peer_addr_;
  ucred peer_cred_{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  ucred own_cred_{0, 0, 0};  // at listen()/connect() time
  // The processes of those (sk_peer_pid, for SO_PEERPIDFD): null if none.
  std::shared_ptr<ThreadGroup> peer_tg_, own_tg_;
  bool passcred_ = false;
  bool passpidfd_ = false;  // SO_PASSPIDFD
  int peek_off_ = -1;  // SO_PEEK_OFF (sk_peek_off; negative: off)
  bool oob_pending_ = false;  // a message of rcvq_ is the out-of-band byte
  bool oobinline_ = false;    // SO_OOBINLINE
  // Out-of-band bytes a read stepped over and dropped: FIONREAD still
  // counts them, as Linux 6.17+ does (Ioctl).
  size_t dropped_oob_ = 0;
  int backlog_;  // a listener's (SOMAXCONN-clamped); else max_dgram_qlen
  std::string key_;  // in the name table, if bound
  std::map<int, std::string> opts_;  // SOL_SOCKET options only kept (SO_LINGER, ...)
  WaitQueue rd_wait_;    // readers, accept()
  // Writers (own charge), connect() (a full backlog); datagram senders
  // waiting for room in rcvq_. Shared with the tasks parked on them: a task
  // waiting for room in another socket holds its queue, never the socket
  // (Linux's unix_wait_for_peer() holds the sock, not the file), so that
  // socket still goes when its last file closes, and its destructor wakes
  // them (unix_release_sock()).
  std::shared_ptr<WaitQueue> wr_wait_ = std::make_shared<WaitQueue>();
  std::shared_ptr<WaitQueue> peer_wait_ = std::make_shared<WaitQueue>();
  mutable std::unique_ptr<SocketMirror> mirror_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_H_
