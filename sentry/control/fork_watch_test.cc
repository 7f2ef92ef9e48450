#include "sentry/control/fork_watch.h"

#include "gtest/gtest.h"

namespace seedvisor::control {
namespace {

class ForkWatchTest : public ::testing::Test {
 protected:
  absl::Duration now_ = absl::Seconds(1000);
  ForkWatch w_{[this] { return now_; }};
};

TEST_F(ForkWatchTest, NothingStalledBeforeTheLimit) {
  ForkWatch::Token t = w_.Begin("the Fork into \"c1\"");
  w_.Step(t, "waiting for the fork lock");
  now_ += absl::Seconds(4);
  EXPECT_TRUE(w_.Stalled(absl::Seconds(5)).empty());
}

TEST_F(ForkWatchTest, NamesTheStepAndTheLockHolderOnce) {
  ForkWatch::Token holder = w_.Begin("the Fork into \"c1\"");
  w_.Locked(holder);
  w_.Step(holder, "making a spare: forking its zygote from the seed's");
  now_ += absl::Seconds(1);
  ForkWatch::Token waiter = w_.Begin("the Fork into \"c2\"");
  w_.Step(waiter, "waiting for the fork lock");
  now_ += absl::Seconds(5);
  std::vector<std::string> lines = w_.Stalled(absl::Seconds(5));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "the Fork into \"c1\" has been making a spare: forking its zygote from the seed's for 6s; "
            "the fork lock is held by the Fork into \"c1\" for 6s, which is making a spare: forking "
            "its zygote from the seed's; 2 in flight");
  EXPECT_EQ(lines[1],
            "the Fork into \"c2\" has been waiting for the fork lock for 5s; the fork lock is held by "
            "the Fork into \"c1\" for 6s, which is making a spare: forking its zygote from the "
            "seed's; 2 in flight");
  // Each stalled step is told once...
  now_ += absl::Seconds(5);
  EXPECT_TRUE(w_.Stalled(absl::Seconds(5)).empty());
  // ...and a new step that stalls again.
  w_.Step(waiter, "waiting for the child's report");
  now_ += absl::Seconds(5);
  lines = w_.Stalled(absl::Seconds(5));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].substr(0, 60), "the Fork into \"c2\" has been waiting for the child's report f");
}

TEST_F(ForkWatchTest, EndedAndUnlockedAreForgotten) {
  ForkWatch::Token a = w_.Begin("the spare loop");
  w_.Locked(a);
  ForkWatch::Token b = w_.Begin("the Fork into \"c3\"");
  w_.Step(b, "waiting for the fork lock");
  w_.End(a);  // ends holding the lock: the lock is free again
  now_ += absl::Seconds(6);
  std::vector<std::string> lines = w_.Stalled(absl::Seconds(5));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "the Fork into \"c3\" has been waiting for the fork lock for 6s; the fork lock is free; "
            "1 in flight");
  w_.End(b);
  now_ += absl::Seconds(6);
  EXPECT_TRUE(w_.Stalled(absl::Seconds(5)).empty());
}

}  // namespace
}  // namespace seedvisor::control
