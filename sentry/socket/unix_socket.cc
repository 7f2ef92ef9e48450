#include "sentry/socket/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <unistd.h>

#include <atomic>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/unix_socket_internal.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

namespace unix_internal {

std::mutex& Mu() {
  static auto* mu = new std::mutex;
  return *mu;
}

std::unordered_map<UnixSocket*, size_t>& Passed() {
  static auto* m = new std::unordered_map<UnixSocket*, size_t>;
  return *m;
}

std::map<uid_t, size_t>& UserInflight() {
  static auto* m = new std::map<uid_t, size_t>;
  return *m;
}

const NetLimits& Limits() {
  static const NetLimits limits = [] {
    auto read = [](const char* path, long dflt) {
      std::ifstream f(path);
      long v;
      return (f >> v) && v > 0 ? v : dflt;
    };
    NetLimits l;
    l.wmem_default = read("/proc/sys/net/core/wmem_default", 212992);
    l.rmem_default = read("/proc/sys/net/core/rmem_default", 212992);
    l.wmem_max = read("/proc/sys/net/core/wmem_max", 212992);
    l.rmem_max = read("/proc/sys/net/core/rmem_max", 212992);
    l.max_dgram_qlen = static_cast<int>(read("/proc/sys/net/unix/max_dgram_qlen", 10));
    return l;
  }();
  return limits;
}

SockDeadline DeadlineOf(const Socket& s, bool send) {
  SockDeadline d;
  if (int64_t ns = s.timeout_ns(send); ns > 0) {
    clock_gettime(CLOCK_MONOTONIC, &d.ts);
    int64_t total = d.ts.tv_nsec + ns;
    d.ts.tv_sec += total / 1000000000;
    d.ts.tv_nsec = total % 1000000000;
    d.set = true;
  }
  return d;
}

Status Wait(WaitQueue& q, Task& t, std::unique_lock<std::mutex>& l, const SockDeadline& d) {
  Status s = WaitOn(q, t, l, d.get());
  if (s.ok()) return s;
  if (s.error() == Errno(ETIMEDOUT)) return Errno(EAGAIN);
  if (d.set && s.error() == Errno(kERESTARTSYS)) return Errno(kERESTARTNOHAND);
  return s;
}

}  // namespace unix_internal

namespace {

// The sandbox's bound names: "a:<abstract>" or "p:<fs>:<dev>:<ino>" of the
// socket node (its LockKey), so that any path reaching the node (links,
// bind mounts, a pod's containers' mounts of one volume) finds it.
// Guarded by Mu(); entries go with their socket.
std::map<std::string, UnixSocket*>& Names() {
  static auto* names = new std::map<std::string, UnixSocket*>;
  return *names;
}

// The socket file of each bound path name, held while the name is bound
// (Linux's bound socket holds its path, unix_bind_bsd()): the key has the
// file's inode number, which a host volume's filesystem gives a new file
// once the name is unlinked and the inode freed, while this socket still
// holds the key (a second bind there would be EADDRINUSE, a connect would
// reach the first). Guarded by Mu(); an entry goes with its name.
std::map<std::string, DentryRef>& BoundNodes() {
  static auto* nodes = new std::map<std::string, DentryRef>;
  return *nodes;
}

std::atomic<uint64_t> g_next_ino{0x20000};


// `to_reach`: for connect/sendto, which need write permission on the
// socket file (unix_find_bsd(): EACCES before the type's ECONNREFUSED).
// `node`: where to keep the socket file (bind).
Result<std::string> PathKey(Task& t, const std::string& path, bool to_reach,
                            DentryRef* node = nullptr) {
  SV_ASSIGN_OR_RETURN(ResolveContext c, t.kernel().vfs().ContextAt(t, AT_FDCWD, path));
  SV_ASSIGN_OR_RETURN(DentryRef d, t.kernel().vfs().Resolve(c, path, true));
  if (node != nullptr) *node = d;
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  if (to_reach) SV_TRY(CheckAccess(c.creds, st, W_OK));
  if (!S_ISSOCK(st.st_mode)) return Errno(ECONNREFUSED);
  // The file as its filesystem names it (the key its locks use): a host
  // file of a volume is one name through every container's mount of it,
  // so two containers of a pod meet there; a host device number never
  // meets a sentry tmpfs's equal one.
  FileLockKey k = d->inode()->LockKey();
  // SAFETY: the filesystem's address only as a number in the key.
  return absl::StrCat("p:", reinterpret_cast<uintptr_t>(k.fs), ":", k.dev, ":", k.ino);
}

// unix_abstract_hash() mixes in the socket type: one table per type.
std::string AbstractKey(int type, const std::string& name) {
  return absl::StrCat("a", type, ":", name);
}

}  // namespace

