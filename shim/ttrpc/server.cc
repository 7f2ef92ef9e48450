#include "shim/ttrpc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "shim/ttrpc/socket.h"
#include "shim/ttrpc/ttrpc.pb.h"

namespace seedvisor::ttrpc {

std::string CallContext::Metadata(absl::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return "";
}

// One accepted connection. The fd is closed when the last reference (the
// reader or a request thread still writing its reply) goes away.
struct Server::Conn {
  Conn(int f, std::shared_ptr<Shared> o) : fd(f), owner(std::move(o)) {}
  ~Conn();
  void Write(const std::string& frame) {
    absl::MutexLock l(&write_mu);
    // A peer that went away is not our error: its reply is dropped.
    WriteAll(fd, frame).IgnoreError();
  }
  const int fd;
  absl::Mutex write_mu;
  // Whose conn_fds name fd until it is closed.
  const std::shared_ptr<Shared> owner;
};

// State shared with connection and request threads, which may outlive the
// Server object.
struct Server::Shared : std::enable_shared_from_this<Server::Shared> {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, Handler> handlers ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<std::string> services ABSL_GUARDED_BY(mu);
  // Every connection fd open in this process, from its accept4() to its
  // close(), both under mu: a host fork that holds mu (ForkHold) copies
  // exactly these (AbandonInForkChild).
  absl::flat_hash_set<int> conn_fds ABSL_GUARDED_BY(mu);
  // The same for the fds requests brought, from their recvmsg() until a
  // handler takes them or they are closed.
  absl::flat_hash_set<int> held_fds ABSL_GUARDED_BY(mu);
  int listen_fd ABSL_GUARDED_BY(mu) = -1;
  bool shutdown ABSL_GUARDED_BY(mu) = false;
  std::atomic<size_t> max_fds{0};
  // Connection readers and requests: long-lived threads, none started or
  // ended while a host fork holds it (worker_pool.h).
  WorkerPool pool;

  // after: receives the handler's CallContext::after_reply, if any; fds:
  // what came with the frame.
  std::string Handle(const Frame& frame, std::function<void()>* after = nullptr,
                     std::shared_ptr<HeldFds> fds = nullptr);
  void Read(std::shared_ptr<Conn> conn);
  // One read of `fd` into buf; the fds that came with it go into *fds,
  // registered in held_fds (none without fds: the kernel closes them).
  ssize_t Receive(int fd, char* buf, size_t len, HeldFds* fds);
};

// Fds a request brought, closed (and forgotten by held_fds) unless taken.
struct HeldFds {
  explicit HeldFds(std::shared_ptr<Server::Shared> o) : owner(std::move(o)) {}
  ~HeldFds() {
    if (fds.empty()) return;
    absl::MutexLock l(&owner->mu);
    for (int fd : fds) {
      if (fd < 0) continue;
      owner->held_fds.erase(fd);
      close(fd);
    }
  }
  HeldFds(const HeldFds&) = delete;
  HeldFds& operator=(const HeldFds&) = delete;
  const std::shared_ptr<Server::Shared> owner;
  std::vector<int> fds;  // -1: taken
};

size_t RequestFds::size() const { return held_ == nullptr ? 0 : held_->fds.size(); }

int RequestFds::Take(size_t i) const {
  if (held_ == nullptr || i >= held_->fds.size()) return -1;
  absl::MutexLock l(&held_->owner->mu);
  const int fd = std::exchange(held_->fds[i], -1);
  if (fd >= 0) held_->owner->held_fds.erase(fd);
  return fd;
}

Server::Conn::~Conn() {
  absl::MutexLock l(&owner->mu);
  owner->conn_fds.erase(fd);
  close(fd);
}

std::string Server::ResponseFrame(uint32_t stream_id, const absl::Status& status,
                                  absl::string_view payload) {
  Response resp;
  if (status.ok()) {
    resp.set_payload(std::string(payload));
  } else {
    resp.mutable_status()->set_code(static_cast<int32_t>(status.code()));
    resp.mutable_status()->set_message(std::string(status.message()));
  }
  return EncodeFrame(stream_id, kTypeResponse, resp.SerializeAsString());
}

std::string Server::OversizedResponse(const FrameHeader& header) {
  return ResponseFrame(header.stream_id,
                       absl::ResourceExhaustedError(absl::StrCat(
                           "message length ", header.length,
                           " exceed maximum message size of ", kMaxMessageSize)),
                       "");
}

std::string Server::Shared::Handle(const Frame& frame, std::function<void()>* after,
                                   std::shared_ptr<HeldFds> fds) {
  if (frame.header.type != kTypeRequest) return "";  // ttrpc ignores these
  const uint32_t id = frame.header.stream_id;
  if (id % 2 == 0) {
    return ResponseFrame(
        id, absl::InvalidArgumentError("StreamID must be odd for client initiated streams"),
        "");
  }
  Request req;
  if (!req.ParseFromString(frame.data)) {
    return ResponseFrame(id, absl::InvalidArgumentError("unmarshal request error"), "");
  }
  CallContext ctx;
  ctx.service = req.service();
  ctx.method = req.method();
  ctx.timeout_nano = req.timeout_nano();
  for (const KeyValue& kv : req.metadata()) ctx.metadata.emplace_back(kv.key(), kv.value());
  ctx.fds.held_ = std::move(fds);

  Handler h;
  {
    absl::MutexLock l(&mu);
    if (!services.contains(req.service())) {
      return ResponseFrame(id, absl::UnimplementedError("service " + req.service()), "");
    }
    auto it = handlers.find(absl::StrCat("/", req.service(), "/", req.method()));
    if (it == handlers.end()) {
      return ResponseFrame(id, absl::UnimplementedError("method " + req.method()), "");
    }
    h = it->second;
  }
  absl::StatusOr<std::string> out = h(ctx, req.payload());
  if (after != nullptr) *after = std::move(ctx.after_reply);
  if (!out.ok()) return ResponseFrame(id, out.status(), "");
  return ResponseFrame(id, absl::OkStatus(), *out);
}

ssize_t Server::Shared::Receive(int fd, char* buf, size_t len, HeldFds* fds) {
  const size_t max = fds == nullptr ? 0 : std::min(max_fds.load(), kMaxSendFds);
  ssize_t n;
  if (max == 0) {
    // Without a control buffer the kernel closes any fds that come.
    do {
      n = read(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  for (;;) {
    pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxSendFds)];
    iovec iov{buf, len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * max);  // the kernel closes more (MSG_CTRUNC)
    // Under mu: a host fork (ForkHold) copies an fd only once it is in
    // held_fds, where AbandonInForkChild finds it.
    absl::MutexLock l(&mu);
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (fds->fds.size() >= max) {
          close(got);  // the buffer's alignment has room for more than max
          continue;
        }
        held_fds.insert(got);
        fds->fds.push_back(got);
      }
    }
    return n;
  }
}

