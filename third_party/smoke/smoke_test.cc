// Smoke test for the build setup: every system library links and works.
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "gflags/gflags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "seccomp.h"
#include "sys/capability.h"
#include "third_party/smoke/smoke.pb.h"

DEFINE_int32(smoke_flag, 7, "A gflags flag, to prove gflags links.");

namespace {

absl::StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return absl::InvalidArgumentError(absl::StrCat("bad: ", v));
  return v;
}

TEST(Smoke, Abseil) {
  absl::StatusOr<int> ok = ParsePositive(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  absl::StatusOr<int> bad = ParsePositive(-1);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), testing::HasSubstr("-1"));

  EXPECT_EQ(absl::StrFormat("%s=%05d", "x", 42), "x=00042");

  absl::Mutex mu;
  int counter = 0;
  {
    absl::MutexLock lock(&mu);
    ++counter;
  }
  EXPECT_EQ(counter, 1);

  absl::flat_hash_map<std::string, int> m = {{"a", 1}};
  m["b"] = 2;
  EXPECT_EQ(m.size(), 2u);

  std::vector<int> v = {1, 2, 3};
  absl::Span<const int> s(v);
  EXPECT_EQ(s.subspan(1).size(), 2u);

  bool cleaned = false;
  { absl::Cleanup c = [&] { cleaned = true; }; }
  EXPECT_TRUE(cleaned);

  EXPECT_GT(absl::ToUnixSeconds(absl::Now()), 0);
  EXPECT_EQ(FLAGS_smoke_flag, 7);
}

TEST(Smoke, Seccomp) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(1), SCMP_SYS(getpid), 0), 0);
  seccomp_release(ctx);
}

TEST(Smoke, Capabilities) {
  cap_t caps = cap_get_proc();
  ASSERT_NE(caps, nullptr);
  EXPECT_EQ(cap_free(caps), 0);
}

TEST(Smoke, Protobuf) {
  seedvisor::smoke::Ping ping;
  ping.set_text("hello");
  ping.set_seq(9);
  ping.mutable_sent()->set_seconds(1);
  std::string wire;
  ASSERT_TRUE(ping.SerializeToString(&wire));
  seedvisor::smoke::Ping back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.text(), "hello");
  EXPECT_EQ(back.seq(), 9u);
  EXPECT_EQ(back.sent().seconds(), 1);
}

TEST(Smoke, Linkage) {
  // AT_BASE is the dynamic loader's address: 0 only in a static binary.
#ifdef SMOKE_STATIC
  EXPECT_EQ(getauxval(AT_BASE), 0u);
#else
  EXPECT_NE(getauxval(AT_BASE), 0u);
#endif
}

}  // namespace
