#include "sentry/socket/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/if_ioctl.h"
#include "sentry/kernel/kernel.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// The sandbox's bound names: "a:<abstract>" or "p:<dev>:<ino>" of the socket
// node, so that any path reaching the node (links, bind mounts) finds it.
std::mutex g_names_mu;
auto* g_names = new std::map<std::string, std::weak_ptr<UnixSocket>>;

ucred CredOf(Task& t) {
  return ucred{t.tgid(), t.creds().euid, t.creds().egid};
}

Result<std::string> PathKey(Task& t, const std::string& path) {
  SV_ASSIGN_OR_RETURN(ResolveContext c, t.kernel().vfs().ContextAt(t, AT_FDCWD, path));
  SV_ASSIGN_OR_RETURN(DentryRef d, t.kernel().vfs().Resolve(c, path, true));
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  if (!S_ISSOCK(st.st_mode)) return Errno(ECONNREFUSED);
  return absl::StrCat("p:", st.st_dev, ":", st.st_ino);
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

UnixSocket::UnixSocket(int flags, int type, int fd, int inject_fd)
    : Socket(flags), type_(type), fd_(fd), inject_fd_(inject_fd) {}

absl::Status UnixSocket::AdoptInForkChild(ForkFileContext&) {
  return absl::UnimplementedError(absl::StrCat(
      DisplayPath(), " (a unix socket) moves its data through a host socketpair shared with the ",
      "seed, which sandbox fork cannot copy yet"));
}

UnixSocket::~UnixSocket() {
  if (!key_.empty()) {
    std::lock_guard<std::mutex> l(g_names_mu);
    auto it = g_names->find(key_);
    if (it != g_names->end() && it->second.expired()) g_names->erase(it);
  }
  close(fd_.load());
  if (inject_fd_ >= 0) close(inject_fd_);
  if (listen_efd_ >= 0 && listen_efd_ != fd_.load()) close(listen_efd_);
  for (int fd : retired_fds_) close(fd);
  for (Pending& p : queue_) close(p.fd);
}

Result<std::shared_ptr<UnixSocket>> UnixSocket::Create(Task&, int type, int flags) {
  if (type == SOCK_RAW) type = SOCK_DGRAM;  // unix_create() does the same
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno(ESOCKTNOSUPPORT);
  }
  int fd = -1, inject = -1;
  if (type == SOCK_DGRAM) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      return Errno(errno);
    }
    fd = sv[0];
    inject = sv[1];
  } else {
    // A placeholder until connect/listen: it polls as an unconnected socket.
    fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno(errno);
  }
  return std::make_shared<UnixSocket>(O_RDWR | (flags & O_NONBLOCK), type, fd, inject);
}

Result<std::pair<FileRef, FileRef>> UnixSocket::Pair(Task& t, int type, int flags) {
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    return Errno(ESOCKTNOSUPPORT);
  }
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return Errno(errno);
  int fl = O_RDWR | (flags & O_NONBLOCK);
  auto a = std::make_shared<UnixSocket>(fl, type, sv[0], -1);
  auto b = std::make_shared<UnixSocket>(fl, type, sv[1], -1);
  for (auto* s : {a.get(), b.get()}) {
    s->state_ = State::kConnected;
    s->host_connected_ = true;
    s->peer_cred_ = s->own_cred_ = CredOf(t);
  }
  return std::make_pair(FileRef(a), FileRef(b));
}

// ---- Names ----

Status UnixSocket::Bind(Task& t, const std::string& sa) {
  SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(sa));
  std::lock_guard<std::mutex> l(mu_);
  if (local_.kind != UnixAddr::kUnnamed) return Errno(EINVAL);  // already bound
  static std::atomic<uint32_t> autobind{0};
  if (a.kind == UnixAddr::kUnnamed) {  // autobind: five hex digits (unix(7))
    a.kind = UnixAddr::kAbstract;
    char buf[8];
    snprintf(buf, sizeof(buf), "%05x", autobind.fetch_add(1) & 0xfffff);
    a.name = buf;
  }
  std::string key;
  if (a.kind == UnixAddr::kPath) {
    SV_ASSIGN_OR_RETURN(ResolveContext c, t.kernel().vfs().ContextAt(t, AT_FDCWD, a.name));
    Status s = t.kernel().vfs().Mknod(c, a.name, S_IFSOCK | 0777, 0);
    if (!s.ok()) return s.error() == Errno(EEXIST) ? Errno(EADDRINUSE) : s.error();
    SV_ASSIGN_OR_RETURN(key, PathKey(t, a.name));
  } else {
    key = "a:" + a.name;
  }
  {
    std::lock_guard<std::mutex> nl(g_names_mu);
    auto& slot = (*g_names)[key];
    if (!slot.expired()) return Errno(EADDRINUSE);
    slot = std::static_pointer_cast<UnixSocket>(shared_from_this());
  }
  key_ = key;
  local_ = a;
  return {};
}

