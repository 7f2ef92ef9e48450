#include "sentry/kernel/host_cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sentry/base/read_file.h"
#include "test/util/temp_dir.h"

namespace seedvisor::sentry {
namespace {

class FakeRoot : public ::testing::Test {
 protected:
  // <root>/<controller>/<path>/cgroup.procs, an empty regular file.
  void Make(const std::string& controller, const std::string& path) {
    std::filesystem::create_directories(absl::StrCat(root_, "/", controller, "/", path));
    std::ofstream(absl::StrCat(root_, "/", controller, "/", path, "/cgroup.procs"));
  }
  const testutil::ScopedTempDir tmp_{"host_cgroups_test"};
  const std::string root_ = tmp_.path();
};

TEST_F(FakeRoot, JoinWritesThePidIntoEachControllerThatHasThePath) {
  Make("memory", "pod/c1");
  Make("cpu", "pod/c1");
  Make("cpuacct", "pod/c1");
  Make("pids", "pod/c1");  // not one of ours: the sandbox counts pids itself
  absl::StatusOr<std::shared_ptr<const HostCgroups>> cg = HostCgroups::Open("pod/c1", root_);
  ASSERT_TRUE(cg.ok()) << cg.status();
  EXPECT_EQ((*cg)->path(), "pod/c1");
  ASSERT_TRUE((*cg)->Join(4242).ok());
  for (const char* c : {"memory", "cpu", "cpuacct"}) {
    EXPECT_EQ(ReadFileOrEmpty(absl::StrCat(root_, "/", c, "/pod/c1/cgroup.procs")), "4242") << c;
  }
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/pids/pod/c1/cgroup.procs"), "");
}

TEST_F(FakeRoot, ErrorsNameThePath) {
  Make("memory", "pod/c1");
  absl::StatusOr<std::shared_ptr<const HostCgroups>> cg = HostCgroups::Open("pod/../c1", root_);
  EXPECT_EQ(cg.status().code(), absl::StatusCode::kInvalidArgument);
  cg = HostCgroups::Open("", root_);
  EXPECT_EQ(cg.status().code(), absl::StatusCode::kInvalidArgument);
  cg = HostCgroups::Open("pod/c2", root_);
  EXPECT_EQ(cg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(cg.status().message().find("pod/c2"), std::string::npos) << cg.status();
}

// A sandbox fork is a host fork of the sentry: it inherits the seed's
// HostCgroups, whose cgroups stay the seed's container's (review V10).
TEST_F(FakeRoot, AForkOfTheOpenerMovesNothingIntoThem) {
  Make("memory", "pod/c1");
  absl::StatusOr<std::shared_ptr<const HostCgroups>> cg = HostCgroups::Open("pod/c1", root_);
  ASSERT_TRUE(cg.ok()) << cg.status();
  EXPECT_TRUE((*cg)->OpenedHere());
  const pid_t child = fork();
  ASSERT_GE(child, 0) << strerror(errno);
  if (child == 0) {
    // No gtest assertions in the child: its exit code says what it saw.
    if ((*cg)->OpenedHere()) _exit(1);
    const absl::Status s = (*cg)->Join(4242);
    if (s.code() != absl::StatusCode::kFailedPrecondition) _exit(2);
    if (s.message().find("pod/c1") == absl::string_view::npos) _exit(3);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: OpenedHere in the fork, 2: Join not refused, "
                                       "3: the refusal does not name the cgroup";
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/memory/pod/c1/cgroup.procs"), "");
  // The opener still can.
  ASSERT_TRUE((*cg)->Join(4343).ok());
  EXPECT_EQ(ReadFileOrEmpty(root_ + "/memory/pod/c1/cgroup.procs"), "4343");
}

// How many of this process's fds are open on `file`.
int FdsOn(const std::string& file) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(e.path(), ec) == file) ++n;
  }
  return n;
}

// A fork of a pod (sentry/control/server_fork_pod.cc) opens the member's
// cgroups of its own, which it may join, and lets go of the seed's, whose
// fds then close in the fork (and stay open in the seed).
TEST_F(FakeRoot, AForkJoinsTheCgroupsItOpensAndClosesTheSeeds) {
  Make("memory", "pod/c1");
  Make("memory", "fork/c1");
  const std::string seeds = root_ + "/memory/pod/c1/cgroup.procs";
  const std::string forks = root_ + "/memory/fork/c1/cgroup.procs";
  absl::StatusOr<std::shared_ptr<const HostCgroups>> cg = HostCgroups::Open("pod/c1", root_);
  ASSERT_TRUE(cg.ok()) << cg.status();
  ASSERT_EQ(FdsOn(seeds), 1);
  const pid_t child = fork();
  ASSERT_GE(child, 0) << strerror(errno);
  if (child == 0) {
    // No gtest assertions in the child: its exit code says what it saw.
    std::shared_ptr<const HostCgroups> inherited = std::move(*cg);
    absl::StatusOr<std::shared_ptr<const HostCgroups>> own = HostCgroups::Open("fork/c1", root_);
    if (!own.ok() || !(*own)->OpenedHere()) _exit(1);
    if (!(*own)->Join(4242).ok()) _exit(2);
    if (FdsOn(seeds) != 1) _exit(3);
    inherited.reset();
    if (FdsOn(seeds) != 0) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the fork's own not opened there, 2: not joined, "
                                       "3: the seed's fd not inherited, 4: not closed once let go";
  EXPECT_EQ(ReadFileOrEmpty(forks), "4242");
  EXPECT_EQ(ReadFileOrEmpty(seeds), "");
  EXPECT_EQ(FdsOn(seeds), 1) << "the seed's own stays open";
}

// The host moves a real process (this host mounts cgroup v1 controllers).
TEST(HostCgroupsReal, JoinMovesTheProcess) {
  const std::string name = absl::StrCat("seedvisor-host-cgroups-test-", getpid());
  const std::string dir = "/sys/fs/cgroup/memory/" + name;
  if (mkdir(dir.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot make a memory cgroup here (" << dir << ": " << strerror(errno) << ")";
  }
  absl::StatusOr<std::shared_ptr<const HostCgroups>> cg = HostCgroups::Open(name);
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  std::string got;
  if (cg.ok()) {
    EXPECT_TRUE((*cg)->Join(child).ok());
    got = ReadFileOrEmpty(absl::StrCat("/proc/", child, "/cgroup"));
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  cg = absl::CancelledError();  // closes the fds before the rmdir
  rmdir(dir.c_str());
  EXPECT_NE(got.find(":memory:/" + name + "\n"), std::string::npos) << got;
}

}  // namespace
}  // namespace seedvisor::sentry
