// Against the host's cgroup v1 hierarchy (needs root): a pool under a
// parent of its own, removed at the end.
#include "seedd/cgroup_pool.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

std::string Parent() { return absl::StrCat("seedd-pool-test-", getpid()); }

bool HaveCgroupV1() {
  std::string probe = absl::StrCat("/sys/fs/cgroup/memory/", Parent(), "-probe");
  if (mkdir(probe.c_str(), 0755) != 0) return false;
  rmdir(probe.c_str());
  return true;
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A child process that sleeps until killed, moved into `cgroup`.
pid_t SleeperIn(const std::string& cgroup) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  for (const char* c : {"memory", "pids", "cpu"}) {
    std::ofstream(absl::StrCat("/sys/fs/cgroup/", c, "/", cgroup, "/cgroup.procs")) << pid;
  }
  return pid;
}

// Waits for `f`, 20 s at most: the pool's thread makes and removes cgroups,
// which the host kernel may hold for seconds at load 20-40 (RCU grace
// periods, the cgroup mutex other tests' sandboxes take).
template <typename F>
bool Eventually(F f) {
  for (int i = 0; i < 2000; ++i) {
    if (f()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(CgroupPool, FillsTakesRecyclesAndRemovesLeftovers) {
  if (!HaveCgroupV1()) GTEST_SKIP() << "no writable cgroup v1 memory hierarchy";
  CgroupPoolOptions o{.parent = Parent(), .size = 2, .memory_limit = 64 << 20, .pids_max = 64,
                      .warm_linger = absl::Seconds(30)};
  auto pool = std::make_unique<CgroupPool>(o);
  ASSERT_EQ(*pool->RemoveLeftovers(), 0);
  ASSERT_TRUE(pool->Fill().ok());
  EXPECT_EQ(pool->Stats().free, 2);
  EXPECT_EQ(pool->Stats().warm_writes, 0u) << "nothing taken: no migration to keep fast";

  std::string a = pool->Take();
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a.starts_with(Parent() + "/"));
  EXPECT_EQ(Slurp(absl::StrCat("/sys/fs/cgroup/memory/", a, "/memory.limit_in_bytes")), "67108864\n");
  EXPECT_EQ(Slurp(absl::StrCat("/sys/fs/cgroup/pids/", a, "/pids.max")), "64\n");
  // The refill thread tops the pool up off the taker's path.
  EXPECT_TRUE(Eventually([&] { return pool->Stats().free == 2; }));
  // A Take keeps the kernel's migration lock warm (migration_warmth.h).
  EXPECT_TRUE(Eventually([&] { return pool->Stats().warm_writes >= 3; }));

  pid_t p = SleeperIn(a);
  EXPECT_EQ(pool->Pids(a), std::vector<int>{p});
  pool->Give(a);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(pool->Stats().draining, 1) << "a cgroup with a live process is not reused";
  kill(p, SIGKILL);
  waitpid(p, nullptr, 0);
  EXPECT_TRUE(Eventually([&] { return pool->Stats().draining == 0; }));
  // Back in the pool (the refill made a new one while it was out).
  EXPECT_TRUE(std::filesystem::is_directory(absl::StrCat("/sys/fs/cgroup/memory/", a)));
  CgroupPoolStats st = pool->Stats();
  EXPECT_EQ(st.free, 3);
  EXPECT_EQ(st.recycled, 1u);
  EXPECT_EQ(st.in_use, 0);
  // Free cgroups come first in, first out: a's turn comes after the other three.
  std::vector<std::string> taken;
  for (int i = 0; i < 3; ++i) taken.push_back(pool->Take());
  EXPECT_EQ(taken.back(), a);
  for (const std::string& cg : taken) pool->Give(cg);
  // At most twice `size` stay free; the rest are removed.
  EXPECT_TRUE(Eventually([&] { return pool->Stats().draining == 0 && pool->Stats().recycled >= 3; }));
  EXPECT_LE(pool->Stats().free, 4);

  // A "crashed" seedd: its cgroups stay, a process in one of them too.
  std::string b = pool->Take();
  pid_t q = SleeperIn(b);
  pool->Stop();
  pool.release();  // leaks the object as a SIGKILLed seedd would
  CgroupPool next(o);
  absl::StatusOr<int> removed = next.RemoveLeftovers();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_GE(*removed, 3);
  EXPECT_EQ(waitpid(q, nullptr, 0), q) << "the process left in a pool cgroup is killed";
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat("/sys/fs/cgroup/memory/", Parent())));
}

// warm_linger = 0 (the default): no thread keeps migrations fast, whatever
// is taken.
TEST(CgroupPool, WarmLingerZeroWritesNothing) {
  if (!HaveCgroupV1()) GTEST_SKIP() << "no writable cgroup v1 memory hierarchy";
  CgroupPool pool({.parent = Parent(), .size = 1});
  ASSERT_TRUE(pool.RemoveLeftovers().ok());
  ASSERT_TRUE(pool.Fill().ok());
  std::string a = pool.Take();
  ASSERT_FALSE(a.empty());
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(pool.Stats().warm_writes, 0u);
  pool.Give(a);
}

// A process that touches more than the limit is killed by the kernel; the
// pool names that as the cause, and the recycled cgroup starts clean.
TEST(CgroupPool, NamesTheMemoryLimitAndRecyclesClean) {
  if (!HaveCgroupV1()) GTEST_SKIP() << "no writable cgroup v1 memory hierarchy";
  CgroupPoolOptions o{.parent = Parent(), .size = 1, .memory_limit = 32 << 20};
  CgroupPool pool(o);
  ASSERT_TRUE(pool.RemoveLeftovers().ok());
  ASSERT_TRUE(pool.Fill().ok());
  std::string a = pool.Take();
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(pool.LimitHit(a), "") << "nothing ran yet";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1) _exit(2);  // wait to be in the cgroup
    constexpr size_t kBytes = 128 << 20;
    char* p = static_cast<char*>(malloc(kBytes));
    for (size_t i = 0; p != nullptr && i < kBytes; i += 4096) p[i] = 1;
    _exit(0);
  }
  close(ready[0]);
  std::ofstream(absl::StrCat("/sys/fs/cgroup/memory/", a, "/cgroup.procs")) << pid;
  ASSERT_EQ(write(ready[1], "g", 1), 1);
  close(ready[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  std::string why = pool.LimitHit(a);
  EXPECT_NE(why.find("memory limit of 32 MiB"), std::string::npos) << why;
  EXPECT_NE(why.find("OOM killer killed 1 of its processes"), std::string::npos) << why;
  EXPECT_NE(why.find(a), std::string::npos) << why;
  pool.Give(a);
  EXPECT_TRUE(Eventually([&] { return pool.Stats().draining == 0 && pool.Stats().recycled == 1; }));
  // Free cgroups are first in, first out: take until `a` comes back.
  std::vector<std::string> taken;
  while (taken.size() < 4 && (taken.empty() || taken.back() != a)) taken.push_back(pool.Take());
  ASSERT_EQ(taken.back(), a);
  EXPECT_EQ(pool.LimitHit(a), "") << "a recycled cgroup starts clean";
  EXPECT_EQ(Slurp(absl::StrCat("/sys/fs/cgroup/memory/", a, "/memory.failcnt")), "0\n");
  for (const std::string& cg : taken) pool.Give(cg);
}

}  // namespace
}  // namespace seedvisor::seedd
