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
  EXPECT_NE(if_nametoindex(host_end.c_str()), 0u) << host_end;
  pool.Give(std::move(*d));
  // Destroyed, never handed out again: its host end goes with it, and the
  // pool is full again with a new device.
  EXPECT_TRUE(Within5s([&] { return if_nametoindex(host_end.c_str()) == 0; })) << host_end;
  EXPECT_TRUE(Within5s([&] { return pool.Stats().free == 2 && pool.Stats().destroyed == 1; }));
  VethPoolStats s = pool.Stats();
  EXPECT_EQ(s.created, 3u);
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.misses, 0u);
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

}  // namespace
}  // namespace seedvisor::seedd
