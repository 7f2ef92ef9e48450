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

absl::Status WriteAllWithFds(int fd, absl::string_view data, const std::vector<int>& fds) {
  if (fds.empty()) return WriteAll(fd, data);
  if (fds.size() > kMaxSendFds || data.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttrpc write: ", fds.size(), " fds with ", data.size(), " bytes"));
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxSendFds)] = {};
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return absl::UnavailableError(absl::StrCat("ttrpc write: ", strerror(errno)));
  // The fds went with the first bytes; the rest (a short send) follows.
  return WriteAll(fd, data.substr(static_cast<size_t>(n)));
}

namespace {

// A msghdr over one byte of data and room for one fd.
struct OneFdMessage {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  OneFdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  OneFdMessage(const OneFdMessage&) = delete;
  OneFdMessage& operator=(const OneFdMessage&) = delete;
};

}  // namespace

absl::Status SendFd(int sock, int fd) {
  OneFdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &m.msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    return absl::UnavailableError(
        absl::StrCat("sendmsg: ", n < 0 ? strerror(errno) : "nothing sent"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ReceiveFd(int sock) {
  OneFdMessage m;
  char data[256];  // runc's senders put the pty's name here; we need only the fd
  m.iov = {data, sizeof(data)};
  ssize_t n;
  do {
    n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return absl::UnavailableError(absl::StrCat("recvmsg: ", strerror(errno)));
  // The control buffer has room for one fd; the kernel closes any more a
  // sender passed (MSG_CTRUNC), so no fd can leak here.
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg); c != nullptr; c = CMSG_NXTHDR(&m.msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
      break;
    }
  }
  if (fd < 0) {
    return absl::FailedPreconditionError(
        n == 0 ? "the peer closed without sending an fd" : "a message came without an fd");
  }
  return fd;
}

}  // namespace seedvisor::ttrpc
