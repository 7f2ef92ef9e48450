#include "runsc/container/cgroup.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runsc/container/cgroup_record.h"
#include "runsc/container/test_files.h"
#include "test/util/temp_dir.h"

namespace seedvisor::container {
namespace {

using testing_files::Put;
using testing_files::Slurp;

// A directory tree standing in for /sys/fs/cgroup with the controllers
// seedsc uses: limits are written as files. It goes with the returned object.
testutil::ScopedTempDir FakeHierarchy() {
  testutil::ScopedTempDir tmp("cgroup_test");
  for (const char* c : {"memory", "cpu", "cpuacct", "pids", "cpuset"}) {
    mkdir(tmp.Path(c).c_str(), 0755);
  }
  return tmp;
}

// seedsc's --root for a test's fake hierarchy: it holds the record of
// which directories seedsc made (cgroup_record.h).
std::string RootIn(const std::string& fake) { return fake + "/seedsc-root"; }

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
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
  const testutil::ScopedTempDir tmp("cgroup_test");
  std::string fake = tmp.path();
  for (const char* c : {"memory", "cpu", "pids"}) mkdir((fake + "/" + c).c_str(), 0755);
  oci::Spec s;
  s.resources.memory_limit = 1 << 20;
  s.resources.cpu_quota = 5000;
  s.resources.cpu_period = 10000;
  s.resources.pids_limit = 9;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", RootIn(fake), fake).ok());
  EXPECT_EQ(Slurp(fake + "/memory/a/b/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_quota_us"), "5000");
  EXPECT_EQ(Slurp(fake + "/cpu/a/b/cpu.cfs_period_us"), "10000");
  // The guest's limit is the sandbox's to keep; the host's has room for
  // the sentry's threads and the stubs.
  EXPECT_EQ(Slurp(fake + "/pids/a/b/pids.max"), std::to_string(HostPidsMax(9)));
  EXPECT_GT(HostPidsMax(9), 2 * 9);
  EXPECT_EQ(HostPidsMax(INT64_MAX / 2), INT64_MAX);
  // rmdir fails on a plain directory with files: RemoveCgroups reports it.
  EXPECT_FALSE(RemoveCgroups("a/b", RootIn(fake), fake).ok());
}

// Review 35: only what seedsc made goes. A parent that was there before
// (kubelet's pod cgroup, a user's slice) stays even when empty; one that
// seedsc made for the path goes once empty, in each controller (review R7).
// Nothing is written into these cgroups (no limits, no cpuset here), so the
// fake's directories stay empty and rmdir behaves as on cgroupfs.
TEST(CgroupTest, RemovesOnlyTheDirectoriesItMade) {
  const testutil::ScopedTempDir tmp("cgroup_test");
  const std::string fake = tmp.path(), root = RootIn(fake);
  for (const char* c : {"memory", "pids"}) mkdir((fake + "/" + c).c_str(), 0755);
  mkdir((fake + "/pids/pod").c_str(), 0755);  // the caller's, in one controller
  oci::Spec s;
  ASSERT_TRUE(CreateCgroups(s, "pod/mine/leaf", root, fake).ok());
  {
    absl::StatusOr<CgroupRecord> rec = CgroupRecord::Open(root);
    ASSERT_TRUE(rec.ok()) << rec.status();
    for (const char* d : {"memory/pod", "memory/pod/mine", "memory/pod/mine/leaf",
                          "pids/pod/mine", "pids/pod/mine/leaf"}) {
      EXPECT_TRUE(rec->Made(fake + "/" + d)) << d;
    }
    EXPECT_FALSE(rec->Made(fake + "/pids/pod"));
  }
  ASSERT_TRUE(RemoveCgroups("pod/mine/leaf", root, fake).ok());
  EXPECT_FALSE(IsDir(fake + "/memory/pod")) << "seedsc made memory/pod";
  EXPECT_FALSE(IsDir(fake + "/pids/pod/mine")) << "seedsc made pids/pod/mine";
  EXPECT_TRUE(IsDir(fake + "/pids/pod")) << "pids/pod was the caller's";
  // Nothing is recorded any more: no file is left under --root.
  EXPECT_FALSE(std::ifstream(root + "/" + CgroupRecord::kFileName).good());

  // A leaf that was there before is not seedsc's either.
  mkdir((fake + "/memory/pod").c_str(), 0755);
  mkdir((fake + "/memory/pod/given").c_str(), 0755);
  ASSERT_TRUE(CreateCgroups(s, "pod/given", root, fake).ok());
  ASSERT_TRUE(RemoveCgroups("pod/given", root, fake).ok());
  EXPECT_TRUE(IsDir(fake + "/memory/pod/given"));
  EXPECT_FALSE(IsDir(fake + "/pids/pod/given"));
  EXPECT_TRUE(IsDir(fake + "/pids/pod"));
}

// containerd's namespace cgroup (<ns>) is made by its first container's
// sandbox, which may go first: the parent outlives it, and the last
// container to leave it removes it (what a record kept per container got
// wrong: containerd_test no_cgroup_left).
TEST(CgroupTest, AParentGoesWithTheLastContainerInItNotTheOneThatMadeIt) {
  const testutil::ScopedTempDir tmp("cgroup_test");
  const std::string fake = tmp.path(), root = RootIn(fake);
  for (const char* c : {"memory", "pids"}) mkdir((fake + "/" + c).c_str(), 0755);
  oci::Spec s;
  ASSERT_TRUE(CreateCgroups(s, "ns/first", root, fake).ok());   // makes ns
  ASSERT_TRUE(CreateCgroups(s, "ns/second", root, fake).ok());  // finds it
  ASSERT_TRUE(RemoveCgroups("ns/first", root, fake).ok());
  EXPECT_TRUE(IsDir(fake + "/memory/ns/second"));
  ASSERT_TRUE(CreateCgroups(s, "ns/third", root, fake).ok());
  ASSERT_TRUE(RemoveCgroups("ns/second", root, fake).ok());
  EXPECT_TRUE(IsDir(fake + "/pids/ns/third"));
  ASSERT_TRUE(RemoveCgroups("ns/third", root, fake).ok());
  for (const char* c : {"memory", "pids"}) EXPECT_FALSE(IsDir(fake + "/" + c + "/ns")) << c;
  EXPECT_FALSE(std::ifstream(root + "/" + CgroupRecord::kFileName).good());
}

// A directory seedsc made that someone else removed and made again (the
// kubelet) is theirs now: the record names it by inode too.
TEST(CgroupTest, ADirectoryMadeAgainBySomeoneElseStays) {
  const testutil::ScopedTempDir tmp("cgroup_test");
  const std::string fake = tmp.path(), root = RootIn(fake);
  mkdir((fake + "/memory").c_str(), 0755);
  oci::Spec s;
  ASSERT_TRUE(CreateCgroups(s, "k/a", root, fake).ok());
  // Held open while it is removed and made anew, the old directory keeps
  // its inode: the new one cannot have it.
  const int old_k = open((fake + "/memory/k").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(old_k, 0);
  ASSERT_EQ(rmdir((fake + "/memory/k/a").c_str()), 0);
  ASSERT_EQ(rmdir((fake + "/memory/k").c_str()), 0);
  ASSERT_EQ(mkdir((fake + "/memory/k").c_str(), 0755), 0);
  {
    absl::StatusOr<CgroupRecord> rec = CgroupRecord::Open(root);
    ASSERT_TRUE(rec.ok()) << rec.status();
    ASSERT_TRUE(rec->Recorded(fake + "/memory/k").has_value());
    EXPECT_FALSE(rec->Made(fake + "/memory/k"));
  }
  ASSERT_TRUE(CreateCgroups(s, "k/b", root, fake).ok());
  ASSERT_TRUE(RemoveCgroups("k/b", root, fake).ok());
  close(old_k);
  EXPECT_FALSE(IsDir(fake + "/memory/k/b"));
  EXPECT_TRUE(IsDir(fake + "/memory/k"));
  EXPECT_FALSE(std::ifstream(root + "/" + CgroupRecord::kFileName).good()) << "the stale entry";
}

// Containers made and removed at once under one parent seedsc makes: a
// sibling's delete never removes the parent between a create's mkdir of
// it and of its leaf (each create succeeds), and the last one takes it.
TEST(CgroupTest, ConcurrentSiblingsShareTheParent) {
  const testutil::ScopedTempDir tmp("cgroup_test");
  const std::string fake = tmp.path(), root = RootIn(fake);
  for (const char* c : {"memory", "pids"}) mkdir((fake + "/" + c).c_str(), 0755);
  constexpr int kThreads = 4, kRounds = 40;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      oci::Spec s;
      const std::string path = "ns/c" + std::to_string(t);
      for (int i = 0; i < kRounds && errors[t].empty(); ++i) {
        if (absl::Status st = CreateCgroups(s, path, root, fake); !st.ok()) {
          errors[t] = "create: " + st.ToString();
        } else if (absl::Status st = RemoveCgroups(path, root, fake); !st.ok()) {
          errors[t] = "remove: " + st.ToString();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << t;
  for (const char* c : {"memory", "pids"}) EXPECT_FALSE(IsDir(fake + "/" + c + "/ns")) << c;
  EXPECT_FALSE(std::ifstream(root + "/" + CgroupRecord::kFileName).good());
}

// The record is seedsc's own file: one it cannot read is an error naming
// it, not an empty record (which would leave everything behind).
TEST(CgroupTest, AnUnreadableRecordIsAnError) {
  const testutil::ScopedTempDir tmp("cgroup_test");
  const std::string fake = tmp.path(), root = RootIn(fake);
  mkdir((fake + "/memory").c_str(), 0755);
  mkdir(root.c_str(), 0755);
  Put(root + "/" + CgroupRecord::kFileName, "{\"dirs\": [1]}");
  oci::Spec s;
  absl::Status st = CreateCgroups(s, "x", root, fake);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
  EXPECT_NE(st.message().find(CgroupRecord::kFileName), std::string::npos) << st;
  EXPECT_FALSE(IsDir(fake + "/memory/x"));
}

TEST(CgroupTest, NewCpusetInheritsCpusAndMemsThenTakesTheLimit) {
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
  Put(fake + "/cpuset/cpuset.cpus", "0-3\n");
  Put(fake + "/cpuset/cpuset.mems", "0\n");
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", RootIn(fake), fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpuset/a/cpuset.cpus"), "0-3");
  EXPECT_EQ(Slurp(fake + "/cpuset/a/b/cpuset.mems"), "0");
  s.resources.cpuset_cpus = "1";
  ASSERT_TRUE(ApplyCgroups(s, "a/c", RootIn(fake), fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpuset/a/c/cpuset.cpus"), "1");
  EXPECT_EQ(Slurp(fake + "/cpuset/a/c/cpuset.mems"), "0");
}

TEST(CgroupTest, UpdateWritesWhatIsSetAndKeepsTheRest) {
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
  oci::Spec s;
  s.resources.memory_limit = 1 << 20;
  s.resources.cpu_shares = 100;
  s.resources.pids_limit = 9;
  ASSERT_TRUE(ApplyCgroups(s, "a/b", RootIn(fake), fake).ok());
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
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
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
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "u", RootIn(fake), fake).ok());
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
  // A pod's member with cgroups of its own (its stubs live there): its
  // host limits go there, as runc's do.
  ASSERT_TRUE(ApplyCgroups(s, "pod/m", RootIn(fake), fake).ok());
  r.cpu_shares = 30;
  r.memory_limit = 64 << 20;
  r.pids_limit = 4;
  ASSERT_TRUE(ApplyUpdate(r, "m", true, "pod/m", send, fake).ok());
  EXPECT_EQ(Slurp(fake + "/cpu/pod/m/cpu.shares"), "30");
  EXPECT_EQ(Slurp(fake + "/memory/pod/m/memory.limit_in_bytes"), std::to_string(64 << 20));
  EXPECT_EQ(sent, (std::vector<int64_t>{7, 3, 4}));
  // No cgroup; the sandbox refusing: each says what was wrong.
  st = ApplyUpdate(pids_only, "c", false, "", send, fake);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_NE(st.message().find("container c has no cgroup"), std::string::npos) << st;
  st = ApplyUpdate(pids_only, "m", true, "",
                   [](int64_t) { return absl::UnavailableError("no sandbox"); }, fake);
  EXPECT_EQ(st, absl::UnavailableError("update: pids.limit: no sandbox"));
}

TEST(CgroupTest, ReadStats) {
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "x", RootIn(fake), fake).ok());
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
  const testutil::ScopedTempDir tmp = FakeHierarchy();
  const std::string fake = tmp.path();
  absl::StatusOr<int> efd = RegisterOomEventFd("nosuch", fake);
  EXPECT_TRUE(absl::IsNotFound(efd.status())) << efd.status();
  // In the fake tree the registration is a plain file write: "<efd> <fd>".
  oci::Spec s;
  ASSERT_TRUE(ApplyCgroups(s, "x", RootIn(fake), fake).ok());
  Put(fake + "/memory/x/memory.oom_control", "oom_kill 0\n");
  efd = RegisterOomEventFd("x", fake);
  ASSERT_TRUE(efd.ok()) << efd.status();
  EXPECT_EQ(Slurp(fake + "/memory/x/cgroup.event_control").rfind(std::to_string(*efd) + " ", 0), 0u);
  close(*efd);
}

}  // namespace
}  // namespace seedvisor::container
