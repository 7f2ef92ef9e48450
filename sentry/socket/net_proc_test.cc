#include "sentry/socket/net_proc.h"

#include <arpa/inet.h>

#include <sstream>

#include "gtest/gtest.h"
#include "sentry/socket/linux_ipv6_reference.h"

namespace seedvisor::sentry {
namespace {

class NullLink : public netstack::LinkEndpoint {
 public:
  void WriteFrame(std::string_view) override {}
};

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class NetProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int eth0 = stack_.AddNic({"eth0", {2, 0, 0, 0, 0, 7}, 1500}, &link_).value();
    ASSERT_TRUE(stack_.AddAddress(eth0, {netstack::MakeIp4(192, 0, 2, 2), 24}).ok());
    ASSERT_TRUE(stack_.AddRoute({netstack::Ip4{}, 0}, netstack::MakeIp4(192, 0, 2, 1), eth0).ok());
  }
  NullLink link_;
  netstack::Stack stack_{{}};
};

TEST_F(NetProcTest, RouteListsTheMainTableAsLinux) {
  std::vector<std::string> l = Lines(ProcNetRoute(StackView(stack_)));
  ASSERT_EQ(l.size(), 3u);
  for (const std::string& line : l) EXPECT_EQ(line.size(), 127u);
  // The same rows a host with 192.0.2.2/24 via 192.0.2.1 on eth0 shows.
  EXPECT_EQ(l[1].substr(0, l[1].find_last_not_of(' ') + 1),
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0");
  EXPECT_EQ(l[2].substr(0, l[2].find_last_not_of(' ') + 1),
            "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0");
}

// The rows /proc/net/ipv6_route had in a namespace (Linux 6.18) whose eth0
// has fd00:219::2/64, a link-local address and a default route via
// fd00:219::1. Only the reference counts differ: Linux's count its fib6
// references (1, 2, 1, 2, 2, 2, 4), ours are 1.
TEST_F(NetProcTest, Ipv6RouteAsLinux) {
  ASSERT_TRUE(AddLinuxIpv6Reference(stack_, 2));
  const std::string z = "00000000000000000000000000000000";
  EXPECT_EQ(Lines(ProcNetIpv6Route(StackView(stack_))),
            (std::vector<std::string>{
                "fd000219000000000000000000000000 40 " + z + " 00 " + z + " 00000100 00000001 00000000 00000001     eth0",
                "fe800000000000000000000000000000 40 " + z + " 00 " + z + " 00000100 00000001 00000000 00000001     eth0",
                z + " 00 " + z + " 00 fd000219000000000000000000000001 00000400 00000001 00000000 00000003     eth0",
                "00000000000000000000000000000001 80 " + z + " 00 " + z + " 00000000 00000001 00000000 80200001       lo",
                "fd000219000000000000000000000002 80 " + z + " 00 " + z + " 00000000 00000001 00000000 80200001     eth0",
                "fe80000000000000508dc1fffeeaebc4 80 " + z + " 00 " + z + " 00000000 00000001 00000000 80200001     eth0",
                "ff000000000000000000000000000000 08 " + z + " 00 " + z + " 00000100 00000001 00000000 00000001     eth0",
                z + " 00 " + z + " 00 " + z + " ffffffff 00000001 00000000 00200200       lo",
            }));
}

TEST_F(NetProcTest, DevCountsFrames) {
  std::vector<std::string> l = Lines(ProcNetDev(StackView(stack_)));
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[2].substr(0, 7), "    lo:");
  EXPECT_EQ(l[3].substr(0, 7), "  eth0:");
}

TEST_F(NetProcTest, TcpListenerRow) {
  auto ep = stack_.NewTcp();
  ep->SetOwner(4242, 1000);
  ASSERT_TRUE(ep->Bind({netstack::MakeIp4(127, 0, 0, 1), 0x1f90}).ok());
  ASSERT_TRUE(ep->Listen(5).ok());
  std::vector<std::string> l = Lines(ProcNetTcp(stack_.TcpSockets()));
  ASSERT_EQ(l.size(), 2u);
  const std::string want =
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 ";
  EXPECT_EQ(l[1].substr(0, want.size()), want);
  ep->Close();
  EXPECT_EQ(Lines(ProcNetTcp(stack_.TcpSockets())).size(), 1u);
}

TEST_F(NetProcTest, UdpRow) {
  auto ep = stack_.NewUdp();
  ep->SetOwner(77, 0);
  ASSERT_TRUE(ep->Bind({netstack::Ip4{}, 53}).ok());
  std::vector<std::string> l = Lines(ProcNetUdp(stack_.UdpSockets()));
  ASSERT_EQ(l.size(), 2u);
  const std::string want =
      "    0: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 77 ";
  EXPECT_EQ(l[1].substr(0, want.size()), want);
  ep->Close();
}

}  // namespace
}  // namespace seedvisor::sentry
