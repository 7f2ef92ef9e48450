// Linux native AIO: io_setup, io_submit, io_getevents, io_pgetevents,
// io_cancel and io_destroy, with the completion ring where Linux maps it
// (issue 13).
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

long IoSetup(unsigned nr, aio_context_t* ctx) { return syscall(SYS_io_setup, nr, ctx); }
long IoDestroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
long IoSubmit(aio_context_t ctx, long nr, iocb** cbs) {
  return syscall(SYS_io_submit, ctx, nr, cbs);
}
long IoGetevents(aio_context_t ctx, long min, long nr, io_event* ev, timespec* ts) {
  return syscall(SYS_io_getevents, ctx, min, nr, ev, ts);
}

// struct aio_ring's header (fs/aio.c).
struct RingHeader {
  unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

iocb Prep(int fd, int op, void* buf, size_t n, off_t off) {
  iocb cb{};
  cb.aio_fildes = fd;
  cb.aio_lio_opcode = op;
  cb.aio_buf = reinterpret_cast<uint64_t>(buf);
  cb.aio_nbytes = n;
  cb.aio_offset = off;
  return cb;
}

class AioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(IoSetup(8, &ctx_));
    char path[] = "/tmp/aio_test_XXXXXX";
    fd_ = mkstemp(path);
    ASSERT_GE(fd_, 0);
    unlink(path);
  }
  void TearDown() override {
    if (ctx_) IoDestroy(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  // Submits one iocb and reaps its event.
  io_event Run(iocb cb) {
    iocb* p = &cb;
    io_event ev{};
    EXPECT_EQ(IoSubmit(ctx_, 1, &p), 1) << ErrnoName(errno);
    timespec ts{5, 0};
    EXPECT_EQ(IoGetevents(ctx_, 1, 1, &ev, &ts), 1) << ErrnoName(errno);
    EXPECT_EQ(ev.obj, reinterpret_cast<uint64_t>(p));
    return ev;
  }

  aio_context_t ctx_ = 0;
  int fd_ = -1;
};

TEST(AioSetupTest, BadArguments) {
  aio_context_t ctx = 0;
  EXPECT_ERRNO(EFAULT, IoSetup(1, nullptr));
  EXPECT_ERRNO(EINVAL, IoSetup(0, &ctx));
  EXPECT_ERRNO(EINVAL, IoSetup(-1, &ctx));
  memset(&ctx, 1, sizeof(ctx));
  EXPECT_ERRNO(EINVAL, IoSetup(1, &ctx));
  unsigned max = 0;
  std::ifstream("/proc/sys/fs/aio-max-nr") >> max;
  ASSERT_GT(max, 0u);
  ctx = 0;
  EXPECT_ERRNO(EAGAIN, IoSetup(max + 1, &ctx));
  EXPECT_EQ(ctx, 0u);
}

TEST(AioSetupTest, RingHeaderIsMappedAtTheContextId) {
  aio_context_t ctx = 0;
  ASSERT_OK(IoSetup(1, &ctx));
  ASSERT_NE(ctx, 0u);
  const RingHeader* h = reinterpret_cast<const RingHeader*>(ctx);
  EXPECT_EQ(h->magic, 0xa10a10a1u);
  EXPECT_EQ(h->header_length, sizeof(RingHeader));
  EXPECT_EQ(h->head, 0u);
  EXPECT_EQ(h->tail, 0u);
  // Whole pages: at least 2 events, all of the pages used.
  EXPECT_GE(h->nr, 2u);
  EXPECT_EQ((sizeof(RingHeader) + h->nr * sizeof(io_event)) % 4096, 0u);
  ASSERT_OK(IoDestroy(ctx));
  EXPECT_ERRNO(EINVAL, IoDestroy(ctx));
}

TEST(AioSetupTest, AioNrCountsLiveContexts) {
  auto aio_nr = [] {
    unsigned long n = 0;
    std::ifstream("/proc/sys/fs/aio-nr") >> n;
    return n;
  };
  unsigned long before = aio_nr();
  aio_context_t ctx = 0;
  ASSERT_OK(IoSetup(100, &ctx));
  EXPECT_GE(aio_nr(), before + 100);
  ASSERT_OK(IoDestroy(ctx));
}

TEST(AioSetupTest, InvalidContexts) {
  io_event ev;
  iocb cb{};
  iocb* p = &cb;
  EXPECT_ERRNO(EINVAL, IoDestroy(0));
  EXPECT_ERRNO(EINVAL, IoDestroy(~0ul));
  EXPECT_ERRNO(EINVAL, IoGetevents(0, 0, 0, nullptr, nullptr));
  EXPECT_ERRNO(EINVAL, IoSubmit(0, 1, &p));
  // A mapped page that is no ring.
  EXPECT_ERRNO(EINVAL, IoSubmit(reinterpret_cast<aio_context_t>(&ev), 1, &p));
  EXPECT_ERRNO(EFAULT, syscall(SYS_io_cancel, 0, nullptr, nullptr));
}

TEST_F(AioTest, WriteThenReadWithData) {
  char out[] = "hello aio";
  iocb w = Prep(fd_, IOCB_CMD_PWRITE, out, sizeof(out), 3);
  w.aio_data = 0x1234;
  io_event ev = Run(w);
  EXPECT_EQ(ev.res, static_cast<long>(sizeof(out)));
  EXPECT_EQ(ev.data, 0x1234u);
  char in[32] = {};
  ASSERT_EQ(pread(fd_, in, sizeof(in), 3), static_cast<ssize_t>(sizeof(out)));
  EXPECT_STREQ(in, out);
  // The file offset does not move.
  EXPECT_EQ(lseek(fd_, 0, SEEK_CUR), 0);
  memset(in, 0, sizeof(in));
  ev = Run(Prep(fd_, IOCB_CMD_PREAD, in, sizeof(in), 3));
  EXPECT_EQ(ev.res, static_cast<long>(sizeof(out)));
  EXPECT_STREQ(in, out);
  // Past the end: 0 bytes.
  ev = Run(Prep(fd_, IOCB_CMD_PREAD, in, sizeof(in), 4096));
  EXPECT_EQ(ev.res, 0);
}

TEST_F(AioTest, VectoredAndFsync) {
  char a[] = "abc", b[] = "defg";
  iovec wv[] = {{a, 3}, {b, 4}};
  io_event ev = Run(Prep(fd_, IOCB_CMD_PWRITEV, wv, 2, 0));
  EXPECT_EQ(ev.res, 7);
  char x[4] = {}, y[4] = {};
  iovec rv[] = {{x, 2}, {y, 4}};
  ev = Run(Prep(fd_, IOCB_CMD_PREADV, rv, 2, 0));
  EXPECT_EQ(ev.res, 6);
  EXPECT_EQ(std::string(x, 2), "ab");
  EXPECT_EQ(std::string(y, 4), "cdef");
  ev = Run(Prep(fd_, IOCB_CMD_FSYNC, nullptr, 0, 0));
  EXPECT_EQ(ev.res, 0);
  ev = Run(Prep(fd_, IOCB_CMD_FDSYNC, nullptr, 0, 0));
  EXPECT_EQ(ev.res, 0);
  // fsync takes no buffer.
  iocb bad = Prep(fd_, IOCB_CMD_FSYNC, x, 1, 0);
  iocb* p = &bad;
  EXPECT_ERRNO(EINVAL, IoSubmit(ctx_, 1, &p));
}

TEST_F(AioTest, SubmitErrors) {
  char buf[16];
  int rd = open("/proc/self/status", O_RDONLY);
  ASSERT_GE(rd, 0);
  iocb cbs[] = {
      Prep(-1, IOCB_CMD_PREAD, buf, sizeof(buf), 0),
      Prep(rd, IOCB_CMD_PWRITE, buf, sizeof(buf), 0),
      Prep(fd_, 99, buf, sizeof(buf), 0),
      Prep(fd_, IOCB_CMD_PREAD, buf, sizeof(buf), -1),
  };
  const int want[] = {EBADF, EBADF, EINVAL, EINVAL};
  for (size_t i = 0; i < std::size(cbs); ++i) {
    iocb* p = &cbs[i];
    SCOPED_TRACE(i);
    EXPECT_ERRNO(want[i], IoSubmit(ctx_, 1, &p));
  }
  iocb reserved = Prep(fd_, IOCB_CMD_PREAD, buf, sizeof(buf), 0);
  reserved.aio_reserved2 = 1;
  iocb* p = &reserved;
  EXPECT_ERRNO(EINVAL, IoSubmit(ctx_, 1, &p));
  EXPECT_ERRNO(EINVAL, IoSubmit(ctx_, -1, &p));
  EXPECT_ERRNO(EFAULT, IoSubmit(ctx_, 1, reinterpret_cast<iocb**>(-1)));
  iocb* null_cb = nullptr;
  EXPECT_ERRNO(EFAULT, IoSubmit(ctx_, 1, &null_cb));
  EXPECT_EQ(IoSubmit(ctx_, 0, nullptr), 0);
  // The first good iocb counts, the bad one after it ends the batch.
  iocb good = Prep(fd_, IOCB_CMD_PREAD, buf, sizeof(buf), 0);
  iocb* two[] = {&good, &cbs[0]};
  EXPECT_EQ(IoSubmit(ctx_, 2, two), 1);
  io_event ev;
  timespec zero{0, 0};
  EXPECT_EQ(IoGetevents(ctx_, 0, 2, &ev, &zero), 1);
  EXPECT_EQ(ev.obj, reinterpret_cast<uint64_t>(&good));
  close(rd);
}

TEST_F(AioTest, BadBufferIsTheEventsResult) {
  iocb cb = Prep(fd_, IOCB_CMD_PWRITE, reinterpret_cast<void*>(4096), 8, 0);
  iocb* p = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &p), 1);
  io_event ev{};
  timespec ts{5, 0};
  ASSERT_EQ(IoGetevents(ctx_, 1, 1, &ev, &ts), 1);
  EXPECT_EQ(ev.res, -EFAULT);
}

