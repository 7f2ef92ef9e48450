// VethPool in a network namespace of the test's own (root): every device
// and host end it makes is gone with the test.
#include "seedd/veth_pool.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
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
#include "netstack/stack.h"
#include "sentry/socket/net_service.h"

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

// A TCP listener of this (the host end's) namespace on `addr` (host
// order; 0: the wildcard of both families, as sshd's), any port; its port
// in *port.
int Listener(uint32_t addr, uint16_t* port) {
  sockaddr_storage ss{};
  socklen_t l;
  int s;
  if (addr == 0) {
    s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_family = AF_INET6;
    l = sizeof(sockaddr_in6);
  } else {
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(addr);
    l = sizeof(sockaddr_in);
  }
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if (s < 0 || bind(s, sa, l) != 0 || listen(s, 4) != 0 || getsockname(s, sa, &l) != 0) {
    ADD_FAILURE() << "listener: " << strerror(errno);
  }
  // sin_port and sin6_port are at the same offset.
  *port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return s;
}

// The usable (not tentative) link-local address of interface `name`, from
// /proc/net/if_inet6 ("<32 hex> <ifindex> <prefix> <scope> <flags> <name>").
std::optional<netstack::IpAddr> LinkLocalOf(const std::string& name) {
  FILE* f = fopen("/proc/net/if_inet6", "r");
  if (!f) return std::nullopt;
  char hex[33], dev[32];
  unsigned idx, plen, scope, flags;
  std::optional<netstack::IpAddr> r;
  while (fscanf(f, "%32s %x %x %x %x %31s", hex, &idx, &plen, &scope, &flags, dev) == 6) {
    if (name != dev || scope != 0x20 || (flags & 0x40)) continue;  // link scope, not tentative
    uint8_t b[16];
    for (int i = 0; i < 16; ++i) sscanf(hex + 2 * i, "%2hhx", &b[i]);
    r = netstack::IpAddr::FromBytes(b);
  }
  fclose(f);
  return r;
}

