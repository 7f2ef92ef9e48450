// Conformance tests for pipes and eventfds as fs/pipe.c and fs/eventfd.c
// behave: wakeups on the other end's close, signals during blocking I/O,
// F_SETPIPE_SZ limits, buffer merging and packets, poll/epoll HUP and ERR
// per end, eventfd overflow.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Pipe {
  int r = -1, w = -1;
  explicit Pipe(int flags = 0) {
    int p[2];
    if (pipe2(p, flags) == 0) {
      r = p[0];
      w = p[1];
    }
  }
  ~Pipe() {
    CloseR();
    CloseW();
  }
  void CloseR() {
    if (r >= 0) close(r);
    r = -1;
  }
  void CloseW() {
    if (w >= 0) close(w);
    w = -1;
  }
};

// SIGPIPE blocked for the scope (so a test sees it pending instead of dying).
struct BlockSigpipe {
  sigset_t old;
  BlockSigpipe() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, &old);
  }
  ~BlockSigpipe() {
    // Drop a pending SIGPIPE before unblocking it.
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&s, nullptr, &zero) == SIGPIPE) {
    }
    sigprocmask(SIG_SETMASK, &old, nullptr);
  }
};

bool SigpipePending() {
  sigset_t p;
  sigpending(&p);
  return sigismember(&p, SIGPIPE);
}

void TakeSigpipe() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  timespec zero{0, 0};
  sigtimedwait(&s, nullptr, &zero);
}

short Revents(int fd, short events) {
  pollfd p{fd, events, 0};
  if (poll(&p, 1, 0) < 0) return -1;
  return p.revents;
}

// A handler that does nothing, installed without SA_RESTART unless asked.
struct Handler {
  int sig;
  struct sigaction old {};
  Handler(int s, bool restart) : sig(s) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(sig, &sa, &old);
  }
  ~Handler() { sigaction(sig, &old, nullptr); }
};

// Sends `sig` to this thread after `ms` milliseconds (a POSIX timer).
struct SignalLater {
  timer_t id{};
  SignalLater(int sig, int ms) {
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = sig;
    ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    timer_create(CLOCK_MONOTONIC, &ev, &id);
    itimerspec its{};
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (ms % 1000) * 1000000L;
    timer_settime(id, 0, &its, nullptr);
  }
  ~SignalLater() { timer_delete(id); }
};

// ------------------------------------------------------------- close wakeups

// The conformance issue: a blocked writer must wake when the last reader
// goes, return what it wrote (with SIGPIPE), and the next write is EPIPE.
TEST(PipeClose, BlockedWriteReturnsPartialCountWhenReaderCloses) {
  BlockSigpipe block;
  Pipe p;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p.w);
    usleep(100 * 1000);
    close(p.r);  // the last reader, without reading anything
    _exit(0);
  }
  p.CloseR();
  std::string big(128 * 1024, 'x');
  ssize_t n = write(p.w, big.data(), big.size());
  EXPECT_EQ(n, 65536) << ErrnoName(errno);
  EXPECT_TRUE(SigpipePending()) << "pipe_write() sends SIGPIPE with a partial count too";
  TakeSigpipe();
  EXPECT_ERRNO(EPIPE, write(p.w, "y", 1));
  EXPECT_TRUE(SigpipePending());
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(PipeClose, BlockedWriteWithNothingWrittenIsEpipe) {
  BlockSigpipe block;
  Pipe p;
  std::string fill(65536, 'f');
  ASSERT_EQ(write(p.w, fill.data(), fill.size()), 65536);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p.w);
    usleep(100 * 1000);
    _exit(0);  // closes the last reader
  }
  p.CloseR();
  EXPECT_ERRNO(EPIPE, write(p.w, "y", 1));
  EXPECT_TRUE(SigpipePending());
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
}