Result<std::shared_ptr<UnixSocket>> UnixSocket::Lookup(Task& t, const UnixAddr& a) {
  std::string key;
  if (a.kind == UnixAddr::kPath) {
    SV_ASSIGN_OR_RETURN(key, PathKey(t, a.name));
  } else if (a.kind == UnixAddr::kAbstract) {
    key = "a:" + a.name;
  } else {
    return Errno(EINVAL);
  }
  std::lock_guard<std::mutex> l(g_names_mu);
  auto it = g_names->find(key);
  if (it == g_names->end()) return Errno(ECONNREFUSED);
  auto s = it->second.lock();
  if (!s) return Errno(ECONNREFUSED);
  return s;
}

Result<std::string> UnixSocket::GetSockName() {
  std::lock_guard<std::mutex> l(mu_);
  return local_.ToSockaddr();
}

Result<std::string> UnixSocket::GetPeerName() {
  std::lock_guard<std::mutex> l(mu_);
  if (state_ != State::kConnected && dgram_peer_.expired()) return Errno(ENOTCONN);
  return peer_.ToSockaddr();
}

// ---- Connections ----

Status UnixSocket::Listen(Task& t, int backlog) {
  if (type_ == SOCK_DGRAM) return Errno(EOPNOTSUPP);
  // __sys_listen(): above net.core.somaxconn (4096), or negative, is that.
  constexpr unsigned kSomaxconn = 4096;
  if (static_cast<unsigned>(backlog) > kSomaxconn) backlog = kSomaxconn;
  std::lock_guard<std::mutex> l(mu_);
  backlog_ = backlog;
  if (state_ == State::kListening) return {};  // a new backlog only
  if (state_ != State::kUnconnected || local_.kind == UnixAddr::kUnnamed) return Errno(EINVAL);
  listen_efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
  if (listen_efd_ < 0) return Errno(errno);
  retired_fds_.push_back(fd_.load());
  fd_.store(listen_efd_);
  own_cred_ = CredOf(t);
  state_ = State::kListening;
  return {};
}

Status UnixSocket::Connect(Task& t, const std::string& sa) {
  SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(sa));
  SV_ASSIGN_OR_RETURN(auto target, Lookup(t, a));
  // unix_find_bsd() vs unix_find_abstract(): a path of the wrong type is
  // EPROTOTYPE, an abstract name is looked up per type (ECONNREFUSED).
  if (target->type_ != type_) {
    return Errno(a.kind == UnixAddr::kPath ? EPROTOTYPE : ECONNREFUSED);
  }
  if (type_ == SOCK_DGRAM) {
    std::lock_guard<std::mutex> l(mu_);
    if (host_connected_) return Errno(EISCONN);
    dgram_peer_ = target;
    peer_ = a;
    return {};
  }
  if (target.get() == this) return Errno(ECONNREFUSED);
  // Both locks at once (deadlock-free order): two sockets may connect to
  // each other at the same time.
  std::unique_lock l1(mu_, std::defer_lock), l2(target->mu_, std::defer_lock);
  for (;;) {
    std::lock(l1, l2);
    if (state_ == State::kConnected) return Errno(EISCONN);
    if (state_ == State::kListening) return Errno(EINVAL);
    if (target->state_ != State::kListening) return Errno(ECONNREFUSED);
    // unix_recvq_full(): the queue is full past the backlog, so backlog + 1
    // connections wait (listen(fd, 0) takes one). A non-blocking connect
    // fails with EAGAIN; a blocking one waits for an accept(), looking
    // again every few ms (a signal interrupts it).
    if (target->queue_.size() <= static_cast<size_t>(target->backlog_)) break;
    if (nonblocking()) return Errno(EAGAIN);
    l1.unlock();
    l2.unlock();
    timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += 5000000;
    if (dl.tv_nsec >= 1000000000) {
      dl.tv_sec += 1;
      dl.tv_nsec -= 1000000000;
    }
    Status s = TaskBlockOnFd(t, -1, 0, &dl);
    if (!s.ok() && s.error() != Errno(ETIMEDOUT)) return s;
  }
  int sv[2];
  if (socketpair(AF_UNIX, type_ | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return Errno(errno);
  target->queue_.push_back(Pending{sv[1], CredOf(t), local_});
  peer_cred_ = target->own_cred_;
  uint64_t one = 1;
  (void)!write(target->listen_efd_, &one, sizeof(one));
  retired_fds_.push_back(fd_.load());
  fd_.store(sv[0]);
  own_cred_ = CredOf(t);
  peer_ = target->local_;
  state_ = State::kConnected;
  host_connected_ = true;
  return {};
}

Result<FileRef> UnixSocket::Accept(Task& t, int flags, std::string* peer) {
  if (type_ == SOCK_DGRAM) return Errno(EOPNOTSUPP);
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (state_ != State::kListening) return Errno(EINVAL);
      uint64_t v;
      if (read(listen_efd_, &v, sizeof(v)) == sizeof(v) && !queue_.empty()) {
        Pending p = queue_.front();
        queue_.pop_front();
        auto s = std::make_shared<UnixSocket>(O_RDWR | (flags & O_NONBLOCK), type_, p.fd, -1);
        s->state_ = State::kConnected;
        s->host_connected_ = true;
        s->local_ = local_;
        s->peer_ = p.addr;
        s->peer_cred_ = p.cred;
        s->own_cred_ = own_cred_;
        if (peer) *peer = p.addr.ToSockaddr();
        return FileRef(s);
      }
    }
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(TaskBlockOnFd(t, listen_efd_, POLLIN));
  }
}

