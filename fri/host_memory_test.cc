#include "fri/host_memory.h"

#include <sys/stat.h>
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

// As seedsc lays them out: the seed's sentry 10 in its launcher's group 5,
// its zygote 12 and stub 14; a spare (anchor 30, stubs 31 and 32 made by the
// seed's zygote) whose pipe 900 the seed holds; a fork 20 (in group 5 too)
// that adopted anchor 40 (stubs 41, 42, also the zygote's children), pipe 901.
TEST(SandboxProcesses, ForkOwnsTheSpareItAdopted) {
  std::vector<ProcEntry> t = {
      {5, 1, 5},    {10, 5, 5},   {12, 10, 12}, {14, 12, 12}, {30, 10, 30}, {31, 12, 30},
      {32, 12, 30}, {20, 10, 5},  {40, 10, 40}, {41, 12, 40}, {42, 12, 40},
  };
  auto pipes = [](pid_t p) -> std::set<uint64_t> {
    if (p == 10) return {7, 900};
    if (p == 30) return {900};
    if (p == 20) return {7, 901};
    if (p == 40) return {901};
    return {};
  };
  EXPECT_EQ(SandboxProcesses(10, {20}, t, pipes), (std::vector<pid_t>{10, 12, 14, 30, 31, 32}));
  EXPECT_EQ(SandboxProcesses(20, {10}, t, pipes), (std::vector<pid_t>{20, 40, 41, 42}));
}

TEST(PipesOf, SeesOwnPipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  struct stat st;
  ASSERT_EQ(fstat(fds[0], &st), 0);
  EXPECT_TRUE(PipesOf(getpid()).contains(st.st_ino));
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace seedvisor::fri
