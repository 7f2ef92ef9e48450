// epoll (create1, ctl, wait, pwait, pwait2; level/edge triggered,
// EPOLLONESHOT) over pipes, eventfd, timerfd and signalfd; eventfd2;
// timerfd_*; signalfd4; memfd_create.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  operator int() const { return fd; }
};

void Add(int ep, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0) << strerror(errno);
}

// ---------------------------------------------------------------- epoll

TEST(EpollTest, CreateFlags) {
  EXPECT_ERRNO(EINVAL, epoll_create1(12345));
  EXPECT_ERRNO(EINVAL, epoll_create(0));
  Fd ep(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_GE(ep, 0);
  EXPECT_EQ(fcntl(ep, F_GETFD), FD_CLOEXEC);
  char c;
  EXPECT_ERRNO(EINVAL, read(ep, &c, 1));
}

TEST(EpollTest, CtlErrors) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]), w(p[1]);
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EINVAL, epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  EXPECT_ERRNO(EBADF, epoll_ctl(ep, EPOLL_CTL_ADD, 9999, &ev));
  EXPECT_ERRNO(EINVAL, epoll_ctl(r, EPOLL_CTL_ADD, w, &ev));  // r is no epoll fd
  EXPECT_ERRNO(ENOENT, epoll_ctl(ep, EPOLL_CTL_MOD, r, &ev));
  EXPECT_ERRNO(ENOENT, epoll_ctl(ep, EPOLL_CTL_DEL, r, nullptr));
  Add(ep, r, EPOLLIN, 1);
  EXPECT_ERRNO(EEXIST, epoll_ctl(ep, EPOLL_CTL_ADD, r, &ev));
  EXPECT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, r, nullptr), 0);
  // A regular file has no poll operation: EPERM (epoll_ctl(2)).
  Fd f(open("/proc/self/exe", O_RDONLY));
  ASSERT_GE(f, 0);
  EXPECT_ERRNO(EPERM, epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev));
  epoll_event out[4];
  EXPECT_ERRNO(EINVAL, epoll_wait(ep, out, 0, 0));
  EXPECT_ERRNO(EINVAL, epoll_wait(r, out, 4, 0));
}

TEST(EpollTest, LevelTriggeredPipe) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]), w(p[1]);
  Add(ep, r, EPOLLIN, 0xabcdef0123ULL);
  epoll_event out[4];
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
  ASSERT_EQ(write(w, "xy", 2), 2);
  for (int i = 0; i < 2; ++i) {  // level-triggered: reported until drained
    ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
    EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
    EXPECT_EQ(out[0].data.u64, 0xabcdef0123ULL);
  }
  char buf[2];
  ASSERT_EQ(read(r, buf, 2), 2);
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
  // Closing the write end: EPOLLHUP without asking for it.
  close(w.fd);
  w.fd = -1;
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_TRUE(out[0].events & EPOLLHUP);
}

TEST(EpollTest, EdgeTriggeredReportsOncePerChange) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK), 0);
  Fd r(p[0]), w(p[1]);
  Add(ep, r, EPOLLIN | EPOLLET, 7);
  ASSERT_EQ(write(w, "a", 1), 1);
  epoll_event out[4];
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);  // no new edge
  ASSERT_EQ(write(w, "b", 1), 1);
  EXPECT_EQ(epoll_wait(ep, out, 4, 1000), 1);
}

TEST(EpollTest, OneShotNeedsRearm) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]), w(p[1]);
  Add(ep, r, EPOLLIN | EPOLLONESHOT, 1);
  ASSERT_EQ(write(w, "a", 1), 1);
  epoll_event out[4];
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);  // disarmed though still readable
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = 2;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, r, &ev), 0);
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 2u);
}

