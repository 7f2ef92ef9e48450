// Against the host's cgroup v1 memory hierarchy (needs root; skips without).
#include "seedd/migration_warmth.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Whether a thread of this process is named `name` within 2 s (a new
// thread names itself).
bool HasThread(const std::string& name) {
  for (absl::Time end = absl::Now() + absl::Seconds(2); absl::Now() < end;) {
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
      if (Slurp(t.path().string() + "/comm") == name + "\n") return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// This process's line for the v1 memory hierarchy in /proc/self/cgroup
// ("4:memory:/path", or "4:cpu,memory:/path" where it is co-mounted): the
// only one the warmth could change. (Other lines come and go with
// hierarchies mounted meanwhile, e.g. by cgroup_favor_test or a seedd
// running beside this test.)
std::string MemoryLine() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() < 3) continue;
    for (absl::string_view controller : absl::StrSplit(fields[1], ',')) {
      if (controller == "memory") return line;
    }
  }
  return "";
}

bool HaveMemoryCgroupV1() {
  return geteuid() == 0 && access("/sys/fs/cgroup/memory/tasks", W_OK) == 0;
}

// Waits up to 5 s for w.writes() to reach n, touching it meanwhile: under
// load one write may wait a whole RCU grace period, and an untouched warmth
// stops 200 ms (its linger) after the last Touch.
bool WritesReach(MigrationWarmth& w, uint64_t n) {
  for (absl::Time end = absl::Now() + absl::Seconds(5); absl::Now() < end;) {
    if (w.writes() >= n) return true;
    w.Touch();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

TEST(MigrationWarmthTest, WritesOnlyWhileTouchedAndMovesNothing) {
  if (!HaveMemoryCgroupV1()) GTEST_SKIP() << "needs root and /sys/fs/cgroup/memory (v1)";
  const std::string before = MemoryLine();
  ASSERT_FALSE(before.empty()) << Slurp("/proc/self/cgroup");
  MigrationWarmth w({.period = absl::Milliseconds(2), .linger = absl::Milliseconds(200)});
  ASSERT_TRUE(w.Start().ok());
  // Its CPU is read at /proc/PID/task/TID/stat by that name (bench/RESULTS.md).
  EXPECT_TRUE(HasThread(MigrationWarmth::kThreadName));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(w.writes(), 0u) << "an untouched warmth wrote";

  w.Touch();
  ASSERT_TRUE(WritesReach(w, 5)) << "touched, it wrote " << w.writes() << " times in 5 s";
  // Once `linger` has passed since the Touch, no more writes.
  absl::SleepFor(absl::Milliseconds(400));
  const uint64_t settled = w.writes();
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(w.writes(), settled) << "it went on writing after its linger";

  // A Touch later wakes it again.
  w.Touch();
  EXPECT_TRUE(WritesReach(w, settled + 3));
  w.Stop();
  EXPECT_EQ(MemoryLine(), before) << "the warmth moved this process";
}

TEST(MigrationWarmthTest, StartSaysWhichFileItCannotOpen) {
  if (!HaveMemoryCgroupV1()) GTEST_SKIP() << "needs root and /sys/fs/cgroup/memory (v1)";
  MigrationWarmth w({.mount = "/nonexistent-cgroup-mount"});
  absl::Status s = w.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "/nonexistent-cgroup-mount/memory")) << s;
  w.Touch();  // harmless without a thread
}

}  // namespace
}  // namespace seedvisor::seedd
