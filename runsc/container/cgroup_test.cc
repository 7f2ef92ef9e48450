#include "runsc/container/cgroup.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "gtest/gtest.h"
#include "runsc/container/test_files.h"

namespace seedvisor::container {
namespace {

using testing_files::Put;
using testing_files::Slurp;

// A fresh scratch directory for one test.
std::string TempDir() { return testing_files::TempDir("cgroup_test"); }

// A directory tree standing in for /sys/fs/cgroup with the controllers
// seedsc uses: limits are written as files.
std::string FakeHierarchy() {
  std::string fake = TempDir();
  for (const char* c : {"memory", "cpu", "cpuacct", "pids", "cpuset"}) {
    mkdir((fake + "/" + c).c_str(), 0755);
  }
  return fake;
}

TEST(CgroupTest, PathFor) {
  oci::Spec s;
  EXPECT_EQ(CgroupPathFor(s, "c"), "");
  s.resources.pids_limit = 5;
  EXPECT_EQ(CgroupPathFor(s, "c"), "seedsc/c");
  s.cgroups_path = "/default/c";
  EXPECT_EQ(CgroupPathFor(s, "c"), "default/c");
  s.cgroups_path = "/a/../../etc";
  EXPECT_EQ(CgroupPathFor(s, "c"), "");
}

TEST(CgroupTest, ApplyAndRemoveInAFakeHierarchy) {
  // A directory tree standing in for /sys/fs/cgroup: limits are written as
  // files, and "0" goes to cgroup.procs (pre-created: real cgroups have it).
  std::string fake = TempDir();
  for (const char* c : {"memory", "cpu", "pids"}) mkdir((fake + "/" + c).c_str(), 0755);
  oci::Spec s;
  s.resources.memory_limit = 1 << 20;
  s.resources.cpu_quota = 5000;
  s.resources.cpu_period = 10000;
  s.resources.pids_limit = 9;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", fake).ok());
  EXPECT_EQ(Slurp(fake + "/memory/a/b/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_quota_us"), "5000");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_period_us"), "10000");
  // The guest's limit is the sandbox's to keep; the host's has room for
  // the sentry's threads and the stubs.
  EXPECT_EQ(Slurp(fake + "/pids/a/b/pids.max"), std::to_string(HostPidsMax(9)));
  EXPECT_GT(HostPidsMax(9), 2 * 9);
  EXPECT_EQ(HostPidsMax(INT64_MAX / 2), INT64_MAX);
  // rmdir fails on a plain directory with files: RemoveCgroups reports it.
  EXPECT_FALSE(RemoveCgroups("a/b", fake).ok());
}

TEST(CgroupTest, NewCpusetInheritsCpusAndMemsThenTakesTheLimit) {
  std::string fake = FakeHierarchy();
  Put(fake + "/cpuset/cpuset.cpus", "0-3\n");
  Put(fake + "/cpuset/cpuset.mems", "0\n");
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpuset/a/cpuset.cpus"), "0-3");
  EXPECT_EQ(Slurp(fake + "/cpuset/a/b/cpuset.mems"), "0");
  s.resources.cpuset_cpus = "1";
  ASSERT_TRUE(ApplyCgroups(s, "a/c", fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpuset/a/c/cpuset.cpus"), "1");
  EXPECT_EQ(Slurp(fake + "/cpuset/a/c/cpuset.mems"), "0");
}

TEST(CgroupTest, UpdateWritesWhatIsSetAndKeepsTheRest) {
  std::string fake = FakeHierarchy();
  oci::Spec s;
  s.resources.memory_limit = 1 << 20;
  s.resources.cpu_shares = 100;
  s.resources.pids_limit = 9;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", fake).ok());
  Put(fake + "/memory/a/b/memory.memsw.limit_in_bytes", "2097152");

  oci::Resources r;
  r.memory_limit = 8 << 20;
  r.memory_swap = 16 << 20;
  r.memory_reservation = 4 << 20;
  r.cpu_quota = 20000;
  r.cpu_period = 100000;
  r.cpuset_cpus = "0";
  r.pids_limit = -1;
  ASSERT_TRUE(UpdateCgroups(r, "a/b", fake).ok());
  EXPECT_EQ(Slurp(fake + "/memory/a/b/memory.limit_in_bytes"), "8388608");
  EXPECT_EQ(Slurp(fake + "/memory/a/b/memory.memsw.limit_in_bytes"), "16777216");
  EXPECT_EQ(Slurp(fake + "/memory/a/b/memory.soft_limit_in_bytes"), "4194304");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.shares"), "100");  // not in the update: kept
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_quota_us"), "20000");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Slurp(fake + "/cpuset/a/b/cpuset.cpus"), "0");
  EXPECT_EQ(Slurp(fake + "/pids/a/b/pids.max"), "max");

  // No memsw file (swap accounting off): the swap limit is skipped.
  unlink((fake + "/memory/a/b/memory.memsw.limit_in_bytes").c_str());
  oci::Resources only_swap;
  only_swap.memory_swap = 1 << 30;
  ASSERT_TRUE(UpdateCgroups(only_swap, "a/b", fake).ok());
  EXPECT_FALSE(std::ifstream(fake + "/memory/a/b/memory.memsw.limit_in_bytes").good());
}

TEST(CgroupTest, UpdateErrorsNameTheField) {
  std::string fake = FakeHierarchy();
  oci::Resources r;
  r.pids_limit = 5;
  // The cgroup does not exist: opening pids.max fails.
  absl::Status s = UpdateCgroups(r, "gone", fake);
  EXPECT_EQ(s.message().substr(0, 35), "pids.limit: cgroup: opening " + fake.substr(0, 7)) << s;
  EXPECT_NE(s.message().find("/pids/gone/pids.max"), std::string::npos) << s;
  EXPECT_TRUE(absl::IsFailedPrecondition(UpdateCgroups(r, "", fake)));
  EXPECT_TRUE(absl::IsFailedPrecondition(UpdateCgroups(r, "a/../../etc", fake)));
}

// `seedsc update` and the shim's Task.Update: the host limits into the
// cgroups, then a pids limit other than 0 to the sandbox.
TEST(CgroupTest, ApplyUpdateHostLimitsThenTheGuestPidsLimit) {
  std::string fake = FakeHierarchy();
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "u", fake).ok());
  std::vector<int64_t> sent;
  auto send = [&](int64_t limit) {
    sent.push_back(limit);
    return absl::OkStatus();
  };
  oci::Resources r;
  r.cpu_shares = 50;
  r.pids_limit = 7;
  ASSERT_TRUE(ApplyUpdate(r, "c", false, "u", send, fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpu/u/cpu.shares"), "50");
  EXPECT_EQ(Slurp(fake + "/pids/u/pids.max"), std::to_string(HostPidsMax(7)));
  EXPECT_EQ(sent, std::vector<int64_t>{7});
  // 0 leaves the guest's limit as it is (runc).
  r.pids_limit = 0;
  ASSERT_TRUE(ApplyUpdate(r, "c", false, "u", send, fake).ok());
  EXPECT_EQ(sent, std::vector<int64_t>{7});
  // A pod's member: its pids limit only, no cgroup of its own.
  r.pids_limit = 3;
  absl::Status st = ApplyUpdate(r, "m", true, "", send, fake);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_NE(st.message().find("container m runs in its pod's sandbox"), std::string::npos) << st;
  oci::Resources pids_only;
  pids_only.pids_limit = 3;
  ASSERT_TRUE(ApplyUpdate(pids_only, "m", true, "", send, fake).ok());
  EXPECT_EQ(sent, (std::vector<int64_t>{7, 3}));
  // No cgroup; the sandbox refusing: each says what was wrong.
  st = ApplyUpdate(pids_only, "c", false, "", send, fake);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_NE(st.message().find("container c has no cgroup"), std::string::npos) << st;
  st = ApplyUpdate(pids_only, "m", true, "",
                   [](int64_t) { return absl::UnavailableError("no sandbox"); }, fake);
  EXPECT_EQ(st, absl::UnavailableError("update: pids.limit: no sandbox"));
}

TEST(CgroupTest, ReadStats) {
  std::string fake = FakeHierarchy();
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "x", fake).ok());
  Put(fake + "/memory/x/memory.usage_in_bytes", "4096000\n");
  Put(fake + "/memory/x/memory.max_usage_in_bytes", "5000000\n");
  Put(fake + "/memory/x/memory.limit_in_bytes", "9223372036854771712\n");
  Put(fake + "/memory/x/memory.failcnt", "3\n");
  Put(fake + "/memory/x/memory.stat", "cache 1\nrss 2\ntotal_cache 4096\ntotal_rss 8192\n");
  Put(fake + "/memory/x/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  Put(fake + "/cpuacct/x/cpuacct.usage", "123456789\n");
  Put(fake + "/cpuacct/x/cpuacct.usage_user", "100000000\n");
  Put(fake + "/cpuacct/x/cpuacct.usage_sys", "23456789\n");
  Put(fake + "/pids/x/pids.current", "7\n");
  Put(fake + "/pids/x/pids.max", "max\n");
  CgroupStats st = ReadCgroupStats("x", fake);
  EXPECT_TRUE(st.has_memory && st.has_cpu && st.has_pids);
  EXPECT_EQ(st.memory_usage, 4096000u);
  EXPECT_EQ(st.memory_max_usage, 5000000u);
  EXPECT_EQ(st.memory_limit, 0u);  // v1's "unlimited"
  EXPECT_EQ(st.memory_failcnt, 3u);
  EXPECT_EQ(st.memory_cache, 4096u);
  EXPECT_EQ(st.memory_rss, 8192u);
  EXPECT_EQ(st.oom_kills, 2u);
  EXPECT_EQ(st.cpu_usage_ns, 123456789u);
  EXPECT_EQ(st.cpu_user_ns, 100000000u);
  EXPECT_EQ(st.cpu_system_ns, 23456789u);
  EXPECT_EQ(st.pids_current, 7u);
  EXPECT_EQ(st.pids_limit, 0u);

  CgroupStats none = ReadCgroupStats("nosuch", fake);
  EXPECT_FALSE(none.has_memory || none.has_cpu || none.has_pids);
}

TEST(CgroupTest, OomEventFdNeedsTheMemoryCgroup) {
  std::string fake = FakeHierarchy();
  absl::StatusOr<int> efd = RegisterOomEventFd("nosuch", fake);
  EXPECT_TRUE(absl::IsNotFound(efd.status())) << efd.status();
  // In the fake tree the registration is a plain file write: "<efd> <fd>".
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "x", fake).ok());
  Put(fake + "/memory/x/memory.oom_control", "oom_kill 0\n");
  efd = RegisterOomEventFd("x", fake);
  ASSERT_TRUE(efd.ok()) << efd.status();
  EXPECT_EQ(Slurp(fake + "/memory/x/cgroup.event_control").rfind(std::to_string(*efd) + " ", 0), 0u);
  close(*efd);
}

}  // namespace
}  // namespace seedvisor::container