TEST(EpollTest, WaitTimesOut) {
  Fd ep(epoll_create1(0));
  epoll_event out[1];
  int64_t t0 = NowMs();
  EXPECT_EQ(epoll_wait(ep, out, 1, 100), 0);
  EXPECT_GE(NowMs() - t0, 90);
  timespec ts{0, 50 * 1000000};
  t0 = NowMs();
  EXPECT_EQ(syscall(SYS_epoll_pwait2, ep.fd, out, 1, &ts, nullptr, 8), 0);
  EXPECT_GE(NowMs() - t0, 45);
}

TEST(EpollTest, WakesWhenAnotherProcessWrites) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]), w(p[1]);
  Add(ep, r, EPOLLIN, 5);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50000);
    _exit(write(w, "z", 1) == 1 ? 0 : 1);
  }
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(ep, out, 1, 5000), 1);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

void Nop(int) {}

TEST(EpollTest, PwaitSignalMaskAndEintr) {
  Fd ep(epoll_create1(0));
  struct sigaction sa {};
  sa.sa_handler = Nop;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &block, &old), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);  // pending while blocked
  epoll_event out[1];
  // epoll_wait keeps it blocked: plain timeout.
  EXPECT_EQ(epoll_wait(ep, out, 1, 20), 0);
  // epoll_pwait with an empty mask lets it in: EINTR, never restarted.
  sigset_t empty;
  sigemptyset(&empty);
  EXPECT_ERRNO(EINTR, epoll_pwait(ep, out, 1, 5000, &empty));
  // The old mask is back afterwards.
  sigset_t now;
  ASSERT_EQ(sigprocmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);
  signal(SIGUSR1, SIG_DFL);
}

TEST(EpollTest, PpollAndPselectSwapSignalMask) {
  struct sigaction sa {};
  sa.sa_handler = Nop;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  sigset_t block, old, empty;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigemptyset(&empty);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &block, &old), 0);
  timespec ts{5, 0};
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  EXPECT_ERRNO(EINTR, ppoll(nullptr, 0, &ts, &empty));
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  EXPECT_ERRNO(EINTR, pselect(0, nullptr, nullptr, nullptr, &ts, &empty));
  sigset_t now;
  ASSERT_EQ(sigprocmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  // Without a mask argument the blocked signal stays pending: a timeout.
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  timespec shortts{0, 20 * 1000000};
  EXPECT_EQ(ppoll(nullptr, 0, &shortts, nullptr), 0);
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);  // delivers it
  signal(SIGUSR1, SIG_DFL);
}

TEST(EpollTest, Nested) {
  Fd outer(epoll_create1(0)), inner(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]), w(p[1]);
  Add(inner, r, EPOLLIN, 1);
  Add(outer, inner, EPOLLIN, 2);
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(outer, out, 1, 0), 0);
  ASSERT_EQ(write(w, "a", 1), 1);
  ASSERT_EQ(epoll_wait(outer, out, 1, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 2u);
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(ELOOP, epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev));
}

TEST(EpollTest, CloseRemovesRegistration) {
  Fd ep(epoll_create1(0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd w(p[1]);
  Add(ep, p[0], EPOLLIN, 1);
  ASSERT_EQ(write(w, "a", 1), 1);
  close(p[0]);
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
}

// ---------------------------------------------------------------- eventfd

// Linux keys an interest by (file, fd): one open file under two fds is two
// registrations, and both live until the file is released, even after one
// of the fds is closed (epoll(7), Q&A 1 and 6).
TEST(EpollTest, SameFileUnderTwoFds) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd ep(epoll_create1(0));
  int d = dup(p[0]);
  ASSERT_GE(d, 0);
  Add(ep, p[0], EPOLLIN, 1);
  Add(ep, d, EPOLLIN, 2);
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EEXIST, epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  EXPECT_ERRNO(EEXIST, epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  epoll_event out[4];
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 2);
  EXPECT_EQ(out[0].data.u64 + out[1].data.u64, 3u);
  // Its own events per registration.
  ev.events = EPOLLOUT;
  ev.data.u64 = 5;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev), 0);
  ASSERT_EQ(epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].data.u64, 1u);
  ev.events = EPOLLIN;
  ev.data.u64 = 2;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev), 0);
  // Closing one fd keeps both registrations: the file is still open.
  close(p[0]);
  ASSERT_EQ(epoll_wait(ep, out, 4, 0), 2);
  // Deleting through the other fd removes only that one.
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, d, nullptr), 0);
  ASSERT_EQ(epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].data.u64, 1u);
  EXPECT_ERRNO(ENOENT, epoll_ctl(ep, EPOLL_CTL_DEL, d, nullptr));
  EXPECT_ERRNO(ENOENT, epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev));
  // The last fd goes: the file is released and so is the registration.
  close(d);
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
  close(p[1]);
}

