// IPv6 scope ids (stack_scope.cc): on a stack with two Ethernet NICs, each
// with its own link-local address and fe80::/64 route, a link-local
// destination leaves through the NIC its scope names, and a bind or
// connect checks the scope as __inet6_bind() and tcp_v6_connect() do.
#include "gtest/gtest.h"
#include "netstack/testing/harness.h"

namespace seedvisor::netstack {
namespace {

using testing::ManualClock;
using testing::RecordingLink;

IpAddr LinkLocal(uint8_t last) {
  uint8_t b[16] = {0xfe, 0x80};
  b[15] = last;
  return IpAddr::FromBytes(b);
}

StackOptions Options(ManualClock& clock) {
  StackOptions o;
  o.now_ns = clock.fn();
  o.secret_seed = 7;
  return o;
}

struct TwoLinks {
  ManualClock clock;
  Stack stack{Options(clock)};
  RecordingLink a, b;
  int nic_a = 0, nic_b = 0;
  TwoLinks() {
    nic_a = stack.AddNic({"eth0", {0x02, 0, 0, 0, 0, 0xa}, 1500}, &a).value();
    nic_b = stack.AddNic({"eth1", {0x02, 0, 0, 0, 0, 0xb}, 1500}, &b).value();
    EXPECT_TRUE(stack.AddAddress(nic_a, {LinkLocal(0xa), 64}).ok());
    EXPECT_TRUE(stack.AddAddress(nic_b, {LinkLocal(0xb), 64}).ok());
  }
};

TEST(Scope, ALinkLocalDestinationLeavesThroughItsScopesNic) {
  for (bool second : {false, true}) {
    TwoLinks t;
    const uint32_t scope = uint32_t(second ? t.nic_b : t.nic_a);
    auto u = t.stack.NewUdp();
    ASSERT_TRUE(u->SetFamily6(false).ok());
    // (First a neighbour solicitation for the peer, on that link.)
    ASSERT_TRUE(u->SendTo("x", SockAddr{LinkLocal(0x99), 53}, scope).ok());
    EXPECT_EQ(t.a.frames.empty(), second);
    EXPECT_EQ(t.b.frames.empty(), !second);
    // A connected socket keeps the scope it was given.
    auto c = t.stack.NewTcp();
    ASSERT_TRUE(c->SetFamily6(false).ok());
    ASSERT_TRUE(c->SetScope(LinkLocal(0x99), scope, /*bind=*/false).ok());
    EXPECT_EQ(c->Connect({LinkLocal(0x99), 80}).error(), Errno(EINPROGRESS));
    EXPECT_EQ(c->local().ip, LinkLocal(second ? 0xb : 0xa));
    EXPECT_EQ(c->ScopeOf(c->local().ip), scope);
    EXPECT_EQ(c->ScopeOf(IpAddr(MakeIp4(10, 0, 0, 1))), 0u);  // not link-local
  }
}

TEST(Scope, BindAndConnectCheckTheScope) {
  TwoLinks t;
  const uint32_t a = uint32_t(t.nic_a), b = uint32_t(t.nic_b);
  auto u = t.stack.NewUdp();
  ASSERT_TRUE(u->SetFamily6(false).ok());
  EXPECT_EQ(u->SetScope(LinkLocal(0xb), 0, true).error(), Errno(EINVAL));  // none
  EXPECT_EQ(u->SetScope(LinkLocal(0xb), 99, true).error(), Errno(ENODEV));
  EXPECT_EQ(u->SetScope(LinkLocal(0xb), a, true).error(), Errno(EADDRNOTAVAIL));
  ASSERT_TRUE(u->SetScope(LinkLocal(0xb), b, true).ok());
  ASSERT_TRUE(u->Bind({LinkLocal(0xb), 0}).ok());
  // Bound to b's link: another scope is EINVAL, none keeps b's.
  EXPECT_EQ(u->SetScope(LinkLocal(0x99), a, false).error(), Errno(EINVAL));
  ASSERT_TRUE(u->SetScope(LinkLocal(0x99), 0, false).ok());
  EXPECT_EQ(u->ScopeOf(LinkLocal(0x99)), b);
  // Any other address ignores a scope.
  auto v = t.stack.NewUdp();
  ASSERT_TRUE(v->SetFamily6(false).ok());
  EXPECT_TRUE(v->SetScope(kIp6Loopback, 99, true).ok());
  EXPECT_EQ(v->ScopeOf(kIp6Loopback), 0u);
  // A connect scoped to a NIC without a route there.
  auto c = t.stack.NewTcp();
  ASSERT_TRUE(c->SetFamily6(false).ok());
  ASSERT_TRUE(c->SetScope(LinkLocal(0x99), 99, false).ok());
  EXPECT_EQ(c->Connect({LinkLocal(0x99), 80}).error(), Errno(ENETUNREACH));
}

}  // namespace
}  // namespace seedvisor::netstack
