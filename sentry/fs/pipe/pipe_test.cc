// The pipe without a kernel: non-blocking I/O only (no task ever blocks or
// is notified, so the Task is a placeholder), checking that the host
// readiness mirror always polls as the guest pipe's state says.
#include "sentry/fs/pipe/pipe.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

// SAFETY: never dereferenced: non-blocking pipe calls touch the task only
// to block or signal it, and without kernel hooks nothing is notified.
Task& NoTask() {
  static char placeholder alignas(16)[64];
  return *reinterpret_cast<Task*>(placeholder);
}

short Revents(int fd) {
  pollfd p{fd, POLLIN | POLLOUT, 0};
  EXPECT_GE(poll(&p, 1, 0), 0);
  return p.revents;
}

struct Ends {
  FileRef r, w;
  PipeFile& rp() { return static_cast<PipeFile&>(*r); }
  PipeFile& wp() { return static_cast<PipeFile&>(*w); }
};

Ends Make(int flags = O_NONBLOCK) {
  auto ends = NewPipe(flags);
  EXPECT_TRUE(ends.ok());
  return {ends->first, ends->second};
}

TEST(PipeTest, MirrorFollowsRandomTraffic) {
  Ends e = Make();
  Pipe& p = e.rp().pipe();
  int rfd = e.r->PollFd(), wfd = e.w->PollFd();
  ASSERT_GE(rfd, 0);
  ASSERT_GE(wfd, 0);
  std::mt19937 rng(1234);
  std::string buf(70000, 'x');
  size_t held = 0;
  for (int i = 0; i < 20000; ++i) {
    if (rng() % 2) {
      size_t n = rng() % 3 == 0 ? rng() % 9000 : rng() % 8;
      auto w = e.w->Write(NoTask(), buf.data(), n);
      if (w.ok()) held += *w;
    } else {
      size_t n = rng() % 3 == 0 ? rng() % 9000 : rng() % 8;
      auto r = e.r->Read(NoTask(), buf.data(), n);
      if (r.ok()) held -= *r;
    }
    ASSERT_EQ(p.BytesHeld(), held);
    short want_r = held > 0 ? POLLIN : 0;
    short want_w = p.WritableNow() ? POLLOUT : 0;
    ASSERT_EQ(Revents(rfd), want_r) << "step " << i << ", " << held << " bytes";
    ASSERT_EQ(Revents(wfd), want_w) << "step " << i << ", " << held << " bytes";
  }
}

TEST(PipeTest, HangupAndErrorPerEnd) {
  Ends e = Make();
  int rfd = e.r->PollFd();
  ASSERT_EQ(e.w->Write(NoTask(), "ab", 2).value(), 2u);
  FileRef w2 = e.w;  // a dup: the description stays open
  e.w.reset();
  EXPECT_EQ(Revents(rfd), POLLIN);
  w2.reset();
  EXPECT_EQ(Revents(rfd), POLLIN | POLLHUP);
  char c[2];
  ASSERT_EQ(e.r->Read(NoTask(), c, 2).value(), 2u);
  EXPECT_EQ(Revents(rfd), POLLHUP);
  EXPECT_EQ(e.r->Read(NoTask(), c, 2).value(), 0u);  // EOF

  Ends f = Make();
  int wfd = f.w->PollFd();
  f.r.reset();
  EXPECT_EQ(Revents(wfd), POLLOUT | POLLERR);
  EXPECT_EQ(f.w->Write(NoTask(), "x", 1).error(), Errno(EPIPE));
}

TEST(PipeTest, ReopenedEndsCountAsReadersAndWriters) {
  Ends e = Make();
  int rfd = e.r->PollFd();
  auto rw = e.r->Reopen(O_RDWR | O_NONBLOCK);
  ASSERT_TRUE(rw.ok());
  int rwfd = (*rw)->PollFd();
  EXPECT_EQ(Revents(rwfd), POLLOUT);
  e.w.reset();
  EXPECT_EQ(Revents(rfd), 0);  // the O_RDWR end is still a writer
  ASSERT_EQ((*rw)->Write(NoTask(), "z", 1).value(), 1u);
  EXPECT_EQ(Revents(rwfd), POLLIN | POLLOUT);
  EXPECT_EQ(Revents(rfd), POLLIN);
  rw->reset();
  EXPECT_EQ(Revents(rfd), POLLIN | POLLHUP);
}

TEST(PipeTest, MirrorMadeLateShowsCurrentState) {
  Ends e = Make();
  std::string page(4096, 'p');
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(e.w->Write(NoTask(), page.data(), page.size()).ok());
  e.w.reset();  // full, and no writer: POLLIN | POLLHUP
  EXPECT_EQ(Revents(e.r->PollFd()), POLLIN | POLLHUP);
}

TEST(PipeTest, AdoptInForkChildMakesNewFdsWithTheSameState) {
  Ends e = Make();
  int rfd = e.r->PollFd(), wfd = e.w->PollFd();
  ASSERT_EQ(e.w->Write(NoTask(), "q", 1).value(), 1u);
  // Keep the old host fds open to tell the new ones apart.
  int old_r = dup(rfd), old_w = dup(wfd);
  ForkFileContext ctx;
  ASSERT_TRUE(e.r->AdoptInForkChild(ctx).ok());
  ASSERT_TRUE(e.w->AdoptInForkChild(ctx).ok());  // the pipe was done: nothing
  int nr = e.r->PollFd(), nw = e.w->PollFd();
  EXPECT_EQ(Revents(nr), POLLIN);
  EXPECT_EQ(Revents(nw), POLLOUT);
  char c;
  ASSERT_EQ(e.r->Read(NoTask(), &c, 1).value(), 1u);
  EXPECT_EQ(Revents(nr), 0);
  EXPECT_EQ(Revents(old_r), POLLIN);  // the old mirror is no longer kept
  close(old_r);
  close(old_w);
}

TEST(PipeTest, SetCapacity) {
  Ends e = Make();
  Pipe& p = e.rp().pipe();
  EXPECT_EQ(p.Capacity(), 65536u);
  EXPECT_EQ(p.SetCapacity(1, false).value(), 4096u);
  EXPECT_EQ(p.SetCapacity(2 << 20, false).error(), Errno(EPERM));
  EXPECT_EQ(p.SetCapacity(2 << 20, true).value(), size_t{2} << 20);
  EXPECT_EQ(p.SetCapacity((uint64_t{1} << 31) + 1, true).error(), Errno(EINVAL));
  std::string two(8192, 't');
  ASSERT_EQ(e.w->Write(NoTask(), two.data(), two.size()).value(), 8192u);
  EXPECT_EQ(p.SetCapacity(4096, false).error(), Errno(EBUSY));
  EXPECT_EQ(p.SetCapacity(8192, false).value(), 8192u);
  EXPECT_FALSE(p.WritableNow());
}

}  // namespace
}  // namespace seedvisor::sentry