TEST_F(AioTest, EventfdIsSignalled) {
  int efd = eventfd(0, EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  char buf[8] = "x";
  iocb cb = Prep(fd_, IOCB_CMD_PWRITE, buf, 1, 0);
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = efd;
  iocb* p = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &p), 1);
  ASSERT_EQ(IoSubmit(ctx_, 1, &p), 1);
  uint64_t n = 0;
  ASSERT_EQ(read(efd, &n, sizeof(n)), 8);
  EXPECT_EQ(n, 2u);
  // Not an eventfd: EINVAL; no fd: EBADF.
  cb.aio_resfd = fd_;
  EXPECT_ERRNO(EINVAL, IoSubmit(ctx_, 1, &p));
  cb.aio_resfd = 1000;
  EXPECT_ERRNO(EBADF, IoSubmit(ctx_, 1, &p));
  close(efd);
}

// eventfd_signal() (an AIO completion's) may take the count to 2^64-1,
// which no write can: an overflow that poll, select and epoll report as
// POLLERR (readable, not writable) and a read returns (LTP eventfd06).
TEST_F(AioTest, EventfdOverflowIsPollerr) {
  int efd = eventfd(0, EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  const uint64_t almost = UINT64_MAX - 1;
  ASSERT_EQ(write(efd, &almost, sizeof(almost)), 8);
  char buf[8] = "x";
  iocb cb = Prep(fd_, IOCB_CMD_PWRITE, buf, 1, 0);
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = efd;
  EXPECT_EQ(Run(cb).res, 1);

  pollfd p{efd, POLLIN | POLLOUT, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  EXPECT_EQ(p.revents, POLLIN | POLLERR);
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(efd, &rd);
  FD_SET(efd, &wr);
  timeval tv{1, 0};
  // POLLERR counts as readable and as writable (select's POLLIN_SET and
  // POLLOUT_SET).
  ASSERT_EQ(select(efd + 1, &rd, &wr, nullptr, &tv), 2);
  EXPECT_TRUE(FD_ISSET(efd, &rd));
  EXPECT_TRUE(FD_ISSET(efd, &wr));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event e{};
  e.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e));
  ASSERT_EQ(epoll_wait(ep, &e, 1, 1000), 1);
  EXPECT_EQ(e.events, static_cast<uint32_t>(EPOLLIN | EPOLLERR));
  close(ep);
  // A write waits (would block) while the sum overflows.
  const uint64_t one = 1;
  EXPECT_ERRNO(EAGAIN, write(efd, &one, sizeof(one)));

  uint64_t n = 0;
  ASSERT_EQ(read(efd, &n, sizeof(n)), 8);
  EXPECT_EQ(n, UINT64_MAX);
  p.revents = 0;
  ASSERT_EQ(poll(&p, 1, 0), 1);
  EXPECT_EQ(p.revents, POLLOUT);
  close(efd);
}

