// What the veth pool's tests share (testonly): a fixture that moves the
// test binary into a network namespace of its own (root; every device and
// host end a pool makes there is gone with the test), listeners of that
// namespace, and a guest: the sandbox's stack on a pooled device's packet
// socket, as in a fork.
//
//   TEST_F(VethPoolTest, X) {
//     VethPool pool({.size = 1, .octet = 209, .prefix = "svpg"});
//     ...
//     std::unique_ptr<sentry::NetService> guest = GuestOn(*d);
//     EXPECT_EQ(GuestConnect(guest->stack(), to, port), 0);
//   }
#ifndef SEEDVISOR_SEEDD_VETH_POOL_TESTING_H_
#define SEEDVISOR_SEEDD_VETH_POOL_TESTING_H_

#include <net/if.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "netstack/stack.h"
#include "seedd/veth_pool.h"
#include "sentry/socket/net_service.h"

namespace seedvisor::seedd {

class VethPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  // Waits for `pred`, 20 s at most: a pool's thread makes each device in
  // a network namespace of its own, which the host kernel may take seconds
  // to give at load 20-40 (unshare waits for namespaces being torn down).
  template <typename Pred>
  static bool Eventually(Pred pred) {
    for (int i = 0; i < 2000; ++i) {
      if (pred()) return true;
      usleep(10'000);
    }
    return pred();
  }
  static bool Exists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }
  static bool own_ns_;
};

// A TCP listener of this (the host end's) namespace on `addr` (host
// order; 0: the wildcard of both families, as sshd's), any port; its port
// in *port.
int Listener(uint32_t addr, uint16_t* port);
// A TCP listener on IPv6 `addr` of interface `ifindex` (its scope, for a
// link-local address), any port; its port in *port.
int Listener6(const netstack::IpAddr& addr, unsigned ifindex, uint16_t* port);
// The usable (not tentative) link-local address of interface `name`, from
// /proc/net/if_inet6 ("<32 hex> <ifindex> <prefix> <scope> <flags> <name>").
std::optional<netstack::IpAddr> LinkLocalOf(const std::string& name);
// The guest's connect (over the sandbox's stack `st`) to `to`:`port`: 0 or
// its error (ETIMEDOUT: no answer in 3 s).
int GuestConnect(netstack::Stack& st, netstack::IpAddr to, uint16_t port);
// The sandbox's stack on `d`'s packet socket (a copy), as in a fork, with
// a default route via its host end: a pooled guest has none, but nothing
// on the host may depend on that (a sentry taken over sends any frame to
// its gateway's MAC, and a route is a guest feature away).
std::unique_ptr<sentry::NetService> GuestOn(const VethPool::Device& d);
// Gives the guest stack `st` a link-local address on its device unless
// the takeover found one (it may come before the guest end's does).
void EnsureGuestLinkLocal(const VethPool::Device& d, netstack::Stack& st);
// Brings `name` up and gives it `addr`/32 as a second address (alias
// label name:9). 0 or errno.
int AddAddress(const std::string& name, uint32_t addr);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_VETH_POOL_TESTING_H_