// Releasing one of many watched files ends its registrations (both fds of
// it) and no other's, whatever order the files were added in.
TEST(EpollTest, ReleaseEndsOnlyThatFilesRegistrations) {
  constexpr int kFiles = 8;
  Fd ep(epoll_create1(0));
  int r[kFiles], w[kFiles], d[kFiles];
  for (int i = 0; i < kFiles; ++i) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    r[i] = p[0];
    w[i] = p[1];
  }
  for (int i = kFiles - 1; i >= 0; --i) {
    d[i] = dup(r[i]);
    ASSERT_GE(d[i], 0);
    Add(ep, r[i], EPOLLIN, 100 + i);
    Add(ep, d[i], EPOLLIN, 200 + i);
    ASSERT_EQ(write(w[i], "x", 1), 1);
  }
  close(r[3]);
  close(d[3]);
  close(r[6]);
  close(d[6]);
  epoll_event out[4 * kFiles];
  ASSERT_EQ(epoll_wait(ep, out, 4 * kFiles, 0), 2 * (kFiles - 2));
  uint64_t seen = 0;
  for (int i = 0; i < 2 * (kFiles - 2); ++i) {
    uint64_t f = out[i].data.u64 % 100;
    EXPECT_TRUE(f != 3 && f != 6) << out[i].data.u64;
    seen |= uint64_t{1} << (out[i].data.u64 >= 200 ? kFiles + f : f);
  }
  EXPECT_EQ(seen, ((uint64_t{1} << (2 * kFiles)) - 1) & ~uint64_t{0x4848});
  for (int i = 0; i < kFiles; ++i) {
    if (i != 3 && i != 6) {
      close(r[i]);
      close(d[i]);
    }
    close(w[i]);
  }
}

// A registration through a dup keeps no pipe end alive: the reader sees
// EOF once the guest has closed every fd of the write end.
TEST(EpollTest, RegistrationsDoNotHoldFilesOpen) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd ep(epoll_create1(0));
  int d = dup(p[1]);
  Add(ep, p[1], EPOLLOUT, 1);
  Add(ep, d, EPOLLOUT, 2);
  close(p[1]);
  close(d);
  char c;
  EXPECT_EQ(read(p[0], &c, 1), 0);
  close(p[0]);
}

TEST(EpollTest, EpollOfAnEpoll) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd inner(epoll_create1(0));
  Fd outer(epoll_create1(0));
  Add(inner, p[0], EPOLLIN, 7);
  Add(outer, inner, EPOLLIN, 9);
  epoll_event out[2];
  EXPECT_EQ(epoll_wait(outer, out, 2, 0), 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_EQ(epoll_wait(outer, out, 2, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 9u);
  ASSERT_EQ(epoll_wait(inner, out, 2, 0), 1);
  EXPECT_EQ(out[0].data.u64, 7u);
  // A loop is refused (ELOOP).
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(ELOOP, epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev));
  close(p[0]);
  close(p[1]);
}