// ---- Addresses ----

Result<UnixAddr> UnixAddr::Parse(const std::string& sa) {
  constexpr size_t kPathOff = offsetof(sockaddr_un, sun_path);
  if (sa.size() < sizeof(sa_family_t) || sa.size() > sizeof(sockaddr_un)) return Errno(EINVAL);
  sa_family_t fam;
  memcpy(&fam, sa.data(), sizeof(fam));
  if (fam != AF_UNIX) return Errno(EINVAL);
  UnixAddr a;
  if (sa.size() == kPathOff) return a;  // unnamed (autobind for bind(2))
  if (sa[kPathOff] == '\0') {
    a.kind = kAbstract;
    a.name = sa.substr(kPathOff + 1);
    return a;
  }
  a.kind = kPath;
  a.name = sa.substr(kPathOff);
  a.name = a.name.substr(0, a.name.find('\0'));  // unix(7): the path may lack its NUL
  return a;
}

std::string UnixAddr::ToSockaddr() const {
  std::string s(sizeof(sa_family_t), '\0');
  sa_family_t fam = AF_UNIX;
  memcpy(s.data(), &fam, sizeof(fam));
  if (kind == kPath) {
    s += name;
    s += '\0';
  } else if (kind == kAbstract) {
    s += '\0';
    s += name;
  }
  return s;
}

// ---- Life ----

UnixSocket::UnixSocket(int flags, int type)
    : Socket(flags),
      type_(type),
      ino_(g_next_ino.fetch_add(1)),
      acct_(std::make_shared<SendAccount>()),
      sndbuf_(Limits().wmem_default),
      rcvbuf_(Limits().rmem_default),
      backlog_(Limits().max_dgram_qlen) {
  acct_->owner = this;
}

UnixSocket::~UnixSocket() {
  Graveyard g;
  DentryRef node;  // a bound path's socket file, released after the lock
  std::unique_lock l(Mu());
  if (!key_.empty()) {
    auto it = Names().find(key_);
    if (it != Names().end() && it->second == this) {
      Names().erase(it);
      if (auto n = BoundNodes().find(key_); n != BoundNodes().end()) {
        node = std::move(n->second);
        BoundNodes().erase(n);
      }
    }
  }
  acct_->owner = nullptr;
  if (UnixSocket* o = peer_; o != nullptr) {
    if (type_ != SOCK_DGRAM) {
      // unix_release_sock(): no more of anything; ECONNRESET if we leave
      // data unread or were never accepted.
      o->peer_ = nullptr;
      o->shutdown_ = kRcvShutdown | kSendShutdown;
      if (!rcvq_.empty() || embryo_) o->err_ = ECONNRESET;
      o->rd_wait_.NotifyAll();
      o->wr_wait_->NotifyAll();
      o->SyncLocked();
    } else {
      o->dgram_from_.erase(this);
    }
  }
  for (UnixSocket* s : dgram_from_) {
    // Senders connected to us: the next send is ECONNREFUSED.
    s->peer_ = nullptr;
    s->peer_gone_ = true;
    s->wr_wait_->NotifyAll();
    s->SyncLocked();
  }
  peer_wait_->NotifyAll();
  wr_wait_->NotifyAll();
  for (Message& m : rcvq_) UnchargeLocked(m, g);
  rcvq_.clear();
  for (auto& e : acceptq_) g.push_back(std::move(e));
  acceptq_.clear();
  // Sockets still in flight may now form a cycle nothing else holds. (Not
  // again for each socket that a collection releases: one pass found them.)
  if (!Passed().empty() && !Reaping()) CollectLocked(g);
  l.unlock();
  Reap(std::move(g));
}

