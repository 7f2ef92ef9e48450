// VethPool in a network namespace of the test's own (root): every device
// and host end it makes is gone with the test.
#include "seedd/veth_pool.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "seedd/veth_pool_testing.h"

namespace seedvisor::seedd {
namespace {

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
  EXPECT_TRUE(Eventually([&] { return if_nametoindex(host_end.c_str()) != index; })) << host_end;
  EXPECT_TRUE(Eventually([&] { return pool.Stats().free == 2 && pool.Stats().destroyed == 1; }));
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
  EXPECT_TRUE(Eventually([&] { return pool.Stats().free == 1; }));
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
  EXPECT_TRUE(Eventually([&] { return other.Stats().free == 1; }));
  EXPECT_TRUE(Exists("svpf3"));
  EXPECT_EQ(other.Stats().failures, 2u);
  // `pool`'s refill fails on svpf3 and makes svpf4; it tries neither
  // failed slot again (their failures stay as they were) and says each
  // once.
  std::optional<VethPool::Device> a = pool.Take();
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(Eventually([&] { return pool.Stats().free == 2; }));
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
  EXPECT_TRUE(Eventually([&] { return pool.Stats().destroyed == 1 && pool.Stats().free == 2; }));
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
// The MAC address of interface `name` (random for a veth), "" if none.
std::string MacOf(const std::string& name) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq r{};
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", name.c_str());
  const bool ok = ioctl(s, SIOCGIFHWADDR, &r) == 0;
  close(s);
  return ok ? std::string(r.ifr_hwaddr.sa_data, 6) : "";
}

// Two seedds on one host: each its own host end names (one prefix for
// both failed with "File exists") and subnets (the same octet by default:
// the second skips the first's).
TEST_F(VethPoolTest, TwoSeeddsShareNoNameAndNoSubnet) {
  const std::string pa = HostEndPrefixFor("/run/seedd-a"), pb = HostEndPrefixFor("/run/seedd-b");
  EXPECT_NE(pa, pb);
  EXPECT_EQ(pa, HostEndPrefixFor("/run/seedd-a"));  // a restart finds its own
  for (const std::string& p : {pa, pb}) {
    EXPECT_EQ(p.size(), 11u) << p;
    EXPECT_EQ(p.find_first_of("0123456789"), std::string::npos) << p;
    EXPECT_LT(p.size() + 3, size_t(IFNAMSIZ)) << p;  // with slot 249
  }
  VethPool a({.size = 2, .octet = 211, .prefix = pa});
  ASSERT_TRUE(a.Fill().ok());
  VethPool b({.size = 2, .octet = 211, .prefix = pb});
  absl::Status filled = b.Fill();
  ASSERT_TRUE(filled.ok()) << filled;
  // Before any refill (each pool's thread then skips the other's too).
  EXPECT_EQ(b.Stats().failures, 0u);
  EXPECT_EQ(b.Stats().taken_subnets, 2u);
  std::optional<VethPool::Device> a0 = a.Take(), a1 = a.Take(), b0 = b.Take(), b1 = b.Take();
  ASSERT_TRUE(a0 && a1 && b0 && b1);
  for (const auto* x : {&*a0, &*a1}) {
    for (const auto* y : {&*b0, &*b1}) {
      EXPECT_NE(x->host_addr >> 8, y->host_addr >> 8) << x->host_end << " " << y->host_end;
      EXPECT_NE(x->host_end, y->host_end);
    }
  }
  for (auto* d : {&a0, &a1}) a.Give(std::move(**d));
  for (auto* d : {&b0, &b1}) b.Give(std::move(**d));
}

// A seedd killed with SIGKILL leaves its host ends while their namespaces
// live on (here: its instances' devices, held): the next run of the same
// prefix deletes them and fills all its slots. Before, each failed with
// "File exists", three of them the whole pool.
TEST_F(VethPoolTest, ARestartDeletesTheHostEndsAKilledRunLeft) {
  std::vector<VethPool::Device> held;
  {
    VethPool killed({.size = VethPool::kFailuresInARow, .octet = 212, .prefix = "svpkl"});
    ASSERT_TRUE(killed.Fill().ok());
    for (int i = 0; i < VethPool::kFailuresInARow; ++i) {
      std::optional<VethPool::Device> d = killed.Take();
      ASSERT_TRUE(d.has_value());
      held.push_back(std::move(*d));
    }
  }  // in use: not destroyed with the pool, as a killed seedd's
  std::vector<std::string> old_mac;
  for (const VethPool::Device& d : held) {
    old_mac.push_back(MacOf(d.host_end));
    EXPECT_NE(old_mac.back(), "") << d.host_end;
  }
  testing::internal::CaptureStderr();
  VethPool next({.size = VethPool::kFailuresInARow, .octet = 212, .prefix = "svpkl"});
  absl::Status filled = next.Fill();
  std::string said = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(filled.ok()) << filled << "\n" << said;
  EXPECT_EQ(next.Stats().failures, 0u) << said;
  EXPECT_EQ(next.Stats().leftovers, VethPool::kFailuresInARow);
  EXPECT_NE(said.find("an earlier run left"), std::string::npos) << said;
  for (size_t i = 0; i < held.size(); ++i) {
    // Its slot's new device: the same name, not the same interface (its
    // index may be the same: made in a namespace of its own, then moved).
    EXPECT_NE(MacOf(held[i].host_end), old_mac[i]) << held[i].host_end;
    EXPECT_NE(MacOf(held[i].host_end), "") << held[i].host_end;
    close(held[i].taken.packet_fd);
  }
}

}  // namespace
}  // namespace seedvisor::seedd