TEST(PipeClose, BlockedReaderGetsEofWhenLastWriterCloses) {
  Pipe p;
  int w2 = dup(p.w);
  ASSERT_GE(w2, 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p.r);
    usleep(50 * 1000);
    close(p.w);  // one writer left: the reader keeps waiting
    usleep(50 * 1000);
    close(w2);
    _exit(0);
  }
  p.CloseW();
  close(w2);
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char c;
  EXPECT_EQ(read(p.r, &c, 1), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  EXPECT_GE(ms, 80) << "EOF before the last writer closed";
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(PipeClose, BlockedReaderGetsDataThenEof) {
  Pipe p;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p.r);
    usleep(30 * 1000);
    if (write(p.w, "abc", 3) != 3) _exit(1);
    _exit(0);
  }
  p.CloseW();
  char buf[16];
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 3);
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 0);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

// ------------------------------------------------------------- signals

TEST(PipeSignal, BlockedReadIsEintrWithoutSaRestart) {
  Handler h(SIGUSR1, /*restart=*/false);
  Pipe p;
  SignalLater later(SIGUSR1, 50);
  char c;
  EXPECT_ERRNO(EINTR, read(p.r, &c, 1));
}

TEST(PipeSignal, BlockedReadRestartsWithSaRestart) {
  Handler h(SIGUSR1, /*restart=*/true);
  Pipe p;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(200 * 1000);  // after the signal below
    _exit(write(p.w, "z", 1) == 1 ? 0 : 1);
  }
  SignalLater later(SIGUSR1, 50);
  char c = 0;
  EXPECT_EQ(read(p.r, &c, 1), 1) << ErrnoName(errno);
  EXPECT_EQ(c, 'z');
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(PipeSignal, BlockedWriteReturnsPartialCountOnSignal) {
  Handler h(SIGUSR1, /*restart=*/true);  // a partial write is not restarted
  Pipe p;
  SignalLater later(SIGUSR1, 50);
  std::string big(100000, 'x');
  EXPECT_EQ(write(p.w, big.data(), big.size()), 65536);
}

TEST(PipeSignal, BlockedWriteWithNothingWrittenIsEintr) {
  Handler h(SIGUSR1, /*restart=*/false);
  Pipe p;
  std::string fill(65536, 'f');
  ASSERT_EQ(write(p.w, fill.data(), fill.size()), 65536);
  SignalLater later(SIGUSR1, 50);
  EXPECT_ERRNO(EINTR, write(p.w, "y", 1));
}

// ------------------------------------------------------------- sizes

TEST(PipeSize, ShrinkBelowHeldDataIsEbusy) {
  Pipe p(O_NONBLOCK);
  std::string page(4096, 'p');
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write(p.w, page.data(), page.size()), 4096);
  // Three slots in use: one or two pages are too few, four are fine.
  EXPECT_ERRNO(EBUSY, fcntl(p.w, F_SETPIPE_SZ, 4096));
  EXPECT_ERRNO(EBUSY, fcntl(p.r, F_SETPIPE_SZ, 8192));
  EXPECT_EQ(fcntl(p.w, F_GETPIPE_SZ), 65536);
  EXPECT_EQ(fcntl(p.w, F_SETPIPE_SZ, 16384), 16384);
  // Full now after one more page.
  ASSERT_EQ(write(p.w, page.data(), page.size()), 4096);
  EXPECT_ERRNO(EAGAIN, write(p.w, "x", 1));
  EXPECT_FALSE(Revents(p.w, POLLOUT) & POLLOUT);
  char buf[4096];
  ASSERT_EQ(read(p.r, buf, sizeof(buf)), 4096);
  EXPECT_TRUE(Revents(p.w, POLLOUT) & POLLOUT);
  EXPECT_EQ(fcntl(p.w, F_SETPIPE_SZ, 12288), 16384);
  // Growing the pipe makes room for a waiting writer's poll.
  ASSERT_EQ(write(p.w, page.data(), page.size()), 4096);
  EXPECT_FALSE(Revents(p.w, POLLOUT) & POLLOUT);
  EXPECT_EQ(fcntl(p.r, F_SETPIPE_SZ, 32768), 32768);
  EXPECT_TRUE(Revents(p.w, POLLOUT) & POLLOUT);
}

