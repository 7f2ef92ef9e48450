#include "runsc/do_network.h"

#include "gtest/gtest.h"

namespace seedvisor::runsc {
namespace {

TEST(ParseSandboxIp, DefaultIsRunscs) {
  auto a = ParseSandboxIp(kDefaultSandboxIp);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->guest, 0xc0a80a02u);  // 192.168.10.2
  EXPECT_EQ(a->host, 0xc0a80a01u);   // 192.168.10.1
  EXPECT_EQ(a->prefix_len, 24);
}

TEST(ParseSandboxIp, HostEndIsOneOrTwo) {
  auto a = ParseSandboxIp("10.9.0.1/30");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, 0x0a090002u);
  a = ParseSandboxIp("10.9.0.6");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->prefix_len, 24);
  EXPECT_EQ(a->host, 0x0a090001u);
}

TEST(ParseSandboxIp, RejectsWhatCannotWork) {
  for (const char* bad : {"", "10.0.0", "10.0.0.2/31", "10.0.0.2/7", "10.0.0.2/x", "10.0.0.0/24",
                          "10.0.0.255/24", "10.0.0.2/24/1", "::1"}) {
    EXPECT_FALSE(ParseSandboxIp(bad).ok()) << bad;
  }
}

TEST(HostEndName, FitsIfnamsiz) {
  EXPECT_EQ(HostEndName(4194304), "svd4194304");
  EXPECT_LT(HostEndName(4194304).size(), 16u);
}

}  // namespace
}  // namespace seedvisor::runsc