Result<std::shared_ptr<UnixSocket>> UnixSocket::Create(Task& t, int type, int flags) {
  if (type == SOCK_RAW) type = SOCK_DGRAM;  // unix_create() does the same
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno(ESOCKTNOSUPPORT);
  }
  auto s = std::make_shared<UnixSocket>(O_RDWR | (flags & O_NONBLOCK), type);
  s->owner_ = CredOf(t);
  return s;
}

void UnixSocket::ConnectPairLocked(UnixSocket* other) {
  peer_ = other;
  state_ = State::kConnected;
  if (type_ == SOCK_DGRAM) other->dgram_from_.insert(this);
}

Result<std::pair<FileRef, FileRef>> UnixSocket::Pair(Task& t, int type, int flags) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno(ESOCKTNOSUPPORT);
  }
  SV_ASSIGN_OR_RETURN(auto a, Create(t, type, flags));
  SV_ASSIGN_OR_RETURN(auto b, Create(t, type, flags));
  std::lock_guard l(Mu());
  a->ConnectPairLocked(b.get());
  b->ConnectPairLocked(a.get());
  for (auto* s : {a.get(), b.get()}) {
    s->peer_cred_ = s->own_cred_ = CredOf(t);
    s->peer_tg_ = s->own_tg_ = t.shared_tg();
  }
  return std::make_pair(FileRef(a), FileRef(b));
}

// ---- Names ----

Result<std::string> UnixSocket::KeyOf(Task& t, const UnixAddr& a) const {
  if (a.kind == UnixAddr::kPath) return PathKey(t, a.name, /*to_reach=*/true);
  if (a.kind == UnixAddr::kAbstract) return AbstractKey(type_, a.name);
  return Errno(EINVAL);
}

UnixSocket* UnixSocket::FindLocked(const std::string& key) {
  auto it = Names().find(key);
  return it == Names().end() ? nullptr : it->second;
}

Status UnixSocket::AutobindLocked() {
  // unix_autobind(): a NUL and five hex digits (unix(7)), the next free one.
  static uint32_t next = 0;
  for (uint32_t tries = 0; tries <= 0xfffff; ++tries) {
    char buf[8];
    snprintf(buf, sizeof(buf), "%05x", next++ & 0xfffff);
    std::string key = AbstractKey(type_, buf);
    UnixSocket*& slot = Names()[key];
    if (slot != nullptr) continue;
    slot = this;
    key_ = key;
    local_ = UnixAddr{UnixAddr::kAbstract, buf};
    return {};
  }
  return Errno(ENOSPC);
}

Status UnixSocket::Bind(Task& t, const std::string& sa) {
  SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(sa));
  {
    std::lock_guard l(Mu());
    if (local_.kind != UnixAddr::kUnnamed) return Errno(EINVAL);  // already bound
    if (a.kind == UnixAddr::kUnnamed) return AutobindLocked();
  }
  std::string key;
  DentryRef node;  // declared before the lock below: released after it
  if (a.kind == UnixAddr::kPath) {
    SV_ASSIGN_OR_RETURN(ResolveContext c, t.kernel().vfs().ContextAt(t, AT_FDCWD, a.name));
    Status s = t.kernel().vfs().Mknod(c, a.name, S_IFSOCK | 0777, 0);
    if (!s.ok()) return s.error() == Errno(EEXIST) ? Errno(EADDRINUSE) : s.error();
    SV_ASSIGN_OR_RETURN(key, PathKey(t, a.name, /*to_reach=*/false, &node));
  } else {
    key = AbstractKey(type_, a.name);
  }
  std::lock_guard l(Mu());
  if (local_.kind != UnixAddr::kUnnamed) return Errno(EINVAL);
  UnixSocket*& slot = Names()[key];
  if (slot != nullptr && slot != this) return Errno(EADDRINUSE);
  slot = this;
  key_ = key;
  local_ = a;
  if (node) BoundNodes()[key].swap(node);  // what was there (none) goes after the lock
  return {};
}

Result<std::string> UnixSocket::GetSockName() {
  std::lock_guard l(Mu());
  return local_.ToSockaddr();
}

Result<std::string> UnixSocket::GetPeerName() {
  std::lock_guard l(Mu());
  if (type_ == SOCK_DGRAM ? peer_ == nullptr : state_ != State::kConnected) {
    return Errno(ENOTCONN);
  }
  return peer_addr_.ToSockaddr();
}

// ---- Connections ----