TEST(PipeSize, LimitsAndRounding) {
  Pipe p;
  EXPECT_EQ(fcntl(p.w, F_SETPIPE_SZ, 0), 4096);
  EXPECT_EQ(fcntl(p.w, F_SETPIPE_SZ, 5000), 8192);
  EXPECT_ERRNO(EINVAL, fcntl(p.w, F_SETPIPE_SZ, -1));  // 4 GiB - 1 as unsigned
  FILE* f = fopen("/proc/sys/fs/pipe-max-size", "r");
  ASSERT_NE(f, nullptr);
  long max = 0;
  ASSERT_EQ(fscanf(f, "%ld", &max), 1);
  fclose(f);
  EXPECT_GE(max, 65536);
  EXPECT_EQ(fcntl(p.w, F_SETPIPE_SZ, static_cast<int>(max)), max);
  EXPECT_EQ(fcntl(p.r, F_GETPIPE_SZ), max);
}

// pipe-max-size is root's to change (proc_dopipe_max_size()): a number,
// else EINVAL. (Only what it holds is written back: the host's is global.)
TEST(PipeSize, MaxSizeSysctlTakesNumbersFromRoot) {
  const std::string path = "/proc/sys/fs/pipe-max-size";
  const std::string now = ReadFile(path);
  ASSERT_FALSE(now.empty());
  EXPECT_EQ(RunAsNobody([&] {
              return open(path.c_str(), O_WRONLY) == -1 && errno == EACCES ? 0 : 1;
            }),
            0);
  if (geteuid() != 0) GTEST_SKIP() << "writes need root";
  auto write_value = [&](const std::string& v) -> int {
    FileDescriptor fd(open(path.c_str(), O_WRONLY));
    if (fd.get() < 0) return errno;
    return write(fd.get(), v.data(), v.size()) == static_cast<ssize_t>(v.size()) ? 0 : errno;
  };
  EXPECT_EQ(write_value("abc\n"), EINVAL);
  EXPECT_EQ(write_value(now), 0);
  EXPECT_EQ(ReadFile(path), now);
  // A pipe of an unprivileged user holds the default 16 pages, no more
  // than pipe-max-size.
  const long max = atol(now.c_str());
  EXPECT_EQ(RunAsNobody([&] {
              Pipe p;
              return fcntl(p.w, F_GETPIPE_SZ) == std::min(65536L, max) ? 0 : 1;
            }),
            0);
}

// Writes merge into the last page only when they fit there whole, so
// 1000-byte writes fill each of the 16 pages with 4000 bytes (pipe_write()).
TEST(PipeSize, SmallWritesMergeOnlyWhenTheyFit) {
  Pipe p(O_NONBLOCK);
  std::string chunk(1000, 'm');
  size_t total = 0;
  for (;;) {
    ssize_t n = write(p.w, chunk.data(), chunk.size());
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    EXPECT_EQ(n, 1000);
    total += n;
  }
  EXPECT_EQ(total, 64000u);
  int avail = 0;
  ASSERT_OK(ioctl(p.r, FIONREAD, &avail));
  EXPECT_EQ(avail, 64000);
}

TEST(PipeSize, NonblockingBigWriteIsPartial) {
  Pipe p(O_NONBLOCK);
  ASSERT_EQ(write(p.w, "abc", 3), 3);
  std::string big(70000, 'b');
  // The 3 bytes and 70000 & 4095 = 368 bytes share the first page; then 15
  // more pages.
  EXPECT_EQ(write(p.w, big.data(), big.size()), 368 + 15 * 4096);
  int avail = 0;
  ASSERT_OK(ioctl(p.r, FIONREAD, &avail));
  EXPECT_EQ(avail, 3 + 368 + 15 * 4096);
}

// ------------------------------------------------------------- packets

