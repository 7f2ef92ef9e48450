// The gateway's listener: TCP on one IPv4 address (127.0.0.1), a thread per
// connection (at most kMaxConnections; more get 503), HTTP/1.1 keep-alive.
//
//   HttpServer server([&](const HttpRequest& r) { return gateway.Handle(r); });
//   RETURN_IF_ERROR(server.Listen("127.0.0.1:8080"));
//   std::thread t([&] { server.Serve(); });
//   ...
//   server.Shutdown();   // stops accepting, closes connections, waits for handlers
#ifndef SEEDVISOR_SEEDD_HTTP_SERVER_H_
#define SEEDVISOR_SEEDD_HTTP_SERVER_H_

#include <functional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "seedd/http.h"

namespace seedvisor::seedd {

class HttpServer {
 public:
  static constexpr int kMaxConnections = 256;
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  explicit HttpServer(Handler h) : handler_(std::move(h)) {}
  ~HttpServer();  // Shutdown()

  // "HOST:PORT" with HOST an IPv4 address; InvalidArgument naming what is wrong.
  absl::Status Listen(const std::string& address);
  void Serve();
  void Shutdown();

 private:
  void ServeConnection(int fd);

  Handler handler_;
  int listener_ = -1;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> conns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_HTTP_SERVER_H_
