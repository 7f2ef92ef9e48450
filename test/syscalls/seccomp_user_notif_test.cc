// seccomp user notification (man seccomp_unotify(2)): a filter installed
// with SECCOMP_FILTER_FLAG_NEW_LISTENER returns a listener fd, and a call
// its filter answers with SECCOMP_RET_USER_NOTIF waits for a supervisor to
// receive it (NOTIF_RECV) and answer (NOTIF_SEND: a value, an errno, or
// CONTINUE). The supervisor is another process that got the fd over a unix
// socket, or another thread of the same process. Also: NOTIF_ID_VALID,
// NOTIF_ADDFD (and one racing a signal), poll readiness, POLLHUP alone once
// the filter is orphaned, a signal withdrawing the notification (but not a
// received one with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV), a closed
// listener (ENOSYS) and one listener per filter stack (EBUSY).
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

using syscall_test::ArmHangGuard;
using syscall_test::DisarmHangGuard;
using syscall_test::RunInChild;

using Prog = std::vector<sock_filter>;

// A child's verdict: 0 when every check held, else the line that failed
// (also printed: an exit status keeps only its low 8 bits).
#define CHECK_OR_RETURN(cond)                                                                    \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); \
      return 1;                                                                                  \
    }                                                                                            \
  } while (0)

long Seccomp(unsigned op, unsigned flags, void* args) {
  return syscall(SYS_seccomp, op, flags, args);
}

// getppid gets `action`, everything else is allowed.
Prog OnGetppid(uint32_t action) {
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

long Install(Prog p, unsigned flags) {
  sock_fprog fp{static_cast<unsigned short>(p.size()), p.data()};
  return Seccomp(SECCOMP_SET_MODE_FILTER, flags, &fp);
}

// getppid notifies the listener this returns (-1 on failure).
int InstallNotifier(unsigned extra_flags = 0) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return static_cast<int>(
      Install(OnGetppid(SECCOMP_RET_USER_NOTIF), SECCOMP_FILTER_FLAG_NEW_LISTENER | extra_flags));
}

bool SendFd(int sock, int fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof(ctl);
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(fd));
  return sendmsg(sock, &m, 0) == 1;
}

int RecvFd(int sock) {
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof(ctl);
  if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return fd;
}

// A forked target that installs the notifier, hands its listener to us
// over a unix socket (closing its own copy, so ours is the only one) and
// runs `body`, whose result is its exit status.
struct Target {
  pid_t pid = -1;
  int listener = -1;

  explicit Target(const std::function<int()>& body, unsigned extra_flags = 0) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    pid = fork();
    if (pid == 0) {
      close(sv[0]);
      int fd = InstallNotifier(extra_flags);
      if (fd < 0 || !SendFd(sv[1], fd)) _exit(100);
      close(fd);
      close(sv[1]);
      _exit(body());
    }
    close(sv[1]);
    if (pid > 0) listener = RecvFd(sv[0]);
    close(sv[0]);
  }
  ~Target() {
    if (listener >= 0) close(listener);
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // The target's exit status (then it is gone).
  int Wait() {
    int status = -1;
    waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
};

int RecvNotif(int fd, seccomp_notif* n) {
  memset(n, 0, sizeof(*n));
  return ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, n);
}

int Reply(int fd, uint64_t id, int64_t val, int32_t error, uint32_t flags = 0) {
  seccomp_notif_resp r{};
  r.id = id;
  r.val = val;
  r.error = error;
  r.flags = flags;
  return ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

int IdValid(int fd, uint64_t id) { return ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id); }

short PollEvents(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN | POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) < 0) return -1;
  return p.revents;
}

TEST(SeccompUserNotifTest, ActionAvailAndSizes) {
  uint32_t action = SECCOMP_RET_USER_NOTIF;
  EXPECT_EQ(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action), 0);
  seccomp_notif_sizes sizes{};
  ASSERT_EQ(Seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes), 0);
  EXPECT_EQ(sizes.seccomp_notif, sizeof(seccomp_notif));
  EXPECT_EQ(sizes.seccomp_notif_resp, sizeof(seccomp_notif_resp));
  EXPECT_EQ(sizes.seccomp_data, sizeof(seccomp_data));
}