TEST_F(AioTest, GeteventsWaitsAndTimesOut) {
  io_event ev[2];
  EXPECT_ERRNO(EINVAL, IoGetevents(ctx_, 2, 1, ev, nullptr));
  EXPECT_ERRNO(EINVAL, IoGetevents(ctx_, -1, 1, ev, nullptr));
  timespec ts{0, 100 * 1000 * 1000};
  int64_t start = NowMs();
  EXPECT_EQ(IoGetevents(ctx_, 1, 2, ev, &ts), 0);
  EXPECT_GE(NowMs() - start, 90);
  // Another thread's completion wakes a waiter.
  char buf[4] = "abc";
  std::thread submitter([&] {
    usleep(100 * 1000);
    iocb cb = Prep(fd_, IOCB_CMD_PWRITE, buf, 3, 0);
    iocb* p = &cb;
    EXPECT_EQ(IoSubmit(ctx_, 1, &p), 1);
  });
  timespec five{5, 0};
  EXPECT_EQ(IoGetevents(ctx_, 1, 2, ev, &five), 1);
  submitter.join();
  EXPECT_EQ(ev[0].res, 3);
}

TEST_F(AioTest, RingHeadAndTailMove) {
  const RingHeader* h = reinterpret_cast<const RingHeader*>(ctx_);
  char buf[4] = "abc";
  iocb cb = Prep(fd_, IOCB_CMD_PWRITE, buf, 3, 0);
  iocb* p = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &p), 1);
  EXPECT_EQ(h->tail, 1u);
  EXPECT_EQ(h->head, 0u);
  // The event is in the ring, where a user-space reaper reads it.
  const io_event* events = reinterpret_cast<const io_event*>(h + 1);
  EXPECT_EQ(events[0].obj, reinterpret_cast<uint64_t>(&cb));
  EXPECT_EQ(events[0].res, 3);
  io_event ev;
  ASSERT_EQ(IoGetevents(ctx_, 1, 1, &ev, nullptr), 1);
  EXPECT_EQ(h->head, 1u);
}

