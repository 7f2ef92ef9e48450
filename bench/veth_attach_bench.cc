// What a sandbox fork's own network costs on the request path (issue 11:
// <= 20 us for the per-instance stack part, <= 0.2 ms with a pooled veth),
// three ways in one run, each after a seed-like stack (a NIC, listeners):
//
//   stack   the per-instance part alone, as the forked sentry runs it:
//           NetService::ResetInForkChild() (a new wakeup eventfd, new
//           secrets) and ReplaceDevicesInForkChild() (the seed's NIC out,
//           the fork's in with its MAC, MTU, address and default route).
//   pooled  a namespace with a veth made and taken over off the path (a
//           pool); on the path: take one, pass its packet socket and
//           description over a unix socket (SCM_RIGHTS, as `seedsc fork
//           --netns` hands them to the seed), receive them, then "stack".
//   create  the namespace and veth made on the path: a new network
//           namespace, a veth pair, addresses (runsc/do_network.h), the
//           takeover (packet socket, the host's address removed:
//           net_takeover.h), then "stack". In a forked child per
//           iteration (a namespace change is per thread and one-way),
//           timed inside the child; the kernel's teardown after the child
//           exits is not counted.
//
// Runs in a network namespace of its own (root): every veth and host end
// is made and removed in it, and nothing is sent. Prints p50/p90/p99 in
// microseconds per mode and the ratio create/pooled.
//
//   veth_attach_bench [--iters N] [--create-iters N] [--pool K]
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runsc/do_network.h"
#include "sentry/socket/net_service.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor {
namespace {

using sentry::HostInterface;
using sentry::NetService;
using sentry::TakenInterface;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "veth_attach_bench: %s\n", what.c_str());
  exit(1);
}

// A namespace of the bench's own (the thread moves; the bench has no other).
void OwnNamespace() {
  if (unshare(CLONE_NEWNET) != 0) Die(std::string("unshare(CLONE_NEWNET): ") + strerror(errno));
}

// A new namespace with a veth whose guest end is taken over: what a pool
// makes off the path. In the calling thread (which stays there). The
// subnet is 10.<201 + n / 250>.<n % 250>.0/24.
TakenInterface MakeAndTakeOver(int n) {
  runsc::SandboxAddrs a;
  a.guest = (10u << 24) | (uint32_t(201 + n / 250) << 16) | (uint32_t(n % 250) << 8) | 2;
  a.host = (a.guest & ~0xffu) | 1;
  absl::Status s = runsc::MakeSandboxNetwork(a, getpid());
  if (!s.ok()) Die(std::string(s.message()));
  auto taken = sentry::TakeOverInterfaces();
  if (!taken.ok()) Die(std::string(taken.status().message()));
  if (taken->size() != 1) {
    Die("the new namespace has " + std::to_string(taken->size()) + " interfaces");
  }
  return (*taken)[0];
}

// A seed-like service: a NIC on a socketpair end, its address and route,
// and listeners a function's seed may hold (returned: they must live on).
std::vector<std::shared_ptr<netstack::TcpEndpoint>> MakeSeed(NetService& net, int fake_link_fd) {
  HostInterface i;
  i.name = "eth0";
  i.mac = {0x02, 0, 0, 0, 0, 1};
  i.addr = netstack::MakeIp4(10, 200, 0, 2);
  i.prefix_len = 24;
  i.gateway = netstack::MakeIp4(10, 200, 0, 1);
  absl::Status s = net.AttachDevice(fake_link_fd, i);
  if (!s.ok()) Die(std::string(s.message()));
  std::vector<std::shared_ptr<netstack::TcpEndpoint>> listeners;
  for (uint16_t p = 8000; p < 8016; ++p) {
    auto ep = net.stack().NewTcp();
    if (!ep->Bind({netstack::IpAddr(netstack::Ip4{}), p}).ok() || !ep->Listen(16).ok()) {
      Die("a listener of the seed");
    }
    listeners.push_back(ep);
  }
  return listeners;
}

// The fork's per-instance part with `dev` (whose fd it takes).
void Attach(NetService& net, const TakenInterface& dev) {
  net.ResetInForkChild();
  absl::Status s = net.ReplaceDevicesInForkChild(&dev);
  if (!s.ok()) Die(std::string(s.message()));
}

// A device's description, as bytes over a unix socket.
struct Wire {
  char name[16];
  int index;
  netstack::MacAddr mac;
  uint32_t mtu;
  netstack::Ip4 addr, gateway;
  int prefix_len;
};

// A message of one iovec with room for one fd.
struct FdMsg {
  explicit FdMsg(iovec* iov) {
    mh.msg_iov = iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
  }
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
};

// `dev`'s description and packet socket over `sock` (SCM_RIGHTS).
void SendDev(int sock, const TakenInterface& dev) {
  const HostInterface& info = dev.info;
  Wire w{};
  snprintf(w.name, sizeof w.name, "%s", info.name.c_str());
  w.index = info.index;
  w.mac = info.mac;
  w.mtu = info.mtu;
  w.addr = info.addr;
  w.gateway = info.gateway;
  w.prefix_len = info.prefix_len;
  iovec iov{&w, sizeof w};
  FdMsg m(&iov);
  cmsghdr* c = CMSG_FIRSTHDR(&m.mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &dev.packet_fd, sizeof(int));
  if (sendmsg(sock, &m.mh, 0) != ssize_t(sizeof w)) Die("sendmsg");
}