TEST(SeccompUserNotifTest, OneListenerPerStackAndTsyncNeedsEsrch) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
              const Prog p = OnGetppid(SECCOMP_RET_USER_NOTIF);
              // A TSYNC failure's thread id would look like a listener fd.
              errno = 0;
              CHECK_OR_RETURN(
                  Install(p, SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC) == -1 &&
                  errno == EINVAL);
              int fd = static_cast<int>(Install(p, SECCOMP_FILTER_FLAG_NEW_LISTENER |
                                                       SECCOMP_FILTER_FLAG_TSYNC |
                                                       SECCOMP_FILTER_FLAG_TSYNC_ESRCH));
              CHECK_OR_RETURN(fd >= 0);
              CHECK_OR_RETURN(fcntl(fd, F_GETFD) == FD_CLOEXEC);
              // A second listener on the same stack: EBUSY, and no filter
              // is added (a filter without one still is).
              errno = 0;
              CHECK_OR_RETURN(Install(p, SECCOMP_FILTER_FLAG_NEW_LISTENER) == -1 && errno == EBUSY);
              CHECK_OR_RETURN(Install(OnGetppid(SECCOMP_RET_ALLOW), 0) == 0);
              // Once the first is closed, a new one may come.
              close(fd);
              fd = static_cast<int>(Install(p, SECCOMP_FILTER_FLAG_NEW_LISTENER));
              CHECK_OR_RETURN(fd >= 0);
              return 0;
            }),
            0);
}

