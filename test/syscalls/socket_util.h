// Helpers for the socket tests: an owned fd and unix socket addresses.
#ifndef SEEDVISOR_TEST_SYSCALLS_SOCKET_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_SOCKET_UTIL_H_

#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

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

// Both ends of a unix socketpair(2) of `type` (-1s if it failed).
struct Pair {
  Fd a, b;
};
inline Pair MakePair(int type) {
  int sv[2] = {-1, -1};
  socketpair(AF_UNIX, type, 0, sv);
  Pair p;
  p.a.fd = sv[0];
  p.b.fd = sv[1];
  return p;
}

// Socket paths must fit sun_path (108 bytes); $TEST_TMPDIR is often longer.
inline std::string TmpDir() {
  const char* d = getenv("TEST_TMPDIR");
  if (d && strlen(d) < 60) return d;
  return "/tmp";
}

// A unix address for a path, and its length.
inline std::pair<sockaddr_un, socklen_t> PathAddr(const std::string& p) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", p.c_str());
  return {a, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size() + 1)};
}

// Sends one byte over `via` with one SOL_SOCKET control message of `type`
// carrying `len` bytes of `data`; sendmsg's result.
inline ssize_t SendCmsg(int via, int type, const void* data, size_t len) {
  std::vector<char> cbuf(CMSG_SPACE(len));
  iovec iov{const_cast<char*>("f"), 1};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = cbuf.data();
  h.msg_controllen = cbuf.size();
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(c), data, len);
  return sendmsg(via, &h, 0);
}

// Sends `fds` over `via` (one byte with SCM_RIGHTS); sendmsg's result.
inline ssize_t SendFds(int via, const std::vector<int>& fds) {
  return SendCmsg(via, SCM_RIGHTS, fds.data(), fds.size() * sizeof(int));
}

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