TEST(PipePacket, ODirectKeepsWriteBoundaries) {
  Pipe p(O_DIRECT | O_NONBLOCK);
  ASSERT_EQ(write(p.w, "hello", 5), 5);
  ASSERT_EQ(write(p.w, "wo", 2), 2);
  ASSERT_EQ(write(p.w, "rld!", 4), 4);
  char buf[64];
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  // A short read takes the packet's start and drops its rest.
  EXPECT_EQ(read(p.r, buf, 1), 1);
  EXPECT_EQ(buf[0], 'w');
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "rld!");
  EXPECT_ERRNO(EAGAIN, read(p.r, buf, sizeof(buf)));
  // Bigger than a page: one packet per page.
  std::string big(5000, 'q');
  ASSERT_EQ(write(p.w, big.data(), big.size()), 5000);
  char page[8192];
  EXPECT_EQ(read(p.r, page, sizeof(page)), 4096);
  EXPECT_EQ(read(p.r, page, sizeof(page)), 904);
}

// ------------------------------------------------------------- poll

TEST(PipePoll, ReadEndAfterWriterCloses) {
  Pipe p;
  EXPECT_EQ(Revents(p.r, POLLIN | POLLOUT), 0);  // a read end is never POLLOUT
  ASSERT_EQ(write(p.w, "d", 1), 1);
  EXPECT_EQ(Revents(p.r, POLLIN), POLLIN);
  p.CloseW();
  EXPECT_EQ(Revents(p.r, POLLIN), POLLIN | POLLHUP);
  char c;
  ASSERT_EQ(read(p.r, &c, 1), 1);
  EXPECT_EQ(Revents(p.r, POLLIN), POLLHUP);
  EXPECT_EQ(Revents(p.r, 0), POLLHUP);  // reported even when not asked for
}

TEST(PipePoll, WriteEndAfterReaderCloses) {
  Pipe p(O_NONBLOCK);
  EXPECT_EQ(Revents(p.w, POLLIN | POLLOUT), POLLOUT);  // never POLLIN
  std::string fill(65536, 'f');
  ASSERT_EQ(write(p.w, fill.data(), fill.size()), 65536);
  EXPECT_EQ(Revents(p.w, POLLOUT), 0);
  p.CloseR();
  EXPECT_EQ(Revents(p.w, POLLOUT), POLLERR);  // full, no reader
  EXPECT_EQ(Revents(p.w, 0), POLLERR);
}

TEST(PipePoll, WriteEndWithRoomAfterReaderCloses) {
  Pipe p;
  p.CloseR();
  EXPECT_EQ(Revents(p.w, POLLOUT), POLLOUT | POLLERR);
}

TEST(PipePoll, SelectSeesDataAndEof) {
  Pipe p;
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p.r, &rd);
  timeval tv{0, 0};
  EXPECT_EQ(select(p.r + 1, &rd, nullptr, nullptr, &tv), 0);
  ASSERT_EQ(write(p.w, "s", 1), 1);
  FD_SET(p.r, &rd);
  EXPECT_EQ(select(p.r + 1, &rd, nullptr, nullptr, &tv), 1);
  char c;
  ASSERT_EQ(read(p.r, &c, 1), 1);
  p.CloseW();
  FD_SET(p.r, &rd);
  EXPECT_EQ(select(p.r + 1, &rd, nullptr, nullptr, &tv), 1);  // EOF is readable
}

TEST(PipePoll, PollWokenByWriterInAnotherProcess) {
  Pipe p;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(50 * 1000);
    _exit(write(p.w, "w", 1) == 1 ? 0 : 1);
  }
  pollfd pf{p.r, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(pf.revents, POLLIN);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(PipePoll, PollWokenByLastWriterClose) {
  Pipe p;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p.r);
    usleep(50 * 1000);
    _exit(0);
  }
  p.CloseW();
  pollfd pf{p.r, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(pf.revents, POLLHUP);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
}