// The guest's connect (over the sandbox's stack `st`) to `to`:`port`: 0 or
// its error (ETIMEDOUT: no answer in 3 s).
int GuestConnect(netstack::Stack& st, netstack::IpAddr to, uint16_t port) {
  std::shared_ptr<netstack::TcpEndpoint> ep = st.NewTcp();
  (void)ep->SetFamily6(!to.is_v4());
  // No route (ENETUNREACH) fails here, not after the SYN.
  if (Status c = ep->Connect({to, port}); !c.ok() && c.error().value() != EINPROGRESS) {
    ep->Close();
    return c.error().value();
  }
  for (int i = 0; i < 300 && ep->state() == netstack::TcpState::kSynSent; ++i) {
    usleep(10'000);
  }
  int err = ep->state() == netstack::TcpState::kEstablished ? 0 : ep->TakeError();
  if (ep->state() == netstack::TcpState::kSynSent) err = ETIMEDOUT;
  ep->Close();
  return err;
}

// The sandbox's stack on `d`'s packet socket (a copy), as in a fork, with
// a default route via its host end: a pooled guest has none, but nothing
// on the host may depend on that (a sentry taken over sends any frame to
// its gateway's MAC, and a route is a guest feature away).
std::unique_ptr<sentry::NetService> GuestOn(const VethPool::Device& d) {
  sentry::TakenInterface t = d.taken;
  t.packet_fd = dup(d.taken.packet_fd);  // the service owns its copy
  t.info.gateway = netstack::Ip4{d.host_addr};
  auto guest = std::make_unique<sentry::NetService>();
  if (absl::Status s = guest->AttachInterfaces({t}); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  if (absl::Status s = guest->Start(); !s.ok()) {
    ADD_FAILURE() << s;
    return nullptr;
  }
  return guest;
}

// Security (netstack/README.md, "The veth pool's host ends"): a guest on a
// pooled device reaches a service of the host end's namespace only if it
// listens on that host end's address itself, never one on the wildcard
// (sshd's 0.0.0.0:22); the host still reaches the guest. The guest here is
// the sandbox's stack on the device's packet socket, as in a fork.
TEST_F(VethPoolTest, TheGuestReachesOnlyServicesBoundToItsHostEnd) {
  VethPool pool({.size = 1, .octet = 209, .prefix = "svpg"});
  ASSERT_TRUE(pool.Fill().ok());
  std::optional<VethPool::Device> d = pool.Take();
  ASSERT_TRUE(d.has_value());
  uint16_t wild_port = 0, own_port = 0;
  int wild = Listener(0, &wild_port);  // AF_INET6 on ::, IPv4 too
  int own = Listener(d->host_addr, &own_port);
  {
    std::unique_ptr<sentry::NetService> guest = GuestOn(*d);
    ASSERT_TRUE(guest != nullptr);
    netstack::Stack& st = guest->stack();
    auto guest_connect = [&](netstack::IpAddr to, uint16_t port) {
      return GuestConnect(st, to, port);
    };
    // Without the rules (seedd/veth_guard.h) this one connects.
    EXPECT_EQ(guest_connect(netstack::Ip4{d->host_addr}, wild_port), ECONNREFUSED)
        << "a wildcard service of the host";
    EXPECT_EQ(guest_connect(netstack::Ip4{d->host_addr}, own_port), 0)
        << "a service on the host end's address";
    // Over IPv6 to the host end's link-local address (once its duplicate
    // address detection is over), if the guest has one of its own.
    // The takeover may come before the guest end's link-local address
    // does: the guest then gets one here.
    bool guest_ll = false;
    for (const netstack::AddrPrefix& a : d->taken.info.v6) guest_ll |= a.addr.link_local();
    if (!guest_ll) {
      uint8_t ll[16] = {0xfe, 0x80};
      ll[15] = 2;
      const netstack::IpAddr a = netstack::IpAddr::FromBytes(ll);
      for (const netstack::NicInfo& n : st.Nics()) {
        if (n.loopback) continue;
        ASSERT_TRUE(st.AddAddress(n.id, {a, 64}).ok());
      }
    }
    std::optional<netstack::IpAddr> host_ll;
    for (int i = 0; i < 300 && !host_ll; ++i, usleep(10'000)) host_ll = LinkLocalOf(d->host_end);
    ASSERT_TRUE(host_ll.has_value()) << "the host end has no usable link-local address after 3 s";
    // Refused, or (here) never answered: no reset comes back to a
    // link-local peer. Without the rules it connects.
    int e6 = guest_connect(*host_ll, wild_port);
    EXPECT_TRUE(e6 == ECONNREFUSED || e6 == ETIMEDOUT) << "a wildcard service over IPv6: " << e6;
    // The host reaches a guest server.
    std::shared_ptr<netstack::TcpEndpoint> server = st.NewTcp();
    ASSERT_TRUE(server->Bind({netstack::Ip4{}, 8080}).ok());
    ASSERT_TRUE(server->Listen(4).ok());
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{3, 0};
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in g{};
    g.sin_family = AF_INET;
    g.sin_port = htons(8080);
    g.sin_addr.s_addr = htonl(d->taken.info.addr.v);
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&g), sizeof g), 0) << strerror(errno);
    close(c);
    server->Close();
  }
  close(wild);
  close(own);
  pool.Give(std::move(*d));
}

// Brings `name` up and gives it `addr`/32 as a second address (alias
// label name:9). 0 or errno.
int AddAddress(const std::string& name, uint32_t addr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq r{};
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s", name.c_str());
  int err = ioctl(s, SIOCGIFFLAGS, &r) == 0 ? 0 : errno;
  r.ifr_flags |= IFF_UP;
  if (err == 0 && ioctl(s, SIOCSIFFLAGS, &r) != 0) err = errno;
  snprintf(r.ifr_name, sizeof r.ifr_name, "%s:9", name.c_str());
  auto* a = reinterpret_cast<sockaddr_in*>(&r.ifr_addr);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(addr);
  if (err == 0 && ioctl(s, SIOCSIFADDR, &r) != 0) err = errno;
  close(s);
  return err;
}

// Security: the `socket` match alone accepted a listener bound to any
// local address, and a guest reached one through its host end as its
// gateway (the default route it is given): the node's LAN address (here
// a second address of the test's namespace, on lo), or another pooled
// device's host end address (a service meant for that device's guest).
// The guest reaches its own host end's address only. Without the rules'
// addrtype match (before this test was written) both connect.
TEST_F(VethPoolTest, TheGuestReachesNoOtherLocalAddress) {
  VethPool pool({.size = 2, .octet = 210, .prefix = "svpo"});
  ASSERT_TRUE(pool.Fill().ok());
  std::optional<VethPool::Device> d = pool.Take(), other = pool.Take();
  ASSERT_TRUE(d.has_value() && other.has_value());
  const uint32_t lan = 192u << 24 | 0u << 16 | 2u << 8 | 10;  // 192.0.2.10
  ASSERT_EQ(AddAddress("lo", lan), 0) << strerror(errno);
  uint16_t own_port = 0, other_port = 0, lan_port = 0;
  int own = Listener(d->host_addr, &own_port);
  int oth = Listener(other->host_addr, &other_port);
  int lan_l = Listener(lan, &lan_port);
  {
    std::unique_ptr<sentry::NetService> guest = GuestOn(*d);
    ASSERT_TRUE(guest != nullptr);
    netstack::Stack& st = guest->stack();
    EXPECT_EQ(GuestConnect(st, netstack::Ip4{d->host_addr}, own_port), 0)
        << "a service on its own host end's address";
    EXPECT_NE(GuestConnect(st, netstack::Ip4{lan}, lan_port), 0)
        << "a service on another address of the host end's namespace";
    EXPECT_NE(GuestConnect(st, netstack::Ip4{other->host_addr}, other_port), 0)
        << "a service on another pooled device's host end";
  }
  close(own);
  close(oth);
  close(lan_l);
  pool.Give(std::move(*d));
  pool.Give(std::move(*other));
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