namespace {

// The most fds a connection's reader keeps for frames not complete yet;
// more are closed as they come (their frame's request then lacks them).
constexpr size_t kMaxPendingFds = 2 * kMaxSendFds;

// Fds that came with a read, until the frame they belong to is complete.
// A sender's fds come with the read that takes the first byte of its
// sendmsg, and that read ends with that sendmsg's data
// (unix_stream_read_generic()): so they belong to the frame that holds
// the read's last byte, which a Client writes with one sendmsg.
struct Arrived {
  uint64_t last;  // the stream offset of the read's last byte
  std::shared_ptr<HeldFds> fds;
};

}  // namespace

void Server::Shared::Read(std::shared_ptr<Conn> conn) {
  FrameDecoder dec;
  std::string buf(64 * 1024, '\0');
  uint64_t read_total = 0;   // bytes read from the connection
  uint64_t frame_start = 0;  // the stream offset of the next frame
  uint64_t skip_end = 0;     // the end of the last oversized frame
  std::deque<Arrived> arrived;
  size_t pending = 0;  // fds in `arrived`
  for (;;) {
    std::shared_ptr<HeldFds> fds;
    if (max_fds.load() > 0) fds = std::make_shared<HeldFds>(shared_from_this());
    ssize_t n = Receive(conn->fd, buf.data(), buf.size(), fds.get());
    if (n <= 0) break;
    read_total += static_cast<uint64_t>(n);
    // Fds of an oversized frame's bytes, or over the limit: closed here.
    if (fds != nullptr && !fds->fds.empty() && read_total - 1 >= skip_end &&
        pending + fds->fds.size() <= kMaxPendingFds) {
      pending += fds->fds.size();
      arrived.push_back({read_total - 1, std::move(fds)});
    }
    fds.reset();
    dec.Feed(buf.data(), static_cast<size_t>(n));
    Frame f;
    for (;;) {
      FrameDecoder::Result r = dec.Next(&f);
      if (r == FrameDecoder::kNeedMore) break;
      const uint64_t end = frame_start + kHeaderSize + f.header.length;
      frame_start = end;
      // This frame's fds: those whose read ended in it.
      std::shared_ptr<HeldFds> mine;
      while (!arrived.empty() && arrived.front().last < end) {
        std::shared_ptr<HeldFds> a = std::move(arrived.front().fds);
        arrived.pop_front();
        pending -= a->fds.size();
        if (mine == nullptr) {
          mine = std::move(a);
        } else {
          // Under mu: no fd is closed or duplicated meanwhile.
          absl::MutexLock l(&mu);
          mine->fds.insert(mine->fds.end(), a->fds.begin(), a->fds.end());
          a->fds.clear();
        }
      }
      if (r == FrameDecoder::kOversized) {
        skip_end = end;
        conn->Write(OversizedResponse(f.header));
        continue;
      }
      if (f.header.type != kTypeRequest) continue;
      // Each request on a thread of its own: handlers may block (Task.Wait).
      pool.Run([self = shared_from_this(), conn, f = std::move(f), mine = std::move(mine)]() {
        std::function<void()> after;
        std::string out = self->Handle(f, &after, mine);
        if (!out.empty()) conn->Write(out);
        if (after) after();
      });
    }
  }
}

