#include "shim/ttrpc/socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace seedvisor::ttrpc {
namespace {

absl::StatusOr<sockaddr_un> MakeAddr(const std::string& address, socklen_t* len) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::string path = SocketPath(address);
  if (path.empty()) return absl::InvalidArgumentError("empty socket address");
  if (path.size() >= sizeof(sa.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path too long (", path.size(), " bytes): ", path));
  }
  memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                (path[0] == '@' ? 0 : 1));
  return sa;
}

}  // namespace

std::string SocketPath(const std::string& address) {
  if (absl::StartsWith(address, "unix://")) return address.substr(7);
  return address;
}

absl::StatusOr<int> ListenUnix(const std::string& address) {
  socklen_t len;
  auto sa = MakeAddr(address, &len);
  if (!sa.ok()) return sa.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (bind(fd, reinterpret_cast<sockaddr*>(&*sa), len) < 0) {
    int e = errno;
    close(fd);
    std::string msg = absl::StrCat("bind ", address, ": ", strerror(e));
    return e == EADDRINUSE ? absl::AlreadyExistsError(msg) : absl::InternalError(msg);
  }
  if (listen(fd, 64) < 0) {
    int e = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("listen ", address, ": ", strerror(e)));
  }
  return fd;
}

absl::StatusOr<int> DialUnix(const std::string& address) {
  socklen_t len;
  auto sa = MakeAddr(address, &len);
  if (!sa.ok()) return sa.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int r;
  do {
    r = connect(fd, reinterpret_cast<sockaddr*>(&*sa), len);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", strerror(e)));
  }
  return fd;
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("ttrpc write: ", strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::ttrpc
