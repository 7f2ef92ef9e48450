#include "shim/ttrpc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
  int listen_fd ABSL_GUARDED_BY(mu) = -1;
  bool shutdown ABSL_GUARDED_BY(mu) = false;
  // Connection readers and requests: long-lived threads, none started or
  // ended while a host fork holds it (worker_pool.h).
  WorkerPool pool;

  // after: receives the handler's CallContext::after_reply, if any.
  std::string Handle(const Frame& frame, std::function<void()>* after = nullptr);
  void Read(std::shared_ptr<Conn> conn);
};

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

std::string Server::Shared::Handle(const Frame& frame, std::function<void()>* after) {
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

void Server::Shared::Read(std::shared_ptr<Conn> conn) {
  FrameDecoder dec;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    ssize_t n = read(conn->fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    dec.Feed(buf.data(), static_cast<size_t>(n));
    Frame f;
    for (;;) {
      FrameDecoder::Result r = dec.Next(&f);
      if (r == FrameDecoder::kNeedMore) break;
      if (r == FrameDecoder::kOversized) {
        conn->Write(OversizedResponse(f.header));
        continue;
      }
      if (f.header.type != kTypeRequest) continue;
      // Each request on a thread of its own: handlers may block (Task.Wait).
      pool.Run([self = shared_from_this(), conn, f = std::move(f)]() {
        std::function<void()> after;
        std::string out = self->Handle(f, &after);
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
}

WorkerPool& Server::pool() { return shared_->pool; }

Server::ForkHold::ForkHold(Server& server)
    : threads_(server.shared_->pool), lock_(&server.shared_->mu) {}

std::string Server::HandleFrame(const Frame& frame) { return shared_->Handle(frame); }

}  // namespace seedvisor::ttrpc
