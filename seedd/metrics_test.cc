#include "seedd/metrics.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  return absl::StrContains("\n" + text, "\n" + line + "\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  m.ObserveCall("hello", 200, {{"fork", absl::Microseconds(1500)}, {"run", absl::Milliseconds(4)}},
                absl::Milliseconds(6));
  m.ObserveCall("hello", 200, {{"fork", absl::Milliseconds(40)}}, absl::Seconds(60));
  std::string t = m.Render({});
  EXPECT_TRUE(HasLine(t, "# TYPE seedd_invoke_phase_seconds histogram")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="fork",le="0.001"} 0)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="fork",le="0.002"} 1)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="fork",le="0.025"} 1)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="fork",le="0.05"} 2)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="fork",le="+Inf"} 2)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_count{phase="fork"} 2)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_sum{phase="fork"} 0.0415)")) << t;
  // 60 s is past the last finite bucket: only +Inf counts it.
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="total",le="30"} 1)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_bucket{phase="total",le="+Inf"} 2)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invoke_phase_seconds_count{phase="run"} 1)")) << t;
}

TEST(Metrics, CountsCallsByFunctionAndCode) {
  Metrics m;
  m.ObserveCall("a", 200, {}, absl::Milliseconds(1));
  m.ObserveCall("a", 200, {}, absl::Milliseconds(1));
  m.ObserveCall("a", 500, {}, absl::Milliseconds(1));
  m.ObserveCall("b", 504, {}, absl::Milliseconds(1));
  std::string t = m.Render({});
  EXPECT_TRUE(HasLine(t, "# TYPE seedd_invocations_total counter")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invocations_total{function="a",code="200"} 2)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invocations_total{function="a",code="500"} 1)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_invocations_total{function="b",code="504"} 1)")) << t;
}

TEST(Metrics, SamplesGroupedByFamilyWithOneHeader) {
  Metrics m;
  std::string t = m.Render({
      {"seedd_seed_pss_bytes", "PSS.", "gauge", {{"seed", "python-l1"}}, 27000000},
      {"seedd_live_instances", "Live.", "gauge", {}, 3},
      {"seedd_seed_pss_bytes", "PSS.", "gauge", {{"seed", "a\"b\\c\nd"}}, 1.5},
  });
  EXPECT_TRUE(HasLine(t, "# TYPE seedd_seed_pss_bytes gauge")) << t;
  EXPECT_EQ(t.find("# TYPE seedd_seed_pss_bytes"), t.rfind("# TYPE seedd_seed_pss_bytes"));
  EXPECT_TRUE(HasLine(t, R"(seedd_seed_pss_bytes{seed="python-l1"} 27000000)")) << t;
  EXPECT_TRUE(HasLine(t, R"(seedd_seed_pss_bytes{seed="a\"b\\c\nd"} 1.5)")) << t;
  EXPECT_TRUE(HasLine(t, "seedd_live_instances 3")) << t;
  // Both pss samples come before the next family.
  EXPECT_LT(t.rfind("seedd_seed_pss_bytes{"), t.find("# HELP seedd_live_instances"));
}

}  // namespace
}  // namespace seedvisor::seedd
