#include "seedd/channel.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/wall_clock_step.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

TEST(Channel, FramesRoundTripThroughThePipes) {
  absl::StatusOr<Channel> ch = Channel::Make();
  ASSERT_TRUE(ch.ok()) << ch.status();
  // Loop the request pipe into the reply pipe: write to req_w, read req_r.
  std::string frame = Frame("{\"a\": 1}");
  ASSERT_EQ(frame.size(), 4u + 8u);
  EXPECT_EQ(frame.substr(0, 4), std::string("\0\0\0\x08", 4));
  ASSERT_EQ(write(ch->resp_w, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  absl::StatusOr<std::string> got = ReadFrame(ch->resp_r, Deadline::In(absl::Seconds(5)));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "{\"a\": 1}");
  EXPECT_EQ(Channel::FarPath(7), "/proc/" + std::to_string(getpid()) + "/fd/7");
}

TEST(Channel, ReadFrameTimesOutAndSeesEof) {
  absl::StatusOr<Channel> ch = Channel::Make();
  ASSERT_TRUE(ch.ok());
  absl::StatusOr<std::string> got = ReadFrame(ch->resp_r, Deadline::In(absl::Milliseconds(50)));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(write(ch->resp_w, "\0\0", 2), 2);
  ch->CloseFarEnds();
  got = ReadFrame(ch->resp_r, Deadline::In(absl::Seconds(5)));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Channel, RejectsOversizedFrames) {
  absl::StatusOr<Channel> ch = Channel::Make();
  ASSERT_TRUE(ch.ok());
  ASSERT_EQ(write(ch->resp_w, "\x7f\0\0\0", 4), 4);
  EXPECT_EQ(ReadFrame(ch->resp_r, Deadline::In(absl::Seconds(5))).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Channel, WriteNowStopsWhenThePipeIsFull) {
  absl::StatusOr<Channel> ch = Channel::Make();
  ASSERT_TRUE(ch.ok());
  std::string big(1 << 20, 'x');
  size_t n = WriteNow(ch->req_w, big);
  EXPECT_GT(n, 0u);
  EXPECT_LT(n, big.size());
  EXPECT_EQ(WriteAll(ch->req_w, "y", Deadline::In(absl::Milliseconds(50))).code(),
            absl::StatusCode::kDeadlineExceeded);
}

// Issue 10: the wall clock steps an hour while a reply is awaited. A step
// forward must not end the wait early (a frame's first bytes come, then
// the rest is late); a step back must not make it wait an hour (nothing
// comes). The deadline was absl::Now() + timeout: the first returned at the
// step's next wakeup, the second waited until the fallback frame below.
TEST(Channel, ReadFrameTimesOutOnTimeWhenTheWallClockSteps) {
  for (const absl::Duration step : {absl::Hours(1), -absl::Hours(1)}) {
    SCOPED_TRACE(absl::FormatDuration(step));
    absl::StatusOr<Channel> ch = Channel::Make();
    ASSERT_TRUE(ch.ok());
    std::atomic<bool> done{false};
    std::thread stepper([&] {
      absl::SleepFor(absl::Milliseconds(50));
      sentry::StepWallClock(step);
      absl::SleepFor(absl::Milliseconds(50));
      if (step > absl::ZeroDuration()) {
        ASSERT_EQ(write(ch->resp_w, "\0\0", 2), 2);
      }
      // Still waiting well after its deadline: a whole frame ends the wait.
      for (int i = 0; i < 100 && !done; ++i) absl::SleepFor(absl::Milliseconds(50));
      if (!done) {
        ASSERT_EQ(write(ch->resp_w, "\0\0\0\0", 4), 4);
      }
    });
    const absl::Duration t0 = sentry::MonotonicNow();
    absl::StatusOr<std::string> got = ReadFrame(ch->resp_r, Deadline::In(absl::Milliseconds(400)));
    const absl::Duration took = sentry::MonotonicNow() - t0;
    done = true;
    stepper.join();
    sentry::ResetWallClock();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
    EXPECT_GE(took, absl::Milliseconds(390));
    EXPECT_LT(took, absl::Seconds(3));
  }
}

}  // namespace
}  // namespace seedvisor::seedd