TEST(PipeEpoll, HupAndErrPerEnd) {
  Pipe p;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = 1;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p.r, &ev));
  ev.events = EPOLLOUT;
  ev.data.u32 = 2;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p.w, &ev));
  epoll_event out[4];
  ASSERT_EQ(epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].data.u32, 2u);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLOUT));
  // The reader goes (another fd of the write end keeps it registered).
  int w2 = dup(p.w);
  p.CloseR();
  ASSERT_EQ(epoll_wait(ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLOUT | EPOLLERR));
  close(ep);
  close(w2);

  Pipe q;
  ep = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u32 = 3;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, q.r, &ev));
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);
  q.CloseW();
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLHUP));
  close(ep);
}

// Every write to a polled pipe is a new EPOLLIN edge, also when it stays
// readable: through the pipe's pages, and for thousands of small writes.
TEST(PipeEpoll, EveryWriteIsAnEdge) {
  Pipe p(O_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p.r, &ev));
  epoll_event out[2];
  std::string chunk(3000, 'e');
  for (int i = 0; i < 16; ++i) {  // a page each; the last one fills the pipe
    ASSERT_EQ(write(p.w, chunk.data(), chunk.size()), 3000) << i;
    ASSERT_EQ(epoll_wait(ep, out, 2, 1000), 1) << "write " << i;
    EXPECT_EQ(out[0].events, static_cast<uint32_t>(EPOLLIN));
    EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
  }
  EXPECT_ERRNO(EAGAIN, write(p.w, chunk.data(), chunk.size()));
  std::string all(65536, 0);
  ASSERT_EQ(read(p.r, all.data(), all.size()), 48000);
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(write(p.w, "x", 1), 1) << i;
    ASSERT_EQ(epoll_wait(ep, out, 2, 1000), 1) << "write " << i;
    ASSERT_EQ(epoll_wait(ep, out, 2, 0), 0) << "write " << i;
  }
  ASSERT_EQ(read(p.r, all.data(), all.size()), 5000);
  EXPECT_EQ(epoll_wait(ep, out, 2, 0), 0);
  close(ep);
}

// ------------------------------------------------------------- reopen

TEST(PipeReopen, ProcFdGivesTheSamePipe) {
  Pipe p(O_NONBLOCK);
  struct stat st {};
  ASSERT_OK(fstat(p.r, &st));
  char link[64];
  std::string path = "/proc/self/fd/" + std::to_string(p.r);
  ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(link, n), "pipe:[" + std::to_string(st.st_ino) + "]");
  // A writer through the read end's link.
  int w2 = open(path.c_str(), O_WRONLY);
  ASSERT_GE(w2, 0) << ErrnoName(errno);
  ASSERT_EQ(write(w2, "via", 3), 3);
  char buf[8];
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 3);
  // The original writer closes: w2 still holds the pipe open, so no EOF.
  p.CloseW();
  EXPECT_ERRNO(EAGAIN, read(p.r, buf, sizeof(buf)));
  EXPECT_EQ(Revents(p.r, POLLIN), 0);
  close(w2);
  EXPECT_EQ(read(p.r, buf, sizeof(buf)), 0);
  EXPECT_EQ(Revents(p.r, POLLIN), POLLHUP);
}

// ------------------------------------------------------------- eventfd

TEST(Eventfd, OverflowBlocksUntilRead) {
  int e = eventfd(0, 0);
  ASSERT_GE(e, 0);
  uint64_t v = UINT64_MAX - 1;  // the most it holds
  ASSERT_EQ(write(e, &v, 8), 8);
  EXPECT_EQ(Revents(e, POLLIN | POLLOUT), POLLIN);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(50 * 1000);
    uint64_t got = 0;
    _exit(read(e, &got, 8) == 8 && got == UINT64_MAX - 1 ? 0 : 1);
  }
  v = 7;
  EXPECT_EQ(write(e, &v, 8), 8);  // blocked until the child read
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  uint64_t got = 0;
  ASSERT_EQ(read(e, &got, 8), 8);
  EXPECT_EQ(got, 7u);
  close(e);
}