TEST(EventfdTest, CounterAndSemaphore) {
  Fd e(eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC));
  ASSERT_GE(e, 0);
  EXPECT_EQ(fcntl(e, F_GETFD), FD_CLOEXEC);
  uint64_t v = 0;
  ASSERT_EQ(read(e, &v, 8), 8);
  EXPECT_EQ(v, 5u);
  EXPECT_ERRNO(EAGAIN, read(e, &v, 8));
  EXPECT_ERRNO(EINVAL, read(e, &v, 4));
  v = UINT64_MAX;
  EXPECT_ERRNO(EINVAL, write(e, &v, 8));
  EXPECT_ERRNO(EINVAL, eventfd(0, 0x4000000));

  Fd s(eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK));
  ASSERT_EQ(read(s, &v, 8), 8);
  EXPECT_EQ(v, 1u);
  ASSERT_EQ(read(s, &v, 8), 8);
  EXPECT_EQ(v, 1u);
  EXPECT_ERRNO(EAGAIN, read(s, &v, 8));
}

TEST(EventfdTest, BlockingReadWokenByWriter) {
  Fd e(eventfd(0, 0));
  pid_t pid = fork();
  if (pid == 0) {
    usleep(30000);
    uint64_t one = 3;
    _exit(write(e, &one, 8) == 8 ? 0 : 1);
  }
  uint64_t v = 0;
  EXPECT_EQ(read(e, &v, 8), 8);
  EXPECT_EQ(v, 3u);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(EventfdTest, EpollReadiness) {
  Fd ep(epoll_create1(0));
  Fd e(eventfd(0, EFD_NONBLOCK));
  Add(ep, e, EPOLLIN | EPOLLOUT, 9);
  epoll_event out[1];
  ASSERT_EQ(epoll_wait(ep, out, 1, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLOUT));
  uint64_t v = 1;
  ASSERT_EQ(write(e, &v, 8), 8);
  ASSERT_EQ(epoll_wait(ep, out, 1, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN | EPOLLOUT));
}

// ---------------------------------------------------------------- timerfd

TEST(TimerfdTest, CreateErrors) {
  EXPECT_ERRNO(EINVAL, timerfd_create(CLOCK_MONOTONIC, 0x1234));
  EXPECT_ERRNO(EINVAL, timerfd_create(12345, 0));
  Fd e(eventfd(0, 0));
  itimerspec its{};
  EXPECT_ERRNO(EINVAL, timerfd_settime(e, 0, &its, nullptr));
}

TEST(TimerfdTest, ExpiresAndCountsOverruns) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
  ASSERT_GE(t, 0);
  itimerspec its{};
  its.it_value.tv_nsec = 20 * 1000000;
  its.it_interval.tv_nsec = 10 * 1000000;
  ASSERT_EQ(timerfd_settime(t, 0, &its, nullptr), 0);
  itimerspec cur{};
  ASSERT_EQ(timerfd_gettime(t, &cur), 0);
  EXPECT_EQ(cur.it_interval.tv_nsec, 10 * 1000000);
  EXPECT_GT(cur.it_value.tv_nsec, 0);
  uint64_t n = 0;
  ASSERT_EQ(read(t, &n, 8), 8);  // blocks until the first expiry
  EXPECT_GE(n, 1u);
  usleep(60000);
  ASSERT_EQ(read(t, &n, 8), 8);
  EXPECT_GE(n, 3u);
  its = {};
  ASSERT_EQ(timerfd_settime(t, 0, &its, nullptr), 0);  // disarm
  ASSERT_EQ(fcntl(t, F_SETFL, O_NONBLOCK), 0);
  EXPECT_ERRNO(EAGAIN, read(t, &n, 8));
}

TEST(TimerfdTest, AbsoluteRealtimeWithEpoll) {
  Fd t(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK));
  Fd ep(epoll_create1(0));
  Add(ep, t, EPOLLIN, 3);
  itimerspec its{};
  clock_gettime(CLOCK_REALTIME, &its.it_value);
  its.it_value.tv_nsec += 30 * 1000000;
  if (its.it_value.tv_nsec >= 1000000000) {
    its.it_value.tv_sec++;
    its.it_value.tv_nsec -= 1000000000;
  }
  ASSERT_EQ(timerfd_settime(t, TFD_TIMER_ABSTIME, &its, nullptr), 0);
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
  ASSERT_EQ(epoll_wait(ep, out, 1, 5000), 1);
  EXPECT_EQ(out[0].data.u64, 3u);
}