TakenInterface RecvDev(int sock) {
  Wire r{};
  iovec iov{&r, sizeof r};
  FdMsg m(&iov);
  if (recvmsg(sock, &m.mh, MSG_CMSG_CLOEXEC) != ssize_t(sizeof r)) Die("recvmsg");
  cmsghdr* c = CMSG_FIRSTHDR(&m.mh);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) Die("no fd came with the description");
  TakenInterface out;
  memcpy(&out.packet_fd, CMSG_DATA(c), sizeof(int));
  out.info.name = r.name;
  out.info.index = r.index;
  out.info.mac = r.mac;
  out.info.mtu = r.mtu;
  out.info.addr = r.addr;
  out.info.gateway = r.gateway;
  out.info.prefix_len = r.prefix_len;
  return out;
}

void Print(const char* mode, std::vector<double> us, const char* note) {
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, size_t(p * us.size()))]; };
  printf("%-7s n=%-5zu p50 %9.1f  p90 %9.1f  p99 %9.1f us   %s\n", mode, us.size(), pct(0.5),
         pct(0.9), pct(0.99), note);
}

double P50(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

int Main(int argc, char** argv) {
  int iters = 2000, create_iters = 100, pool = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    int v = atoi(argv[i + 1]);
    if (f == "--iters") {
      iters = v;
    } else if (f == "--create-iters") {
      create_iters = v;
    } else if (f == "--pool") {
      pool = v;
    } else {
      Die("unknown flag " + f);
    }
  }
  if (iters < 1 || create_iters < 1 || pool < 1) Die("--iters, --create-iters, --pool: >= 1");
  OwnNamespace();
  int fake[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fake) != 0) Die("socketpair");
  NetService net;
  auto listeners = MakeSeed(net, fake[0]);

  // The pool: made serially, each in a child that hands back its packet
  // socket (which keeps its namespace and veth alive) and exits.
  std::vector<TakenInterface> pool_devs;
  int64_t fill0 = NowNs();
  for (int k = 0; k < pool; ++k) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) != 0) Die("socketpair");
    pid_t c = fork();
    if (c < 0) Die("fork");
    if (c == 0) {
      SendDev(sp[1], MakeAndTakeOver(k));
      _exit(0);
    }
    pool_devs.push_back(RecvDev(sp[0]));
    waitpid(c, nullptr, 0);
    close(sp[0]);
    close(sp[1]);
  }
  double fill_ms = double(NowNs() - fill0) / 1e6;

  int link[2];  // the seed's end and the fork's, as `seedsc fork --netns` passes them
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, link) != 0) Die("socketpair");
  std::vector<double> stack_us, pooled_us, create_us;
  // Interleaved rounds, so that drift on a shared machine hits both alike.
  for (int i = 0; i < iters; ++i) {
    const TakenInterface& dev = pool_devs[size_t(i) % pool_devs.size()];
    TakenInterface own = dev;
    own.packet_fd = dup(dev.packet_fd);  // Attach takes the fd; the pool keeps its own
    int64_t t0 = NowNs();
    Attach(net, own);
    stack_us.push_back(double(NowNs() - t0) / 1e3);
    t0 = NowNs();
    SendDev(link[0], dev);
    TakenInterface got = RecvDev(link[1]);
    Attach(net, got);
    pooled_us.push_back(double(NowNs() - t0) / 1e3);
  }
  for (int i = 0; i < create_iters; ++i) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe");
    pid_t c = fork();
    if (c < 0) Die("fork");
    if (c == 0) {  // a forked sentry: the seed's stack, copied
      int64_t t0 = NowNs();
      TakenInterface t = MakeAndTakeOver(pool + i);
      Attach(net, t);
      double us = double(NowNs() - t0) / 1e3;
      if (write(p[1], &us, sizeof us) != sizeof us) _exit(1);
      _exit(0);
    }
    double us = -1;
    if (read(p[0], &us, sizeof us) != sizeof us) Die("a create child failed");
    waitpid(c, nullptr, 0);
    close(p[0]);
    close(p[1]);
    create_us.push_back(us);
  }
  printf("pool of %d filled serially in %.1f ms (%.2f ms each)\n", pool, fill_ms, fill_ms / pool);
  Print("stack", stack_us, "per-instance stack part (issue target <= 20 us)");
  Print("pooled", pooled_us, "take a pooled veth + pass its socket + stack (target <= 200 us)");
  Print("create", create_us, "netns + veth + takeover on the path + stack");
  printf("create/pooled p50: %.1fx\n", P50(create_us) / P50(pooled_us));
  return 0;
}

}  // namespace
}  // namespace seedvisor

int main(int argc, char** argv) { return seedvisor::Main(argc, argv); }
