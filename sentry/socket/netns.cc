#include "sentry/socket/netns.h"

#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>

namespace seedvisor::sentry {

namespace {

struct Request {
  int domain, type, protocol;
};

constexpr int kChannel = 3;

// Runs in the forked helper: only raw syscalls, no allocation or locks (the
// sentry was multi-threaded when it forked).
[[noreturn]] void HelperMain(int chan) {
  if (chan != kChannel) {
    dup2(chan, kChannel);
  }
  syscall(SYS_close_range, kChannel + 1, ~0U, 0);  // keep no guest file open
  for (int fd = 0; fd < kChannel; ++fd) close(fd);   // nor the sentry's stdio
  int err = 0;
  int ns = CLONE_NEWNET | (geteuid() == 0 ? 0 : CLONE_NEWUSER);
  if (unshare(ns) != 0) err = errno;
  if (!err) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
      err = errno;
    } else {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = errno;
    }
    if (s >= 0) close(s);
  }
  if (write(kChannel, &err, sizeof(err)) != sizeof(err) || err) _exit(1);
  for (;;) {
    Request r;
    ssize_t n = read(kChannel, &r, sizeof(r));
    if (n != sizeof(r)) _exit(0);  // the sentry is gone
    int fd = socket(r.domain, r.type | SOCK_CLOEXEC, r.protocol);
    int res = fd < 0 ? errno : 0;
    iovec iov{&res, sizeof(res)};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    if (fd >= 0) {
      h.msg_control = cbuf;
      h.msg_controllen = sizeof(cbuf);
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(kChannel, &h, MSG_NOSIGNAL) < 0) _exit(0);
    if (fd >= 0) close(fd);
  }
}

std::mutex g_mu;
int g_chan = -2;  // -2: not started; -1: failed

int StartHelper() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  // Double fork: the helper is nobody's child in the sentry, so no waitpid
  // of the platform's can see it.
  pid_t mid = fork();
  if (mid < 0) {
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  if (mid == 0) {
    if (fork() == 0) HelperMain(sv[1]);
    _exit(0);
  }
  close(sv[1]);
  waitpid(mid, nullptr, 0);
  int err = -1;
  if (read(sv[0], &err, sizeof(err)) != sizeof(err) || err != 0) {
    close(sv[0]);
    return -1;
  }
  return sv[0];
}

}  // namespace

void StartLoopbackNetwork() {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_chan == -2) g_chan = StartHelper();
}

Result<int> NetnsSocket(int domain, int type, int protocol) {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_chan == -2) g_chan = StartHelper();
  if (g_chan < 0) return Errno(EAFNOSUPPORT);
  Request r{domain, type & ~SOCK_CLOEXEC, protocol};
  if (write(g_chan, &r, sizeof(r)) != sizeof(r)) return Errno(EAFNOSUPPORT);
  int res = 0;
  iovec iov{&res, sizeof(res)};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = cbuf;
  h.msg_controllen = sizeof(cbuf);
  if (recvmsg(g_chan, &h, MSG_CMSG_CLOEXEC) != sizeof(res)) return Errno(EAFNOSUPPORT);
  if (res != 0) return Errno(res);
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  if (!c || c->cmsg_type != SCM_RIGHTS) return Errno(EAFNOSUPPORT);
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

}  // namespace seedvisor::sentry
