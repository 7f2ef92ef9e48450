// VethPool in a network namespace of the test's own (root): every device
// and host end it makes is gone with the test.
#include "seedd/veth_pool.h"

#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

class VethPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Threads made from here on (the pool's) start in the new namespace.
    own_ns_ = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
  }
  void SetUp() override {
    if (!own_ns_) GTEST_SKIP() << "needs root for a network namespace: " << strerror(errno);
  }
  // Waits up to 5 s for `pred`.
  template <typename Pred>
  static bool Within5s(Pred pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred()) return true;
      usleep(10'000);
    }
    return pred();
  }
  static bool Exists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }
  static bool own_ns_;
};
bool VethPoolTest::own_ns_ = false;

TEST_F(VethPoolTest, HandsOutTakenOverDevicesAndReplacesTheGivenBack) {
  VethPool pool({.size = 2, .octet = 203, .prefix = "svpt"});
  ASSERT_TRUE(pool.Fill().ok());
  EXPECT_EQ(pool.Stats().free, 2);
  std::optional<VethPool::Device> d = pool.Take();
  ASSERT_TRUE(d.has_value());
  // The guest end: its packet socket, its address read from the kernel.
  int type = 0;
  socklen_t l = sizeof type;
  ASSERT_EQ(getsockopt(d->taken.packet_fd, SOL_SOCKET, SO_TYPE, &type, &l), 0) << strerror(errno);
  EXPECT_EQ(type, SOCK_RAW);
  EXPECT_EQ(d->taken.info.addr.v, (10u << 24 | 203u << 16 | uint32_t(d->slot) << 8 | 2));
  EXPECT_EQ(d->taken.info.prefix_len, 24);
  // The host end is here, in our namespace.
  std::string host_end = d->host_end;
  const unsigned index = if_nametoindex(host_end.c_str());
  EXPECT_NE(index, 0u) << host_end;
  // Destroyed, never handed out again, even while someone (a forked
  // sentry that has not ended yet) still holds its namespace: its host end
  // goes with it (a new device in the same slot has the same name, not the
  // same index), and the pool is full again with a new device.
  int holder = dup(d->taken.packet_fd);
  ASSERT_GE(holder, 0);
  pool.Give(std::move(*d));
  EXPECT_TRUE(Within5s([&] { return if_nametoindex(host_end.c_str()) != index; })) << host_end;
  EXPECT_TRUE(Within5s([&] { return pool.Stats().free == 2 && pool.Stats().destroyed == 1; }));
  close(holder);
  VethPoolStats s = pool.Stats();
  EXPECT_EQ(s.created, 3u);
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.misses, 0u);
  EXPECT_EQ(s.failures, 0u);
}

TEST_F(VethPoolTest, AnEmptyPoolIsAMissNotAWait) {
  VethPool pool({.size = 1, .octet = 204, .prefix = "svpm"});
  ASSERT_TRUE(pool.Fill().ok());
  std::optional<VethPool::Device> a = pool.Take();
  ASSERT_TRUE(a.has_value());
  std::optional<VethPool::Device> b = pool.Take();  // before the refill made one
  if (b.has_value()) {
    // The refill was quicker than this thread: the next one must miss.
    std::optional<VethPool::Device> c = pool.Take();
    EXPECT_FALSE(c.has_value());
    pool.Give(std::move(*b));
  } else {
    EXPECT_EQ(pool.Stats().misses, 1u);
  }
  pool.Give(std::move(*a));
  EXPECT_TRUE(Within5s([&] { return pool.Stats().free == 1; }));
}

// A slot whose device cannot be made (here: its host end's name is taken
// by another pool's device) is said once and skipped; the pool fills from
// the others, at start and when refilling, and does not try it again
// before its backoff ends. An idle pool's thread sleeps.
TEST_F(VethPoolTest, AFailingSlotIsSkippedAndTheIdleThreadSleeps) {
  const absl::Duration backoff = absl::Seconds(30);  // longer than the test
  VethPool other({.size = 1, .octet = 205, .prefix = "svpf", .backoff = backoff});
  ASSERT_TRUE(other.Fill().ok());
  ASSERT_TRUE(Exists("svpf0"));
  testing::internal::CaptureStderr();
  VethPool pool({.size = 2, .octet = 206, .prefix = "svpf", .backoff = backoff});
  absl::Status filled = pool.Fill();
  std::string said = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(filled.ok()) << filled;
  EXPECT_EQ(pool.Stats().free, 2);
  EXPECT_EQ(pool.Stats().failures, 1u);
  EXPECT_NE(said.find("svpf0"), std::string::npos) << said;
  EXPECT_NE(said.find("File exists"), std::string::npos) << said;
  // `pool` has svpf1 and svpf2. `other`'s refill, its slot 0 held, fails
  // on both and makes svpf3.
  testing::internal::CaptureStderr();
  std::optional<VethPool::Device> o = other.Take();
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(Within5s([&] { return other.Stats().free == 1; }));
  EXPECT_TRUE(Exists("svpf3"));
  EXPECT_EQ(other.Stats().failures, 2u);
  // `pool`'s refill fails on svpf3 and makes svpf4; it tries neither
  // failed slot again (their failures stay as they were) and says each
  // once.
  std::optional<VethPool::Device> a = pool.Take();
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(Within5s([&] { return pool.Stats().free == 2; }));
  EXPECT_TRUE(Exists("svpf4"));
  usleep(300'000);
  said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(pool.Stats().failures, 2u) << said;
  EXPECT_EQ(other.Stats().failures, 2u) << said;
  EXPECT_NE(said.find("svpf3"), std::string::npos) << said;
  EXPECT_EQ(said.find("svpf0"), std::string::npos) << said;
  // Full and idle: neither thread wakes.
  const uint64_t woke = pool.Stats().wakeups, other_woke = other.Stats().wakeups;
  usleep(500'000);
  EXPECT_EQ(pool.Stats().wakeups, woke);
  EXPECT_EQ(other.Stats().wakeups, other_woke);
  pool.Give(std::move(*a));
  other.Give(std::move(*o));
  EXPECT_TRUE(Within5s([&] { return pool.Stats().destroyed == 1 && pool.Stats().free == 2; }));
}

// Every slot failing is a host-wide cause: Fill gives up after a few, and
// says why.
TEST_F(VethPoolTest, FailuresInARowFailTheFill) {
  VethPool other({.size = VethPool::kFailuresInARow, .octet = 207, .prefix = "svpq"});
  ASSERT_TRUE(other.Fill().ok());
  testing::internal::CaptureStderr();
  VethPool pool({.size = 1, .octet = 208, .prefix = "svpq"});
  absl::Status filled = pool.Fill();
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(filled.ok());
  EXPECT_NE(filled.message().find("in a row"), std::string::npos) << filled;
  EXPECT_EQ(pool.Stats().failures, uint64_t(VethPool::kFailuresInARow));
  EXPECT_EQ(pool.Stats().created, 0u);
}

}  // namespace
}  // namespace seedvisor::seedd
