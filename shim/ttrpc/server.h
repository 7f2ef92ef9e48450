// A ttrpc server: unix-socket listener, one reader per connection and each
// request on a thread of its own, so a blocking call (containerd keeps
// Task.Wait outstanding) never holds up the others on the same connection.
// Readers and requests run on the server's WorkerPool: long-lived threads,
// started when none is idle, never one per request, so that a process that
// host-forks itself (a seed's sentry) can keep every thread from starting
// or ending across its fork() (pool(), worker_pool.h, ForkHold). Responses may go out
// of order; each frame is written whole under the connection's write lock.
//
//   Server server;
//   server.RegisterMethod<task::StateRequest, task::StateResponse>(
//       "containerd.task.v2.Task", "State",
//       [&](const CallContext& ctx, const task::StateRequest& req)
//           -> absl::StatusOr<task::StateResponse> { ... });
//   RETURN_IF_ERROR(server.Listen("unix:///run/x.sock"));
//   server.Serve();   // until Shutdown()
//
// Status codes follow ttrpc 1.1.1: unknown service → 12 "service X", unknown
// method → 12 "method X", an unparsable request → 3, an even stream id → 3,
// a frame over 4 MiB → 8 (its bytes are skipped, the connection stays up).
// absl::StatusCode values are the gRPC codes, so a handler's error status
// travels as is.
#ifndef SEEDVISOR_SHIM_TTRPC_SERVER_H_
#define SEEDVISOR_SHIM_TTRPC_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/worker_pool.h"

namespace seedvisor::ttrpc {

struct HeldFds;  // server.cc

// The fds that came with one request (SCM_RIGHTS with the first bytes of
// its frame: Client::Call's `fds`), on a server that takes them
// (Server::set_max_request_fds). The server owns each until a handler
// takes it: it closes the others once the handler returns, and a
// host-forked copy of the process closes every copy it inherited
// (Server::AbandonInForkChild), so that a process forked for one request
// never keeps an fd that came for another.
//
//   int fd = ctx.fds.Take(0);  // -1: none came
class RequestFds {
 public:
  size_t size() const;
  // The i-th fd, the caller's from now on; -1 when none came or it was
  // taken. Until a handler takes it the fd is the server's to close in a
  // forked copy: a handler that must keep it out of copies made by other
  // requests takes it under the lock that keeps their host forks out.
  int Take(size_t i) const;

 private:
  friend class Server;
  std::shared_ptr<HeldFds> held_;
};

struct CallContext {
  std::string service;
  std::string method;
  int64_t timeout_nano = 0;  // relative deadline from the client, 0 = none
  std::vector<std::pair<std::string, std::string>> metadata;
  RequestFds fds;

  // The first value for `key`, or "".
  std::string Metadata(absl::string_view key) const;

  // Set by a handler to run once its reply has been written to the socket
  // (e.g. exit the process after answering Shutdown, without a sleep).
  mutable std::function<void()> after_reply;
};

class Server {
 public:
  // Returns the serialized response message.
  using Handler =
      std::function<absl::StatusOr<std::string>(const CallContext&, const std::string&)>;

  Server();
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Register(const std::string& service, const std::string& method, Handler h);

  // Typed registration for protobuf messages.
  template <typename Req, typename Resp>
  void RegisterMethod(
      const std::string& service, const std::string& method,
      std::function<absl::StatusOr<Resp>(const CallContext&, const Req&)> f) {
    Register(service, method,
             [f = std::move(f), method](const CallContext& ctx,
                                        const std::string& payload)
                 -> absl::StatusOr<std::string> {
               Req req;
               if (!req.ParseFromString(payload)) {
                 return absl::InvalidArgumentError("unmarshal " + method + " request");
               }
               absl::StatusOr<Resp> resp = f(ctx, req);
               if (!resp.ok()) return resp.status();
               return resp->SerializeAsString();
             });
  }

  // Listens on `address` (see socket.h), or serves an inherited listener.
  absl::Status Listen(const std::string& address);
  void AdoptListener(int fd);
  // Accept loop; returns after Shutdown() or on a listener error.
  void Serve();
  // Serves one connected socket on a pool thread; takes ownership of fd.
  void ServeConnection(int fd);
  // Stops accepting and shuts every connection down. Request threads still
  // running finish on their own (their replies are dropped).
  void Shutdown();
  // Sandbox fork: in a forked sentry this server is the seed's. Closes our
  // copies of its listener and connections (close, never shutdown: the
  // sockets are the seed's too) and of the fds requests brought that no
  // handler took, taking no lock: the child has one thread.
  // The object must never be destroyed afterwards.
  void AbandonInForkChild();

  // Frame-level dispatch without I/O (used by the connection reader and the
  // fuzz target): the response frame for `frame`, or "" for frames that get
  // no answer (unknown types, ttrpc >= 1.2 data frames).
  std::string HandleFrame(const Frame& frame);
  // The answer to a frame whose body was too large to read.
  static std::string OversizedResponse(const FrameHeader& header);
  // Encodes a response frame carrying `status` (OK → payload only).
  static std::string ResponseFrame(uint32_t stream_id, const absl::Status& status,
                                   absl::string_view payload);

  // The threads that serve connections and requests; the owner's own
  // long-running loops may run there too (Run), and a host fork of the
  // process holds a WorkerPool::NoThreadStarts on it (through ForkHold).
  WorkerPool& pool();

  // Held across a host fork of the process (a seed's sentry): no thread of
  // the pool starts or ends (WorkerPool::NoThreadStarts), and no connection
  // is accepted or closed, so the child's copy of this server names exactly
  // the connection fds it inherited (AbandonInForkChild closes them all).
  // Handlers keep running; one that would close its connection waits.
  class ForkHold {
   public:
    explicit ForkHold(Server& server);
    ForkHold(const ForkHold&) = delete;
    ForkHold& operator=(const ForkHold&) = delete;

   private:
    WorkerPool::NoThreadStarts threads_;
    absl::MutexLock lock_;
  };

  // Whether peers must have our uid (SO_PEERCRED), as containerd's shim
  // server requires. On by default.
  void set_check_peer_uid(bool on) { check_peer_uid_ = on; }
  // How many fds one request may bring (CallContext::fds; at most
  // kMaxSendFds). 0, the default: none, the kernel closes what a peer
  // sends. Set before serving. With fds, every read of a connection takes
  // the lock a ForkHold holds, so that a host fork copies each fd only
  // while the server knows of it.
  void set_max_request_fds(size_t n);

 private:
  friend struct HeldFds;
  struct Conn;
  struct Shared;

  std::shared_ptr<Shared> shared_;
  bool check_peer_uid_ = true;
};

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_SERVER_H_