Status UnixSocket::Listen(Task& t, int backlog) {
  if (type_ == SOCK_DGRAM) return Errno(EOPNOTSUPP);
  // __sys_listen(): above net.core.somaxconn (4096), or negative, is that.
  constexpr unsigned kSomaxconn = 4096;
  if (static_cast<unsigned>(backlog) > kSomaxconn) backlog = kSomaxconn;
  std::lock_guard l(Mu());
  if (state_ == State::kListening) {  // a new backlog only
    backlog_ = backlog;
    wr_wait_->NotifyAll();
    return {};
  }
  if (state_ != State::kUnconnected || local_.kind == UnixAddr::kUnnamed) return Errno(EINVAL);
  backlog_ = backlog;
  own_cred_ = CredOf(t);
  peer_cred_ = own_cred_;  // init_peercred() at listen()
  own_tg_ = peer_tg_ = t.shared_tg();
  state_ = State::kListening;
  SyncLocked();
  return {};
}

void UnixSocket::DgramDisconnectedLocked(UnixSocket* old, Graveyard& g) {
  if (rcvq_.empty()) return;
  for (Message& m : rcvq_) UnchargeLocked(m, g);
  rcvq_.clear();
  peer_wait_->NotifyAll();
  for (UnixSocket* s : dgram_from_) s->SyncLocked(false, /*out_edge=*/true);
  SyncLocked();
  if (old != nullptr && old->peer_ == this) {
    old->err_ = ECONNRESET;
    old->rd_wait_.NotifyAll();
    old->wr_wait_->NotifyAll();
    old->SyncLocked();
  }
}

Status UnixSocket::Connect(Task& t, const std::string& sa) {
  if (type_ == SOCK_DGRAM && sa.size() >= sizeof(sa_family_t)) {
    sa_family_t fam;
    memcpy(&fam, sa.data(), sizeof(fam));
    if (fam == AF_UNSPEC) {  // unix_dgram_connect(): dissolve the association
      Graveyard g;
      std::lock_guard l(Mu());
      if (UnixSocket* old = peer_; old != nullptr) {
        old->dgram_from_.erase(this);
        peer_ = nullptr;
        DgramDisconnectedLocked(old, g);
      }
      peer_gone_ = false;
      SyncLocked();
      return {};
    }
  }
  SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(sa));
  SV_ASSIGN_OR_RETURN(std::string key, KeyOf(t, a));
  // unix_find_bsd(): a path of the wrong type is EPROTOTYPE (an abstract
  // name of another type is simply not found).
  const int wrong_type = EPROTOTYPE;
  Graveyard g;
  std::unique_lock l(Mu());
  // unix_dgram_connect(), unix_stream_connect(): with SO_PASSCRED (or
  // SO_PASSPIDFD) the peer must see who we are.
  if ((passcred_ || passpidfd_) && local_.kind == UnixAddr::kUnnamed) SV_TRY(AutobindLocked());
  if (type_ == SOCK_DGRAM) {
    UnixSocket* target = FindLocked(key);
    if (target == nullptr) return Errno(ECONNREFUSED);
    if (target->type_ != type_) return Errno(wrong_type);
    UnixSocket* old = peer_;
    if (old != nullptr) old->dgram_from_.erase(this);
    peer_ = target;
    peer_gone_ = false;
    target->dgram_from_.insert(this);
    peer_addr_ = a;
    if (old != nullptr && old != target) DgramDisconnectedLocked(old, g);
    SyncLocked();
    return {};
  }
  SockDeadline dl = DeadlineOf(*this, /*send=*/true);
  for (;;) {
    if (state_ == State::kConnected) return Errno(EISCONN);
    if (state_ == State::kListening) return Errno(EINVAL);
    UnixSocket* target = FindLocked(key);
    if (target == nullptr) return Errno(ECONNREFUSED);
    if (target->type_ != type_) return Errno(wrong_type);
    if (target->state_ != State::kListening) return Errno(ECONNREFUSED);
    // unix_recvq_full(): backlog + 1 connections wait; then a blocking
    // connect waits for an accept() (unix_wait_for_peer()).
    if (target->acceptq_.size() > static_cast<size_t>(target->backlog_)) {
      if (nonblocking()) return Errno(EAGAIN);
      // The queue, not the listener: its last close wakes us (unix_socket.h).
      std::shared_ptr<WaitQueue> q = target->wr_wait_;
      SV_TRY(Wait(*q, t, l, dl));
      continue;
    }
    auto embryo = std::make_shared<UnixSocket>(O_RDWR, type_);
    embryo->owner_ = target->owner_;
    embryo->embryo_ = true;
    embryo->local_ = target->local_;
    embryo->peer_addr_ = local_;
    embryo->peer_cred_ = CredOf(t);
    embryo->peer_tg_ = t.shared_tg();
    embryo->own_cred_ = target->own_cred_;
    embryo->own_tg_ = target->own_tg_;
    embryo->ConnectPairLocked(this);
    ConnectPairLocked(embryo.get());
    peer_addr_ = target->local_;
    peer_cred_ = target->own_cred_;
    peer_tg_ = target->own_tg_;
    own_cred_ = CredOf(t);
    own_tg_ = t.shared_tg();
    target->acceptq_.push_back(std::move(embryo));
    target->rd_wait_.NotifyAll();
    target->SyncLocked(/*in_edge=*/true);
    SyncLocked();
    return {};
  }
}

