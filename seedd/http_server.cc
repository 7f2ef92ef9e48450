#include "seedd/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace seedvisor::seedd {
namespace {

constexpr int kIdleTimeoutSec = 60;

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(n);
  }
  return true;
}

}  // namespace

HttpServer::~HttpServer() {
  Shutdown();
  if (listener_ >= 0) close(listener_);
}

absl::Status HttpServer::Listen(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--listen=", address, ": want HOST:PORT (127.0.0.1:8080)"));
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  int port = 0;
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--listen=", address, ": host is not an IPv4 address"));
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--listen=", address, ": port is not 0-65535"));
  }
  sa.sin_port = htons(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(fd, 512) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("--listen=", address, ": ", strerror(err)));
  }
  listener_ = fd;
  return absl::OkStatus();
}

void HttpServer::Serve() {
  for (;;) {
    int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) usleep(10000);
        continue;
      }
      return;  // the listener was shut down
    }
    {
      absl::MutexLock l(&mu_);
      if (stopping_) {
        close(fd);
        return;
      }
      if (conns_.size() >= kMaxConnections) {
        SendAll(fd, FormatHttpResponse(ErrorResponse(503, "too many connections"), false));
        close(fd);
        continue;
      }
      conns_.insert(fd);
    }
    try {
      std::thread([this, fd] { ServeConnection(fd); }).detach();
    } catch (const std::system_error& e) {
      // The host refused a thread (a full pids cgroup, pid_max reached):
      // this request is refused; seedd and the calls it serves go on.
      {
        absl::MutexLock l(&mu_);
        conns_.erase(fd);
      }
      SendAll(fd, FormatHttpResponse(
                      ErrorResponse(503, absl::StrCat("the host refused seedd a thread for this "
                                                      "connection: ", e.what())),
                      false));
      close(fd);
      usleep(10000);
    }
  }
}

void HttpServer::ServeConnection(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kIdleTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string buf;
  char chunk[16384];
  for (bool open = true; open;) {
    HttpParse p = ParseHttpRequest(buf);
    if (p.state == HttpParse::kNeedMore) {
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, n);
      continue;
    }
    if (p.state == HttpParse::kBad) {
      SendAll(fd, FormatHttpResponse(ErrorResponse(p.error_code, p.error), false));
      break;
    }
    buf.erase(0, p.consumed);
    HttpResponse resp = handler_(p.request);
    open = p.request.keep_alive;
    if (!SendAll(fd, FormatHttpResponse(resp, open))) break;
  }
  {
    absl::MutexLock l(&mu_);
    conns_.erase(fd);
  }
  close(fd);
}

void HttpServer::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
    if (listener_ >= 0) shutdown(listener_, SHUT_RDWR);
    for (int fd : conns_) shutdown(fd, SHUT_RD);  // handlers in flight still answer
  }
  // Connections end once their handler returns.
  for (int i = 0; i < 3000; i++) {
    {
      absl::MutexLock l(&mu_);
      if (conns_.empty()) break;
    }
    usleep(1000);
  }
}

}  // namespace seedvisor::seedd