Server::Server() : shared_(std::make_shared<Shared>()) {}

Server::~Server() {
  Shutdown();
  shared_->pool.Stop();  // its threads end once their items return
}

void Server::Register(const std::string& service, const std::string& method, Handler h) {
  absl::MutexLock l(&shared_->mu);
  shared_->services.insert(service);
  shared_->handlers[absl::StrCat("/", service, "/", method)] = std::move(h);
}

absl::Status Server::Listen(const std::string& address) {
  absl::StatusOr<int> fd = ListenUnix(address);
  if (!fd.ok()) return fd.status();
  AdoptListener(*fd);
  return absl::OkStatus();
}

void Server::AdoptListener(int fd) {
  absl::MutexLock l(&shared_->mu);
  shared_->listen_fd = fd;
}

void Server::Serve() {
  int lfd;
  {
    absl::MutexLock l(&shared_->mu);
    lfd = shared_->listen_fd;
  }
  if (lfd < 0) return;
  // Non-blocking: the accept itself happens under mu (see conn_fds), after
  // poll says a connection waits.
  if (int fl = fcntl(lfd, F_GETFL); fl < 0 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) < 0) return;
  for (;;) {
    pollfd p = {.fd = lfd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
    int fd, err = 0;
    {
      absl::MutexLock l(&shared_->mu);
      if (shared_->shutdown) break;
      fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) shared_->conn_fds.insert(fd);
      err = errno;
    }
    if (fd < 0) {
      if (err == EINTR || err == ECONNABORTED || err == EAGAIN) continue;
      break;  // EINVAL after Shutdown()
    }
    auto conn = std::make_shared<Conn>(fd, shared_);  // closes fd when done
    if (check_peer_uid_) {
      ucred cred{};
      socklen_t len = sizeof(cred);
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
          cred.uid != geteuid()) {
        continue;
      }
    }
    shared_->pool.Run([shared = shared_, conn]() { shared->Read(conn); });
  }
  absl::MutexLock l(&shared_->mu);
  if (shared_->listen_fd >= 0) {
    close(shared_->listen_fd);
    shared_->listen_fd = -1;
  }
}

void Server::ServeConnection(int fd) {
  {
    absl::MutexLock l(&shared_->mu);
    shared_->conn_fds.insert(fd);
  }
  auto conn = std::make_shared<Conn>(fd, shared_);
  shared_->pool.Run([shared = shared_, conn]() { shared->Read(conn); });
}

void Server::Shutdown() {
  absl::MutexLock l(&shared_->mu);
  shared_->shutdown = true;
  if (shared_->listen_fd >= 0) shutdown(shared_->listen_fd, SHUT_RDWR);
  for (int fd : shared_->conn_fds) shutdown(fd, SHUT_RDWR);
}

void Server::AbandonInForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (shared_->listen_fd >= 0) close(shared_->listen_fd);
  for (int fd : shared_->conn_fds) close(fd);
  for (int fd : shared_->held_fds) close(fd);
}

void Server::set_max_request_fds(size_t n) { shared_->max_fds.store(std::min(n, kMaxSendFds)); }

WorkerPool& Server::pool() { return shared_->pool; }

Server::ForkHold::ForkHold(Server& server)
    : threads_(server.shared_->pool), lock_(&server.shared_->mu) {}

std::string Server::HandleFrame(const Frame& frame) { return shared_->Handle(frame); }

}  // namespace seedvisor::ttrpc