Status UnixSocket::Shutdown(Task&, int how) {
  if (how < SHUT_RD || how > SHUT_RDWR) return Errno(EINVAL);
  std::lock_guard<std::mutex> l(mu_);
  if (state_ == State::kListening) return {};
  if (!host_connected_) return Errno(ENOTCONN);
  if (shutdown(fd_.load(), how) != 0) return Errno(errno);
  return {};
}

// ---- Options and the rest ----

Result<std::string> UnixSocket::GetSockOpt(Task&, int level, int name, size_t optlen) {
  auto as_int = [&](int v) -> Result<std::string> {
    if (optlen < sizeof(int)) return Errno(EINVAL);
    return std::string(reinterpret_cast<char*>(&v), sizeof(v));
  };
  if (level == SOL_SOCKET) {
    std::lock_guard<std::mutex> l(mu_);
    switch (name) {
      case SO_TYPE: return as_int(type_);
      case SO_DOMAIN: return as_int(AF_UNIX);
      case SO_PROTOCOL: return as_int(0);
      case SO_ACCEPTCONN: return as_int(state_ == State::kListening);
      case SO_ERROR: return as_int(0);
      case SO_PASSCRED: return as_int(passcred_);
      case SO_PEERCRED: {
        // unix(7): the peer's credentials at connect() time.
        std::string v(reinterpret_cast<const char*>(&peer_cred_), sizeof(ucred));
        v.resize(std::min(optlen, sizeof(ucred)));
        return v;
      }
      case SO_PEERSEC: return Errno(ENOPROTOOPT);
      default: break;
    }
  }
  std::string v(optlen, '\0');
  socklen_t len = static_cast<socklen_t>(optlen);
  int fd = inject_fd_ >= 0 ? inject_fd_ : fd_.load();
  if (getsockopt(fd, level, name, v.data(), &len) != 0) return Errno(errno);
  v.resize(len);
  return v;
}

Status UnixSocket::SetSockOpt(Task&, int level, int name, const std::string& val) {
  if (level == SOL_SOCKET && name == SO_PASSCRED) {
    if (val.size() < sizeof(int)) return Errno(EINVAL);
    int on;
    memcpy(&on, val.data(), sizeof(on));
    std::lock_guard<std::mutex> l(mu_);
    passcred_ = on != 0;
    return {};
  }
  int fd = fd_.load();
  if (setsockopt(fd, level, name, val.data(), static_cast<socklen_t>(val.size())) != 0) {
    return Errno(errno);
  }
  return {};
}

Result<struct stat> UnixSocket::Stat() {
  struct stat st {};
  if (fstat(fd_.load(), &st) != 0) return Errno(errno);
  return st;
}

Result<long> UnixSocket::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD || cmd == TIOCOUTQ) {
    int n = 0;
    if (ioctl(fd_.load(), cmd, &n) != 0) return Errno(errno);
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  if (IsInterfaceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
  return Errno(ENOTTY);
}

std::string UnixSocket::DisplayPath() const {
  struct stat st {};
  fstat(fd_.load(), &st);
  return absl::StrCat("socket:[", st.st_ino, "]");
}

}  // namespace seedvisor::sentry
