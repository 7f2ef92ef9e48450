#include "sentry/socket/netns.h"

#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "sentry/kernel/host_thread.h"

namespace seedvisor::sentry {

namespace {

// One sentry thread lives in the private namespace (network namespaces are
// per thread: unshare(CLONE_NEWNET) moves only the caller) and makes the
// sockets; a socket stays in the namespace it was made in, whichever thread
// uses it later. The thread unshares at start, before the sentry's seccomp
// filter would refuse unshare and the SIOCSIFFLAGS ioctl.
struct NetnsThread {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool ready = false;  // the namespace exists and lo is up
  bool failed = false;
  bool own = false;    // the process's own namespace: socket() directly
  // One request at a time.
  bool pending = false;
  int domain = 0, type = 0, protocol = 0;
  int result_fd = -1, result_errno = 0;
  bool answered = false;
};

NetnsThread* g = new NetnsThread;

int BringLoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  ifreq ifr{};
  memcpy(ifr.ifr_name, "lo", 3);
  int err = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    err = errno;
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  close(s);
  return err;
}

int SetUpNamespace() {
  if (unshare(CLONE_NEWNET) != 0) return errno;
  return BringLoopbackUp();
}

void ThreadMain() {
  int err = SetUpNamespace();
  std::unique_lock<std::mutex> l(g->mu);
  g->ready = err == 0;
  g->failed = err != 0;
  g->cv.notify_all();
  if (err) return;  // a thread that failed to unshare must make no sockets
  for (;;) {
    g->cv.wait(l, [] { return g->pending; });
    int fd = socket(g->domain, g->type | SOCK_CLOEXEC, g->protocol);
    g->result_fd = fd;
    g->result_errno = fd < 0 ? errno : 0;
    g->pending = false;
    g->answered = true;
    g->cv.notify_all();
  }
}

}  // namespace

void ResetLoopbackNetworkInForkChild() {
  g = new NetnsThread;  // the seed's (maybe locked, maybe waited on) leaks
}

int StartLoopbackNetwork() {
  std::unique_lock<std::mutex> l(g->mu);
  if (g->started) return 0;
  Result<HostThread> t = HostThread::Spawn();
  if (!t.ok()) return t.error().value();
  g->started = true;
  std::move(*t).Run(ThreadMain);
  g->cv.wait(l, [] { return g->ready || g->failed; });
  return 0;
}

int UseOwnNetworkNamespace() {
  std::unique_lock<std::mutex> l(g->mu);
  if (g->started) return EBUSY;
  g->started = true;
  int err = BringLoopbackUp();
  g->ready = err == 0;
  g->failed = err != 0;
  g->own = err == 0;
  return err;
}

Result<int> NetnsSocket(int domain, int type, int protocol) {
  // A sandbox fork's first socket starts its thread (see
  // ResetLoopbackNetworkInForkChild): the host may say no.
  if (int err = StartLoopbackNetwork(); err != 0) return Errno(err);
  if (g->own) {
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) return Errno(errno);
    return fd;
  }
  static std::mutex request_mu;  // one request in flight
  std::lock_guard<std::mutex> rl(request_mu);
  std::unique_lock<std::mutex> l(g->mu);
  if (!g->ready) return Errno(EAFNOSUPPORT);
  g->domain = domain;
  g->type = type & ~SOCK_CLOEXEC;
  g->protocol = protocol;
  g->pending = true;
  g->answered = false;
  g->cv.notify_all();
  g->cv.wait(l, [] { return g->answered; });
  if (g->result_fd < 0) return Errno(g->result_errno);
  return g->result_fd;
}

}  // namespace seedvisor::sentry