TEST_F(AioTest, FullRingIsEagain) {
  const RingHeader* h = reinterpret_cast<const RingHeader*>(ctx_);
  char buf[1] = {'x'};
  iocb cb = Prep(fd_, IOCB_CMD_PWRITE, buf, 1, 0);
  iocb* p = &cb;
  long taken = 0;
  for (unsigned i = 0; i < h->nr; ++i) {
    long r = IoSubmit(ctx_, 1, &p);
    int err = errno;
    if (r != 1) {
      EXPECT_EQ(r, -1);
      EXPECT_EQ(err, EAGAIN);
      break;
    }
    ++taken;
  }
  EXPECT_GE(taken, 8);
  EXPECT_LT(taken, static_cast<long>(h->nr));
}

TEST_F(AioTest, NowaitPipeReadIsEagain) {
  int p[2];
  ASSERT_OK(pipe(p));
  char buf[16];
  iocb cb = Prep(p[0], IOCB_CMD_PREAD, buf, sizeof(buf), 0);
  cb.aio_rw_flags = RWF_NOWAIT;
  io_event ev = Run(cb);
  EXPECT_EQ(ev.res, -EAGAIN);
  // With data there, the read takes it (a pipe has no offset).
  ASSERT_EQ(write(p[1], "hi", 2), 2);
  cb.aio_offset = 12345;
  ev = Run(cb);
  EXPECT_EQ(ev.res, 2);
  // fsync on a pipe: EINVAL.
  iocb fs = Prep(p[0], IOCB_CMD_FSYNC, nullptr, 0, 0);
  iocb* fp = &fs;
  EXPECT_ERRNO(EINVAL, IoSubmit(ctx_, 1, &fp));
  close(p[0]);
  close(p[1]);
}