// ---------------------------------------------------------------- signalfd

TEST(SignalfdTest, ReadsBlockedSignals) {
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &mask, &old), 0);
  Fd s(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  ASSERT_GE(s, 0);
  signalfd_siginfo si{};
  EXPECT_ERRNO(EAGAIN, read(s, &si, sizeof(si)));
  EXPECT_ERRNO(EINVAL, read(s, &si, sizeof(si) - 1));
  Fd ep(epoll_create1(0));
  Add(ep, s, EPOLLIN, 4);
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  ASSERT_EQ(epoll_wait(ep, out, 1, 1000), 1);
  ASSERT_EQ(read(s, &si, sizeof(si)), static_cast<ssize_t>(sizeof(si)));
  EXPECT_EQ(si.ssi_signo, static_cast<uint32_t>(SIGUSR2));
  EXPECT_EQ(si.ssi_pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(si.ssi_code, SI_USER);
  // Consumed: no longer pending.
  sigset_t pending;
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGUSR2));
  EXPECT_ERRNO(EAGAIN, read(s, &si, sizeof(si)));
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);
}

TEST(SignalfdTest, BlockingReadAndMaskUpdate) {
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGUSR2);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &mask, &old), 0);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, SIGUSR1);
  Fd s(signalfd(-1, &one, 0));
  ASSERT_GE(s, 0);
  sigaddset(&one, SIGUSR2);
  EXPECT_EQ(signalfd(s, &one, 0), s.fd);  // replaces the mask
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    usleep(30000);
    _exit(kill(parent, SIGUSR2) == 0 ? 0 : 1);
  }
  signalfd_siginfo si{};
  ASSERT_EQ(read(s, &si, sizeof(si)), static_cast<ssize_t>(sizeof(si)));
  EXPECT_EQ(si.ssi_signo, static_cast<uint32_t>(SIGUSR2));
  EXPECT_EQ(si.ssi_pid, static_cast<uint32_t>(pid));
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);
}

TEST(SignalfdTest, SigwaitWokenByProcessSignalFromTimer) {
  // alarm(2) sends a process-wide SIGALRM that every thread blocks; the
  // thread in sigtimedwait must still be woken for it.
  int st = RunInChild([] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    alarm(1);
    timespec ts{10, 0};
    siginfo_t info;
    return sigtimedwait(&set, &info, &ts) == SIGALRM ? 0 : 1;
  });
  EXPECT_EXIT_CODE(st, 0);
}

// ---------------------------------------------------------------- memfd

TEST(MemfdTest, ReadWriteMapTruncate) {
  Fd m(memfd_create("seed", MFD_CLOEXEC));
  ASSERT_GE(m, 0);
  EXPECT_EQ(fcntl(m, F_GETFD), FD_CLOEXEC);
  ASSERT_EQ(ftruncate(m, 8192), 0);
  struct stat st;
  ASSERT_EQ(fstat(m, &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 8192);
  ASSERT_EQ(pwrite(m, "hello", 5, 4096), 5);
  void* p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(std::string(static_cast<char*>(p) + 4096, 5), "hello");
  memcpy(p, "world", 5);
  char buf[5];
  ASSERT_EQ(pread(m, buf, 5, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
  munmap(p, 8192);
  char link[256] = {};
  std::string path = "/proc/self/fd/" + std::to_string(m.fd);
  ASSERT_GT(readlink(path.c_str(), link, sizeof(link) - 1), 0);
  EXPECT_EQ(std::string(link), "/memfd:seed (deleted)");
}

TEST(MemfdTest, Errors) {
  EXPECT_ERRNO(EINVAL, memfd_create("x", 0x1000));
  std::string longname(300, 'a');
  EXPECT_ERRNO(EINVAL, memfd_create(longname.c_str(), 0));
  EXPECT_ERRNO(EFAULT, syscall(SYS_memfd_create, nullptr, 0));
}

}  // namespace
}  // namespace syscall_test
