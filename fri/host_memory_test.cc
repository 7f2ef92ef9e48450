#include "fri/host_memory.h"

#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace seedvisor::fri {
namespace {

TEST(ParseSmapsRollup, SumsPrivateAndPss) {
  const char text[] =
      "55d0c0a00000-7ffd1b1e7000 ---p 00000000 00:00 0                          [rollup]\n"
      "Rss:                3000 kB\n"
      "Pss:                1500 kB\n"
      "Pss_Dirty:           100 kB\n"
      "Shared_Clean:       2000 kB\n"
      "Private_Clean:       700 kB\n"
      "Private_Dirty:       300 kB\n";
  absl::StatusOr<Memory> m = ParseSmapsRollup(text);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->pss_bytes, 1500u << 10);
  EXPECT_EQ(m->uss_bytes, 1000u << 10);
}

TEST(ParseSmapsRollup, RejectsTextWithoutPss) {
  EXPECT_FALSE(ParseSmapsRollup("Rss: 10 kB\n").ok());
}

TEST(SumMemory, ReadsOwnProcess) {
  Memory m = SumMemory({getpid(), 999999999});
  EXPECT_EQ(m.processes, 1u);
  EXPECT_GT(m.pss_bytes, 0u);
}

// A seed (10) with helpers 11, 12 and a group led by 12 (13 is in it but
// reparented to init); a fork (20) of it, with its own anchor group (21, 22).
TEST(SandboxProcesses, SplitsSeedFromItsForks) {
  pid_t self_group = getpgrp();
  std::vector<ProcEntry> t = {
      {1, 0, 1},      {10, 1, 10},   {11, 10, 10},  {12, 10, 12}, {13, 1, 12},
      {20, 10, 20},   {21, 20, 21},  {22, 1, 21},   {30, 1, self_group},
  };
  std::vector<pid_t> seed = SandboxProcesses(10, {20}, t);
  EXPECT_EQ(seed, (std::vector<pid_t>{10, 11, 12, 13}));
  std::vector<pid_t> fork = SandboxProcesses(20, {10}, t);
  EXPECT_EQ(fork, (std::vector<pid_t>{20, 21, 22}));
  EXPECT_TRUE(SandboxProcesses(99, {}, t).empty());
}

}  // namespace
}  // namespace seedvisor::fri
