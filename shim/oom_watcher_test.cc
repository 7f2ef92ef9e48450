#include "shim/oom_watcher.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "test/util/temp_dir.h"

namespace seedvisor::shim {
namespace {

// A fake cgroup tree (<root>/memory/<path>/cgroup.event_control) and plain
// eventfds that the test signals the way the kernel would.
class OomWatcherTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    mkdir((root_ + "/memory").c_str(), 0755);
    mkdir((root_ + "/memory/c1").c_str(), 0755);
    std::ofstream(root_ + "/memory/c1/cgroup.event_control") << "";
  }
  std::vector<std::string> Seen() {
    absl::MutexLock l(&mu_);
    return seen_;
  }
  // Waits for `n` callbacks (10 s at most: a loaded host may not run the
  // watcher's thread for a while).
  bool WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&] { return seen_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  void Signal(int efd) {
    uint64_t one = 1;
    ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  }

  testutil::ScopedTempDir tmp_{"oom_watcher_test"};
  std::string root_;
  absl::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
  OomWatcher watcher_{[this](const std::string& id) {
                        absl::MutexLock l(&mu_);
                        seen_.push_back(id);
                      },
                      "/nonexistent"};
};

TEST_F(OomWatcherTest, ReportsEachSignalWhileTheCgroupExists) {
  OomWatcher w(
      [this](const std::string& id) {
        absl::MutexLock l(&mu_);
        seen_.push_back(id);
      },
      root_);
  int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_TRUE(w.WatchFd("c1", "c1", efd).ok());
  Signal(efd);
  ASSERT_TRUE(WaitFor(1));
  Signal(efd);
  ASSERT_TRUE(WaitFor(2));
  EXPECT_EQ(Seen(), (std::vector<std::string>{"c1", "c1"}));

  // The cgroup goes away (its removal signals too): no OOM, watch ended.
  // The watcher's thread closes the eventfd once it has read that signal:
  // waited for (at load 20+ the thread may not have run within a fixed
  // nap), then no callback may have come with it.
  unlink((root_ + "/memory/c1/cgroup.event_control").c_str());
  Signal(efd);
  bool closed = false;
  for (int i = 0; i < 1000 && !(closed = fcntl(efd, F_GETFD) == -1); ++i) usleep(10 * 1000);
  EXPECT_TRUE(closed) << "the watcher did not close the eventfd within 10 s";
  EXPECT_EQ(Seen().size(), 2u);
}

TEST_F(OomWatcherTest, UnwatchClosesAndStopsReporting) {
  OomWatcher w(
      [this](const std::string& id) {
        absl::MutexLock l(&mu_);
        seen_.push_back(id);
      },
      root_);
  int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_TRUE(w.WatchFd("c1", "c1", efd).ok());
  w.Unwatch("c1");
  w.Unwatch("never-watched");
  EXPECT_EQ(fcntl(efd, F_GETFD), -1);
  EXPECT_TRUE(Seen().empty());
}

TEST_F(OomWatcherTest, WatchNeedsTheMemoryCgroup) {
  absl::Status s = watcher_.Watch("c1", "c1");  // mount root /nonexistent
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::IsFailedPrecondition(watcher_.Watch("c1", "")));
}

}  // namespace
}  // namespace seedvisor::shim
