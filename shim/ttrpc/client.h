// A ttrpc client: one connection, concurrent calls multiplexed on odd stream
// ids, a reader thread matching responses to callers.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Client> c, Client::Dial(addr));
//   events::ForwardRequest req = ...;
//   google::protobuf::Empty resp;
//   RETURN_IF_ERROR(c->Call("containerd.services.events.ttrpc.v1.Events",
//                           "Forward", req, &resp, absl::Seconds(5),
//                           {{"containerd-namespace-ttrpc", ns}}));
//
// A status in the response comes back as the same absl::Status code and
// message; a closed connection fails every pending call with Unavailable; a
// timeout fails the call with DeadlineExceeded (and is also sent to the
// server as timeout_nano, as ttrpc does).
#ifndef SEEDVISOR_SHIM_TTRPC_CLIENT_H_
#define SEEDVISOR_SHIM_TTRPC_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "sentry/base/mono_condvar.h"

namespace seedvisor::ttrpc {

using Metadata = std::vector<std::pair<std::string, std::string>>;

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Dial(const std::string& address);
  explicit Client(int fd);  // takes ownership of a connected socket
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `payload` to /service/method; returns the response payload.
  // timeout <= 0 means none. `fds` travel with the request's frame
  // (SCM_RIGHTS, copies: the caller keeps its own) to a server that takes
  // them (Server::set_max_request_fds); at most kMaxSendFds (socket.h).
  absl::StatusOr<std::string> CallRaw(const std::string& service,
                                      const std::string& method,
                                      absl::string_view payload,
                                      absl::Duration timeout = absl::ZeroDuration(),
                                      const Metadata& md = {},
                                      const std::vector<int>& fds = {});

  absl::Status Call(const std::string& service, const std::string& method,
                    const google::protobuf::MessageLite& req,
                    google::protobuf::MessageLite* resp,
                    absl::Duration timeout = absl::ZeroDuration(),
                    const Metadata& md = {}, const std::vector<int>& fds = {});

  // False once the connection has been closed by either side.
  bool alive();
  // Closes the connection; pending calls fail with Unavailable.
  void Close();

 private:
  struct Pending {
    sentry::MonoCondVar cv;  // signalled, under mu_, once done
    bool done = false;
    absl::Status status;
    std::string payload;
  };
  void ReadLoop();

  const int fd_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  uint32_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint32_t, Pending*> pending_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_CLIENT_H_