TEST(Eventfd, OverflowNonblockingIsEagain) {
  int e = eventfd(5, EFD_NONBLOCK);
  uint64_t v = UINT64_MAX - 6;  // 5 + this = the most it holds
  ASSERT_EQ(write(e, &v, 8), 8);
  v = 1;
  EXPECT_ERRNO(EAGAIN, write(e, &v, 8));
  v = 0;
  EXPECT_EQ(write(e, &v, 8), 8);  // adding 0 always fits
  close(e);
}

TEST(Eventfd, BlockedWriteIsEintrOnSignal) {
  Handler h(SIGUSR1, /*restart=*/false);
  int e = eventfd(0, 0);
  uint64_t v = UINT64_MAX - 1;
  ASSERT_EQ(write(e, &v, 8), 8);
  SignalLater later(SIGUSR1, 50);
  v = 1;
  EXPECT_ERRNO(EINTR, write(e, &v, 8));
  close(e);
}

TEST(Eventfd, BlockedReadIsEintrOnSignal) {
  Handler h(SIGUSR1, /*restart=*/false);
  int e = eventfd(0, 0);
  SignalLater later(SIGUSR1, 50);
  uint64_t v;
  EXPECT_ERRNO(EINTR, read(e, &v, 8));
  close(e);
}

TEST(Eventfd, ReadAndWriteSizes) {
  int e = eventfd(3, EFD_NONBLOCK);
  char buf[16] = {};
  EXPECT_EQ(read(e, buf, sizeof(buf)), 8);  // more room than 8 bytes: 8
  uint64_t v;
  memcpy(&v, buf, 8);
  EXPECT_EQ(v, 3u);
  EXPECT_ERRNO(EINVAL, read(e, buf, 7));
  v = 2;
  memcpy(buf, &v, 8);
  // eventfd_write(): exactly 8 bytes.
  EXPECT_ERRNO(EINVAL, write(e, buf, 16));
  EXPECT_ERRNO(EINVAL, write(e, buf, 7));
  EXPECT_EQ(write(e, buf, 8), 8);
  int avail = -1;
  EXPECT_ERRNO(ENOTTY, ioctl(e, FIONREAD, &avail));
  close(e);
}

TEST(Eventfd, EdgeTriggeredEpollSeesEveryWrite) {
  int e = eventfd(0, EFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev));
  epoll_event out[1];
  for (int i = 0; i < 3; ++i) {
    uint64_t v = 1;
    ASSERT_EQ(write(e, &v, 8), 8);
    EXPECT_EQ(epoll_wait(ep, out, 1, 1000), 1) << i;
    EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0) << i;
  }
  uint64_t v;
  ASSERT_EQ(read(e, &v, 8), 8);
  EXPECT_EQ(v, 3u);
  EXPECT_EQ(Revents(e, POLLIN | POLLOUT), POLLOUT);
  close(ep);
  close(e);
}

TEST(Eventfd, ProcFdLinkAndStat) {
  int e = eventfd(0, 0);
  char link[64];
  std::string path = "/proc/self/fd/" + std::to_string(e);
  ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(link, n), "anon_inode:[eventfd]");
  struct stat st {};
  ASSERT_OK(fstat(e, &st));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  close(e);
}

// ------------------------------------------------------------- FIFOs