TEST_F(AioTest, PollReadyFile) {
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  iocb cb = Prep(p[0], IOCB_CMD_POLL, nullptr, 0, 0);
  cb.aio_buf = POLLIN;
  io_event ev = Run(cb);
  EXPECT_EQ(ev.res & POLLIN, POLLIN);
  close(p[0]);
  close(p[1]);
}

// aio_poll(): a file that is not ready leaves the request in flight, and
// its event comes once the file is ready (io_getevents waits for it).
TEST_F(AioTest, PollWaitsForReadiness) {
  int p[2];
  ASSERT_OK(pipe(p));
  iocb cb = Prep(p[0], IOCB_CMD_POLL, nullptr, 0, 0);
  cb.aio_buf = POLLIN;
  cb.aio_data = 77;
  iocb* cp = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &cp), 1) << ErrnoName(errno);
  io_event ev{};
  timespec zero{0, 0};
  EXPECT_EQ(IoGetevents(ctx_, 1, 1, &ev, &zero), 0);  // not ready: nothing yet
  // A writer while io_getevents waits (or before it does: either way the
  // event comes once the pipe is readable).
  std::thread writer([&] { ASSERT_EQ(write(p[1], "x", 1), 1); });
  timespec ts{30, 0};
  EXPECT_EQ(IoGetevents(ctx_, 1, 1, &ev, &ts), 1) << ErrnoName(errno);
  writer.join();
  EXPECT_EQ(ev.data, 77u);
  EXPECT_EQ(ev.obj, reinterpret_cast<uint64_t>(&cb));
  EXPECT_EQ(ev.res & POLLIN, POLLIN);
  close(p[0]);
  close(p[1]);
}

// A poll in flight counts against the ring (reqs_available) and is what
// io_cancel finds: -EINPROGRESS, and its event (no events ready) follows.
TEST_F(AioTest, PollInFlightIsCancelled) {
  int p[2];
  ASSERT_OK(pipe(p));
  iocb cb = Prep(p[0], IOCB_CMD_POLL, nullptr, 0, 0);
  cb.aio_buf = POLLIN;
  iocb* cp = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &cp), 1) << ErrnoName(errno);
  io_event res{};
  EXPECT_ERRNO(EINPROGRESS, syscall(SYS_io_cancel, ctx_, &cb, &res));
  io_event ev{};
  timespec ts{30, 0};
  ASSERT_EQ(IoGetevents(ctx_, 1, 1, &ev, &ts), 1) << ErrnoName(errno);
  EXPECT_EQ(ev.obj, reinterpret_cast<uint64_t>(&cb));
  EXPECT_EQ(ev.res, 0);
  // Cancelled once: nothing left to cancel.
  EXPECT_ERRNO(EINVAL, syscall(SYS_io_cancel, ctx_, &cb, &res));
  close(p[0]);
  close(p[1]);
}

TEST_F(AioTest, CancelFindsNothing) {
  char buf[4];
  iocb cb = Prep(fd_, IOCB_CMD_PREAD, buf, sizeof(buf), 0);
  io_event res;
  // A key other than 0 (KIOCB_KEY) is EINVAL.
  cb.aio_key = 1;
  EXPECT_ERRNO(EINVAL, syscall(SYS_io_cancel, ctx_, &cb, &res));
  iocb* p = &cb;
  ASSERT_EQ(IoSubmit(ctx_, 1, &p), 1);  // sets aio_key to 0 (KIOCB_KEY)
  EXPECT_EQ(cb.aio_key, 0u);
  // Completed already: nothing to cancel.
  EXPECT_ERRNO(EINVAL, syscall(SYS_io_cancel, ctx_, &cb, &res));
}

