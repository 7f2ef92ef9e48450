// The eventfd counter without a kernel (non-blocking only) and its host
// readiness mirror.
#include "sentry/fs/eventfd/eventfd.h"

#include <fcntl.h>
#include <poll.h>

#include <cstring>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

// SAFETY: never dereferenced: non-blocking calls touch the task only to
// block it, and without kernel hooks nothing is notified.
Task& NoTask() {
  static char placeholder alignas(16)[64];
  return *reinterpret_cast<Task*>(placeholder);
}

short Revents(int fd) {
  pollfd p{fd, POLLIN | POLLOUT, 0};
  EXPECT_GE(poll(&p, 1, 0), 0);
  return p.revents;
}

Result<size_t> Add(EventFdFile& f, uint64_t v) {
  return f.Write(NoTask(), reinterpret_cast<const char*>(&v), sizeof(v));
}

uint64_t Take(EventFdFile& f) {
  uint64_t v = 0;
  auto r = f.Read(NoTask(), reinterpret_cast<char*>(&v), sizeof(v));
  return r.ok() ? v : 0;
}

TEST(EventFdTest, CounterOverflowAndMirror) {
  EventFdFile f(O_RDWR | O_NONBLOCK, 0, /*semaphore=*/false);
  int fd = f.PollFd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Revents(fd), POLLOUT);
  ASSERT_TRUE(Add(f, 3).ok());
  EXPECT_EQ(Revents(fd), POLLIN | POLLOUT);
  ASSERT_TRUE(Add(f, UINT64_MAX - 4).ok());  // now at the most it holds
  EXPECT_EQ(f.count(), UINT64_MAX - 1);
  EXPECT_EQ(Revents(fd), POLLIN);
  EXPECT_EQ(Add(f, 1).error(), Errno(EAGAIN));
  EXPECT_EQ(Add(f, UINT64_MAX).error(), Errno(EINVAL));
  EXPECT_EQ(Take(f), UINT64_MAX - 1);
  EXPECT_EQ(Revents(fd), POLLOUT);
  uint64_t v;
  EXPECT_EQ(f.Read(NoTask(), reinterpret_cast<char*>(&v), 8).error(), Errno(EAGAIN));
  EXPECT_EQ(f.Read(NoTask(), reinterpret_cast<char*>(&v), 4).error(), Errno(EINVAL));
}

TEST(EventFdTest, SemaphoreAndForkAdoption) {
  EventFdFile f(O_RDWR | O_NONBLOCK, 2, /*semaphore=*/true);
  int fd = f.PollFd();
  EXPECT_EQ(Revents(fd), POLLIN | POLLOUT);
  ForkFileContext ctx;
  ASSERT_TRUE(f.AdoptInForkChild(ctx).ok());
  int nfd = f.PollFd();
  EXPECT_EQ(Revents(nfd), POLLIN | POLLOUT);
  EXPECT_EQ(Take(f), 1u);
  EXPECT_EQ(Take(f), 1u);
  EXPECT_EQ(Revents(nfd), POLLOUT);
}

}  // namespace
}  // namespace seedvisor::sentry