TEST(Fifo, OpensWaitForTheOtherSide) {
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(50 * 1000);
    int w = open(path.c_str(), O_WRONLY);  // the reader is waiting: no wait
    if (w < 0) _exit(1);
    if (write(w, "hi", 2) != 2) _exit(2);
    close(w);
    _exit(0);
  }
  int r = open(path.c_str(), O_RDONLY);  // waits for the writer
  ASSERT_GE(r, 0) << ErrnoName(errno);
  char buf[8];
  EXPECT_EQ(read(r, buf, sizeof(buf)), 2);
  EXPECT_EQ(read(r, buf, sizeof(buf)), 0);
  struct stat a {}, b {};
  ASSERT_OK(fstat(r, &a));
  ASSERT_OK(stat(path.c_str(), &b));
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  EXPECT_EQ(a.st_ino, b.st_ino);
  char link[4096];
  std::string fdpath = "/proc/self/fd/" + std::to_string(r);
  ssize_t n = readlink(fdpath.c_str(), link, sizeof(link) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(link, n).substr(n - 5), "/fifo");
  close(r);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(Fifo, WriterWaitsForReader) {
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(50 * 1000);
    int r = open(path.c_str(), O_RDONLY);
    if (r < 0) _exit(1);
    char buf[8];
    _exit(read(r, buf, sizeof(buf)) == 3 ? 0 : 2);
  }
  int w = open(path.c_str(), O_WRONLY);
  ASSERT_GE(w, 0) << ErrnoName(errno);
  EXPECT_EQ(write(w, "abc", 3), 3);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  close(w);
}

TEST(Fifo, NonblockingOpens) {
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  EXPECT_ERRNO(ENXIO, open(path.c_str(), O_WRONLY | O_NONBLOCK));
  int r = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(r, 0) << ErrnoName(errno);
  // No writer has come yet: not readable, no POLLHUP, read says EOF.
  EXPECT_EQ(Revents(r, POLLIN), 0);
  char buf[8];
  EXPECT_EQ(read(r, buf, sizeof(buf)), 0);
  int w = open(path.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0) << ErrnoName(errno);
  EXPECT_ERRNO(EAGAIN, read(r, buf, sizeof(buf)));
  ASSERT_EQ(write(w, "x", 1), 1);
  EXPECT_EQ(Revents(r, POLLIN), POLLIN);
  close(w);
  // The writer came and went: POLLHUP now.
  EXPECT_EQ(Revents(r, POLLIN), POLLIN | POLLHUP);
  EXPECT_EQ(read(r, buf, sizeof(buf)), 1);
  EXPECT_EQ(Revents(r, POLLIN), POLLHUP);
  close(r);
}

TEST(Fifo, PollBeforeAnyWriterHasNoHup) {
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  int r = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(r, 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    usleep(50 * 1000);
    int w = open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (w < 0) _exit(1);
    _exit(write(w, "late", 4) == 4 ? 0 : 2);
  }
  pollfd pf{r, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);  // woken by the data, not by a HUP
  EXPECT_TRUE(pf.revents & POLLIN) << pf.revents;
  char buf[8];
  EXPECT_EQ(read(r, buf, sizeof(buf)), 4);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  close(r);
}

TEST(Fifo, ReadWriteOpenNeverWaits) {
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  int rw = open(path.c_str(), O_RDWR);
  ASSERT_GE(rw, 0) << ErrnoName(errno);
  ASSERT_EQ(write(rw, "self", 4), 4);
  int w = open(path.c_str(), O_WRONLY | O_NONBLOCK);  // rw is a reader
  ASSERT_GE(w, 0) << ErrnoName(errno);
  ASSERT_EQ(write(w, "!", 1), 1);
  char buf[8];
  EXPECT_EQ(read(rw, buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "self!");
  EXPECT_EQ(Revents(rw, POLLIN | POLLOUT), POLLOUT);
  close(w);
  close(rw);
  // Data does not outlive the last open end.
  rw = open(path.c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(rw, 0);
  EXPECT_ERRNO(EAGAIN, read(rw, buf, sizeof(buf)));
  close(rw);
}

TEST(Fifo, BlockedOpenIsInterruptedBySignal) {
  Handler h(SIGUSR1, /*restart=*/false);
  TempDir dir;
  std::string path = dir.Path("fifo");
  ASSERT_OK(mkfifo(path.c_str(), 0600));
  SignalLater later(SIGUSR1, 50);
  EXPECT_ERRNO(EINTR, open(path.c_str(), O_RDONLY));
  // The interrupted open left no reader behind.
  EXPECT_ERRNO(ENXIO, open(path.c_str(), O_WRONLY | O_NONBLOCK));
}

}  // namespace
}  // namespace syscall_test