TEST_F(AioTest, DestroyWakesAWaiter) {
  std::thread destroyer([&] {
    usleep(100 * 1000);
    EXPECT_OK(IoDestroy(ctx_));
  });
  io_event ev;
  timespec five{5, 0};
  EXPECT_ERRNO(EINVAL, IoGetevents(ctx_, 1, 1, &ev, &five));
  destroyer.join();
  ctx_ = 0;
}

TEST_F(AioTest, SignalInterruptsGetevents) {
  struct sigaction sa{};
  sa.sa_handler = [](int) {};
  ASSERT_OK(sigaction(SIGUSR1, &sa, nullptr));
  pthread_t self = pthread_self();
  std::thread killer([&] {
    usleep(100 * 1000);
    pthread_kill(self, SIGUSR1);
  });
  io_event ev;
  timespec five{5, 0};
  EXPECT_ERRNO(EINTR, IoGetevents(ctx_, 1, 1, &ev, &five));
  killer.join();
  signal(SIGUSR1, SIG_DFL);
}

TEST_F(AioTest, PgeteventsMasksSignals) {
  sigset_t mask;
  sigemptyset(&mask);
  struct {
    const sigset_t* sigmask;
    size_t sigsetsize;
  } usig = {&mask, 4};
  io_event ev;
  timespec zero{0, 0};
  EXPECT_ERRNO(EINVAL, syscall(SYS_io_pgetevents, ctx_, 1, 1, &ev, &zero, &usig));
  usig.sigsetsize = 8;
  EXPECT_EQ(syscall(SYS_io_pgetevents, ctx_, 1, 1, &ev, &zero, &usig), 0);
  EXPECT_ERRNO(EFAULT, syscall(SYS_io_pgetevents, ctx_, 1, 1, &ev, &zero, 8));
}

TEST_F(AioTest, ForkChildHasNoContext) {
  int status = RunInChild([&] {
    // The ring is not mapped in the child (VM_DONTCOPY), so no context.
    iocb cb{};
    iocb* p = &cb;
    if (syscall(SYS_io_submit, ctx_, 1, &p) != -1 || errno != EINVAL) return 1;
    aio_context_t mine = 0;
    if (IoSetup(1, &mine) != 0) return 2;
    return IoDestroy(mine) == 0 ? 0 : 3;
  });
  EXPECT_EQ(status, 0);
  // The parent's context still works.
  char buf[2] = "x";
  EXPECT_EQ(Run(Prep(fd_, IOCB_CMD_PWRITE, buf, 1, 0)).res, 1);
}

// A poll in flight holds its file (as Linux's iocb does) until its context
// ends; an exit (exit_aio() kills every context) or an exec (the address
// space goes) ends it too, without io_destroy. Seen from the pipe: once
// the child that polled its read end is gone, nobody reads, so a write
// fails EPIPE.
void ExpectPollReleasedWhenTheChildEnds(bool by_exec) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[1]);
    aio_context_t ctx = 0;
    if (IoSetup(4, &ctx) != 0) _exit(2);
    iocb cb = Prep(p[0], IOCB_CMD_POLL, nullptr, 0, 0);
    cb.aio_buf = POLLIN;
    iocb* cbs[] = {&cb};
    if (IoSubmit(ctx, 1, cbs) != 1) _exit(3);
    close(p[0]);  // only the poll holds the read end now
    if (by_exec) {
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(4);
    }
    _exit(0);
  }
  close(p[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  sighandler_t old = signal(SIGPIPE, SIG_IGN);
  EXPECT_ERRNO(EPIPE, write(p[1], "x", 1));
  signal(SIGPIPE, old);
  close(p[1]);
}

TEST(AioPollTest, ExitReleasesThePolledFile) { ExpectPollReleasedWhenTheChildEnds(false); }

TEST(AioPollTest, ExecReleasesThePolledFile) { ExpectPollReleasedWhenTheChildEnds(true); }

}  // namespace
}  // namespace syscall_test
