#include "sentry/fs/devpts/readiness.h"

#include <poll.h>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

short PollOf(const Readiness& r) {
  pollfd p{r.fd(), POLLIN | POLLOUT, 0};
  EXPECT_GE(poll(&p, 1, 0), 0);
  return p.revents;
}

TEST(Readiness, EveryCombinationPollsAsSet) {
  auto r = Readiness::Create();
  ASSERT_TRUE(r.ok());
  Readiness& rd = **r;
  EXPECT_EQ(PollOf(rd), POLLOUT);
  rd.Set(true, true);
  EXPECT_EQ(PollOf(rd), POLLIN | POLLOUT);
  rd.Set(true, false);
  EXPECT_EQ(PollOf(rd), POLLIN);
  rd.Set(false, false);
  EXPECT_EQ(PollOf(rd), 0);
  rd.Set(false, true);
  EXPECT_EQ(PollOf(rd), POLLOUT);
  rd.Set(true, true);
  rd.Set(true, true);  // idempotent
  EXPECT_EQ(PollOf(rd), POLLIN | POLLOUT);
}

TEST(Readiness, HangupIsFinal) {
  auto r = Readiness::Create();
  ASSERT_TRUE(r.ok());
  (*r)->Set(false, false);
  (*r)->Hangup();
  EXPECT_TRUE(PollOf(**r) & POLLHUP);
  EXPECT_TRUE(PollOf(**r) & POLLIN);
  (*r)->Set(false, false);
  EXPECT_TRUE(PollOf(**r) & POLLHUP);
}

}  // namespace
}  // namespace seedvisor::sentry