Result<FileRef> UnixSocket::Accept(Task& t, int flags, std::string* peer) {
  if (type_ == SOCK_DGRAM) return Errno(EOPNOTSUPP);
  std::unique_lock l(Mu());
  SockDeadline dl = DeadlineOf(*this, /*send=*/false);
  for (;;) {
    if (state_ != State::kListening) return Errno(EINVAL);
    if (!acceptq_.empty()) break;
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(Wait(rd_wait_, t, l, dl));
  }
  std::shared_ptr<UnixSocket> s = std::move(acceptq_.front());
  acceptq_.pop_front();
  s->embryo_ = false;
  s->SetStatusFlags(O_RDWR | (flags & O_NONBLOCK));
  s->passcred_ = passcred_;  // unix_sock_inherit_flags()
  s->passpidfd_ = passpidfd_;
  if (peer) *peer = s->peer_addr_.ToSockaddr();
  wr_wait_->NotifyAll();  // connect()s waiting for room
  SyncLocked();
  return FileRef(std::move(s));
}

Status UnixSocket::Shutdown(Task&, int how) {
  if (how < SHUT_RD || how > SHUT_RDWR) return Errno(EINVAL);
  int mode = how + 1;  // SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND_SHUTDOWN
  std::lock_guard l(Mu());
  // unix_shutdown(): also on an unconnected or listening socket; the peer of
  // a stream or seqpacket socket gets the mirror image.
  shutdown_ |= mode;
  rd_wait_.NotifyAll();
  wr_wait_->NotifyAll();
  SyncLocked();
  if (peer_ != nullptr && type_ != SOCK_DGRAM) {
    int peer_mode = ((mode & kRcvShutdown) ? kSendShutdown : 0) |
                    ((mode & kSendShutdown) ? kRcvShutdown : 0);
    peer_->shutdown_ |= peer_mode;
    peer_->rd_wait_.NotifyAll();
    peer_->wr_wait_->NotifyAll();
    peer_->SyncLocked();
  }
  return {};
}

// ---- Sandbox fork ----

absl::Status UnixSocket::AdoptInForkChild(ForkFileContext& ctx) {
  std::vector<FileRef> nested;
  {
    std::lock_guard l(Mu());
    if (mirror_ != nullptr) {
      if (!mirror_->Make(type_, !mirror_->unconnected())) {
        return absl::ResourceExhaustedError(
            absl::StrCat(DisplayPath(), ": cannot make its readiness socket"));
      }
      SyncLocked();
    }
    for (const Message& m : rcvq_) nested.insert(nested.end(), m.files.begin(), m.files.end());
    for (const auto& e : acceptq_) nested.push_back(e);
    // A peer no fd table holds (an embryo's client in flight) is reached
    // through whoever holds it; one held by nothing is being released.
  }
  for (const FileRef& f : nested) {
    if (!ctx.adopt) {
      return absl::FailedPreconditionError(
          absl::StrCat(DisplayPath(), ": holds queued files but the fork walk adopts none"));
    }
    if (absl::Status s = ctx.adopt(f); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string UnixSocket::DisplayPath() const { return absl::StrCat("socket:[", ino_, "]"); }

}  // namespace seedvisor::sentry