TEST(SeccompUserNotifTest, AnswersValueErrnoAndContinue) {
  ArmHangGuard(30);
  const pid_t parent = getpid();
  Target t([parent] {
    errno = 0;
    CHECK_OR_RETURN(syscall(SYS_getppid) == 42);
    CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == EPERM);
    CHECK_OR_RETURN(syscall(SYS_getppid) == parent);  // CONTINUE: the real call
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  // The buffer must come zeroed.
  seccomp_notif dirty{};
  dirty.flags = 1;
  EXPECT_ERRNO(EINVAL, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_RECV, &dirty));

  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  EXPECT_EQ(n.pid, static_cast<uint32_t>(t.pid));
  EXPECT_EQ(n.flags, 0u);
  EXPECT_EQ(n.data.nr, SYS_getppid);
  EXPECT_EQ(n.data.arch, static_cast<uint32_t>(AUDIT_ARCH_X86_64));
  EXPECT_EQ(IdValid(t.listener, n.id), 0);
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, n.id + 1));
  EXPECT_ERRNO(ENOENT, Reply(t.listener, n.id + 1, 0, 0));
  // CONTINUE takes neither a value nor an error; unknown flags are refused.
  EXPECT_ERRNO(EINVAL, Reply(t.listener, n.id, 1, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE));
  EXPECT_ERRNO(EINVAL, Reply(t.listener, n.id, 0, 0, 2));
  ASSERT_EQ(Reply(t.listener, n.id, 42, 0), 0);

  const uint64_t first = n.id;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  EXPECT_NE(n.id, first);
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, first));  // answered
  ASSERT_EQ(Reply(t.listener, n.id, 0, -EPERM), 0);

  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  ASSERT_EQ(Reply(t.listener, n.id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  DisarmHangGuard();
}

// The supervisor is a thread of the target's own process (made before the
// filter, so the filter is not its).
TEST(SeccompUserNotifTest, SupervisorThreadOfTheSameProcess) {
  EXPECT_EQ(RunInChild([] {
              std::atomic<int> fd{-1};
              std::atomic<int> seen_pid{0};
              std::thread sup([&] {
                while (fd.load() < 0) usleep(1000);
                seccomp_notif n;
                if (RecvNotif(fd.load(), &n) != 0) return;
                seen_pid = static_cast<int>(n.pid);
                Reply(fd.load(), n.id, 7, 0);
              });
              const int l = InstallNotifier();
              if (l < 0) {
                fd = 1 << 20;  // lets the thread end
                sup.join();
                CHECK_OR_RETURN(l >= 0);
              }
              fd = l;
              const long r = syscall(SYS_getppid);
              sup.join();
              CHECK_OR_RETURN(r == 7);
              CHECK_OR_RETURN(seen_pid.load() == static_cast<int>(syscall(SYS_gettid)));
              return 0;
            }),
            0);
}

TEST(SeccompUserNotifTest, AddFd) {
  ArmHangGuard(30);
  Target t([] {
    // The supervisor put a pipe's write end at 77, then answers 77.
    long r = syscall(SYS_getppid);
    CHECK_OR_RETURN(r == 77);
    CHECK_OR_RETURN(fcntl(77, F_GETFD) == FD_CLOEXEC);
    CHECK_OR_RETURN(write(77, "a", 1) == 1);
    // SEND: the call returns the new fd.
    r = syscall(SYS_getppid);
    CHECK_OR_RETURN(r >= 0 && r != 77);
    CHECK_OR_RETURN(fcntl(static_cast<int>(r), F_GETFD) == 0);
    CHECK_OR_RETURN(write(static_cast<int>(r), "b", 1) == 1);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);

  seccomp_notif_addfd a{};
  a.id = n.id;
  a.srcfd = static_cast<uint32_t>(p[1]);
  a.newfd = 77;  // without SETFD
  EXPECT_ERRNO(EINVAL, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  a.flags = 1u << 5;
  EXPECT_ERRNO(EINVAL, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  a.flags = SECCOMP_ADDFD_FLAG_SETFD;
  a.newfd_flags = O_NONBLOCK;
  EXPECT_ERRNO(EINVAL, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  a.newfd_flags = O_CLOEXEC;
  a.id = n.id + 1;
  EXPECT_ERRNO(ENOENT, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  a.id = n.id;
  a.srcfd = 9999;
  EXPECT_ERRNO(EBADF, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  a.srcfd = static_cast<uint32_t>(p[1]);
  ASSERT_EQ(ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a), 77);
  ASSERT_EQ(Reply(t.listener, n.id, 77, 0), 0);

  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  seccomp_notif_addfd s{};
  s.id = n.id;
  s.srcfd = static_cast<uint32_t>(p[1]);
  s.flags = SECCOMP_ADDFD_FLAG_SEND;
  const int sent = ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &s);
  ASSERT_GE(sent, 0);
  EXPECT_NE(sent, 77);
  // That answered the call: no other answer is taken.
  EXPECT_EQ(Reply(t.listener, n.id, 1, 0), -1);
  close(p[1]);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  char buf[4] = {};
  EXPECT_EQ(read(p[0], buf, sizeof(buf)), 2);
  EXPECT_STREQ(buf, "ab");
  close(p[0]);
  DisarmHangGuard();
}

TEST(SeccompUserNotifTest, PollReadinessAndHangup) {
  ArmHangGuard(30);
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  Target t([&go] {
    char c;
    CHECK_OR_RETURN(read(go[0], &c, 1) == 1);
    CHECK_OR_RETURN(syscall(SYS_getppid) == 5);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  // Nothing queued, and the filter in use: no event.
  EXPECT_EQ(PollEvents(t.listener, 0), 0);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, t.listener, &ev), 0);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  // A notification to receive: POLLIN (the target may take a moment),
  // for epoll as well.
  EXPECT_EQ(PollEvents(t.listener, 10000), POLLIN);
  ASSERT_EQ(epoll_wait(ep, &ev, 1, 10000), 1);
  EXPECT_EQ(ev.events, static_cast<uint32_t>(EPOLLIN));
  close(ep);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  // Received, to be answered: POLLOUT.
  EXPECT_EQ(PollEvents(t.listener, 0), POLLOUT);
  // An epoll registration from while the filter was in use.
  const int ep_before = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep_before, 0);
  ev.events = EPOLLIN | EPOLLOUT;
  ASSERT_EQ(epoll_ctl(ep_before, EPOLL_CTL_ADD, t.listener, &ev), 0);
  ASSERT_EQ(Reply(t.listener, n.id, 5, 0), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // No task uses the filter any more: POLLHUP alone, nothing to receive
  // or answer (seccomp_notify_poll()), for epoll as well.
  EXPECT_EQ(PollEvents(t.listener, 10000), POLLHUP);
  ASSERT_EQ(epoll_wait(ep_before, &ev, 1, 10000), 1);
  EXPECT_EQ(ev.events, static_cast<uint32_t>(EPOLLHUP));
  close(ep_before);
  const int ep2 = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep2, 0);
  ev.events = EPOLLIN | EPOLLOUT;
  ASSERT_EQ(epoll_ctl(ep2, EPOLL_CTL_ADD, t.listener, &ev), 0);
  ASSERT_EQ(epoll_wait(ep2, &ev, 1, 10000), 1);
  EXPECT_EQ(ev.events, static_cast<uint32_t>(EPOLLHUP));
  close(ep2);
  close(go[0]);
  close(go[1]);
  DisarmHangGuard();
}

// A signal withdraws the notification and the call restarts (a new one,
// with a new id) with SA_RESTART, or fails with EINTR without it.
TEST(SeccompUserNotifTest, SignalWithdrawsTheNotification) {
  ArmHangGuard(30);
  static std::atomic<int> handled;
  handled = 0;
  Target t([] {
    struct sigaction sa {};
    sa.sa_handler = [](int) { handled++; };
    sa.sa_flags = SA_RESTART;
    CHECK_OR_RETURN(sigaction(SIGUSR1, &sa, nullptr) == 0);
    CHECK_OR_RETURN(syscall(SYS_getppid) == 9);
    CHECK_OR_RETURN(handled.load() == 1);
    sa.sa_flags = 0;
    CHECK_OR_RETURN(sigaction(SIGUSR1, &sa, nullptr) == 0);
    errno = 0;
    CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == EINTR);
    CHECK_OR_RETURN(handled.load() == 2);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  const uint64_t first = n.id;
  ASSERT_EQ(kill(t.pid, SIGUSR1), 0);
  // The restarted call's notification, under a new id; the old one is gone.
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  EXPECT_NE(n.id, first);
  EXPECT_EQ(n.data.nr, SYS_getppid);
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, first));
  EXPECT_ERRNO(ENOENT, Reply(t.listener, first, 1, 0));
  ASSERT_EQ(Reply(t.listener, n.id, 9, 0), 0);

  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  ASSERT_EQ(kill(t.pid, SIGUSR1), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, n.id));
  DisarmHangGuard();
}

TEST(SeccompUserNotifTest, IdInvalidOnceTheTargetIsKilled) {
  ArmHangGuard(30);
  Target t([] {
    syscall(SYS_getppid);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  EXPECT_EQ(IdValid(t.listener, n.id), 0);
  ASSERT_EQ(kill(t.pid, SIGKILL), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, n.id));
  EXPECT_ERRNO(ENOENT, Reply(t.listener, n.id, 0, 0));
  EXPECT_EQ(PollEvents(t.listener, 10000), POLLHUP);
  DisarmHangGuard();
}

// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the supervisor has received
// the notification, a signal no longer withdraws it; it stays pending until
// the call is answered. Before receipt a signal withdraws it as always.
TEST(SeccompUserNotifTest, WaitKillableRecv) {
  ArmHangGuard(30);
  static std::atomic<int> handled;
  handled = 0;
  Target t(
      [] {
        struct sigaction sa {};
        sa.sa_handler = [](int) { handled++; };
        CHECK_OR_RETURN(sigaction(SIGUSR1, &sa, nullptr) == 0);  // no SA_RESTART
        CHECK_OR_RETURN(syscall(SYS_getppid) == 9);
        CHECK_OR_RETURN(handled.load() == 1);  // delivered after the answer
        errno = 0;
        CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == EINTR);
        CHECK_OR_RETURN(handled.load() == 2);
        return 0;
      },
      SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  ASSERT_EQ(kill(t.pid, SIGUSR1), 0);
  // Time for the signal to withdraw the notification, were it to.
  usleep(200 * 1000);
  EXPECT_EQ(IdValid(t.listener, n.id), 0);
  EXPECT_EQ(PollEvents(t.listener, 0), POLLOUT);  // still ours to answer, no new one
  ASSERT_EQ(Reply(t.listener, n.id, 9, 0), 0);

  // Queued, not received: a signal withdraws it (EINTR without SA_RESTART).
  EXPECT_EQ(PollEvents(t.listener, 10000), POLLIN);
  ASSERT_EQ(kill(t.pid, SIGUSR1), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  DisarmHangGuard();
}

// SIGKILL still ends a killable wait; the flag needs a listener.
TEST(SeccompUserNotifTest, WaitKillableRecvEndsForSigkill) {
  ArmHangGuard(30);
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
              errno = 0;
              CHECK_OR_RETURN(Install(OnGetppid(SECCOMP_RET_ERRNO | 1),
                                      SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) == -1 &&
                              errno == EINVAL);
              return 0;
            }),
            0);
  Target t(
      [] {
        syscall(SYS_getppid);
        return 0;
      },
      SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  ASSERT_EQ(kill(t.pid, SIGKILL), 0);
  const int status = t.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_ERRNO(ENOENT, IdValid(t.listener, n.id));
  DisarmHangGuard();
}

// A notification a signal withdrew takes no ADDFD: ENOENT, and the target
// has no new fd.
TEST(SeccompUserNotifTest, AddFdAfterWithdrawal) {
  ArmHangGuard(30);
  int done[2], go[2];
  ASSERT_EQ(pipe(done), 0);
  ASSERT_EQ(pipe(go), 0);
  Target t([&] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    CHECK_OR_RETURN(sigaction(SIGUSR1, &sa, nullptr) == 0);  // no SA_RESTART
    errno = 0;
    CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == EINTR);
    CHECK_OR_RETURN(write(done[1], "x", 1) == 1);
    char c;
    CHECK_OR_RETURN(read(go[0], &c, 1) == 1);
    errno = 0;
    CHECK_OR_RETURN(fcntl(77, F_GETFD) == -1 && errno == EBADF);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  seccomp_notif n;
  ASSERT_EQ(RecvNotif(t.listener, &n), 0);
  ASSERT_EQ(kill(t.pid, SIGUSR1), 0);
  char c;
  ASSERT_EQ(read(done[0], &c, 1), 1);
  seccomp_notif_addfd a{};
  a.id = n.id;
  a.srcfd = static_cast<uint32_t>(go[1]);
  a.newfd = 77;
  a.flags = SECCOMP_ADDFD_FLAG_SETFD;
  EXPECT_ERRNO(ENOENT, ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a));
  ASSERT_EQ(write(go[1], "y", 1), 1);
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  for (int fd : {done[0], done[1], go[0], go[1]}) close(fd);
  DisarmHangGuard();
}

// ADDFD and a signal at once, many times: an ADDFD that succeeds has put
// its fd into the target, and one that fails (the target withdrew first:
// ESRCH while queued, ENOENT after) has put nothing there.
TEST(SeccompUserNotifTest, AddFdRacingASignal) {
  ArmHangGuard(120);
  constexpr int kRounds = 200;
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  Target t([&] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    CHECK_OR_RETURN(sigaction(SIGUSR1, &sa, nullptr) == 0);  // no SA_RESTART
    for (int i = 0; i < kRounds; ++i) {
      errno = 0;
      const long r = syscall(SYS_getppid);
      CHECK_OR_RETURN(r == 1 || (r == -1 && errno == EINTR));
      const char installed = fcntl(77, F_GETFD) == -1 ? 0 : 1;
      close(77);
      CHECK_OR_RETURN(write(report[1], &installed, 1) == 1);
    }
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int installed_rounds = 0, refused_rounds = 0;
  for (int i = 0; i < kRounds; ++i) {
    seccomp_notif n;
    ASSERT_EQ(RecvNotif(t.listener, &n), 0);
    std::thread killer([&] { kill(t.pid, SIGUSR1); });
    seccomp_notif_addfd a{};
    a.id = n.id;
    a.srcfd = static_cast<uint32_t>(p[1]);
    a.newfd = 77;
    a.flags = SECCOMP_ADDFD_FLAG_SETFD;
    errno = 0;
    const int r = ioctl(t.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
    const int err = errno;
    killer.join();
    Reply(t.listener, n.id, 1, 0);  // ENOENT if withdrawn
    char installed;
    ASSERT_EQ(read(report[0], &installed, 1), 1);
    if (r == 77) {
      EXPECT_EQ(installed, 1) << "round " << i;
      ++installed_rounds;
    } else {
      EXPECT_EQ(r, -1) << "round " << i;
      EXPECT_TRUE(err == ESRCH || err == ENOENT) << "round " << i << " errno " << err;
      EXPECT_EQ(installed, 0) << "round " << i << ": ADDFD failed, yet the fd is there";
      ++refused_rounds;
    }
  }
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  printf("ADDFD against a signal: %d installed, %d refused\n", installed_rounds, refused_rounds);
  for (int fd : {report[0], report[1], p[0], p[1]}) close(fd);
  DisarmHangGuard();
}

// Closing the listener answers the waiting call with ENOSYS, and later
// calls get ENOSYS at once.
TEST(SeccompUserNotifTest, ClosedListenerGivesEnosys) {
  ArmHangGuard(30);
  Target t([] {
    errno = 0;
    CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == ENOSYS);
    errno = 0;
    CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == ENOSYS);
    return 0;
  });
  ASSERT_GE(t.listener, 0);
  // Closed once the target waits (a notification is queued).
  EXPECT_EQ(PollEvents(t.listener, 10000), POLLIN);
  close(t.listener);
  t.listener = -1;
  const int status = t.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  DisarmHangGuard();
}

}  // namespace
