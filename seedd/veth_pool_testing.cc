#include "seedd/veth_pool_testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace seedvisor::seedd {

bool VethPoolTest::own_ns_ = false;

void VethPoolTest::SetUpTestSuite() {
  // Threads made from here on (the pool's) start in the new namespace.
  own_ns_ = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
}

void VethPoolTest::SetUp() {
  if (!own_ns_) GTEST_SKIP() << "needs root for a network namespace: " << strerror(errno);
}

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

int Listener6(const netstack::IpAddr& addr, unsigned ifindex, uint16_t* port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  memcpy(a.sin6_addr.s6_addr, addr.b.data(), 16);
  a.sin6_scope_id = ifindex;
  socklen_t l = sizeof a;
  auto* sa = reinterpret_cast<sockaddr*>(&a);  // SAFETY: sockaddr_in6 is a sockaddr.
  int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || bind(s, sa, l) != 0 || listen(s, 4) != 0 || getsockname(s, sa, &l) != 0) {
    ADD_FAILURE() << "IPv6 listener: " << strerror(errno);
  }
  *port = ntohs(a.sin6_port);
  return s;
}

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

void EnsureGuestLinkLocal(const VethPool::Device& d, netstack::Stack& st) {
  for (const netstack::AddrPrefix& a : d.taken.info.v6) {
    if (a.addr.link_local()) return;
  }
  uint8_t ll[16] = {0xfe, 0x80};
  ll[15] = 2;
  const netstack::IpAddr a = netstack::IpAddr::FromBytes(ll);
  for (const netstack::NicInfo& n : st.Nics()) {
    if (n.loopback) continue;
    ASSERT_TRUE(st.AddAddress(n.id, {a, 64}).ok());
  }
}

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

}  // namespace seedvisor::seedd
