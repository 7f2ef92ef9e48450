// Helpers for the socket tests: an owned fd and unix socket addresses.
#ifndef SEEDVISOR_TEST_SYSCALLS_SOCKET_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_SOCKET_UTIL_H_

#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <utility>

namespace syscall_test {

// An fd closed when it goes out of scope.
struct Fd {
  int fd;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  operator int() const { return fd; }
  void Close() {
    close(fd);
    fd = -1;
  }
};

// A msghdr with its own data and control buffers, for one recvmsg(2).
struct MsgBuf {
  char data[256];
  alignas(cmsghdr) char control[512];
  iovec iov{};
  msghdr h{};
  MsgBuf() {
    iov = {data, sizeof(data)};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof(control);
  }
  MsgBuf(const MsgBuf&) = delete;
  MsgBuf& operator=(const MsgBuf&) = delete;
};

// What `fd` polls for `events` now (-1 if poll failed).
inline short PollNow(int fd, short events = POLLIN | POLLOUT | POLLRDHUP) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

// An abstract unix address (no file), and its length.
inline std::pair<sockaddr_un, socklen_t> AbstractAddr(const std::string& name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path + 1, name.data(), name.size());
  return {a, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())};
}

// A name no other test run uses.
inline std::string UniqueName(const char* base) {
  return std::string(base) + "-" + std::to_string(getpid()) + "-" + std::to_string(rand());
}

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_SOCKET_UTIL_H_
