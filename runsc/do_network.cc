#include "runsc/do_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace seedvisor::runsc {
namespace {

constexpr char kGuestIf[] = "eth0";

absl::Status Err(const std::string& what, int err = errno) {
  return absl::InternalError(absl::StrCat("--network=sandbox: ", what, ": ", strerror(err)));
}

// A netlink request under construction, with nested attributes.
class Req {
 public:
  Req(uint16_t type, uint16_t flags) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    Put(&h, sizeof h);
  }
  void Put(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    buf_.resize(NLMSG_ALIGN(buf_.size()), '\0');
  }
  void Attr(uint16_t type, const void* p, size_t n) {
    rtattr a{static_cast<unsigned short>(RTA_LENGTH(n)), type};
    buf_.append(reinterpret_cast<char*>(&a), sizeof a);
    Put(p, n);
  }
  void Str(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  size_t Begin(uint16_t type) {
    size_t at = buf_.size();
    rtattr a{sizeof(rtattr), type};
    buf_.append(reinterpret_cast<char*>(&a), sizeof a);
    return at;
  }
  void End(size_t at) {
    unsigned short len = static_cast<unsigned short>(buf_.size() - at);
    memcpy(buf_.data() + at, &len, sizeof len);
  }
  std::string& Finish() {
    uint32_t len = static_cast<uint32_t>(buf_.size());
    memcpy(buf_.data(), &len, sizeof len);
    return buf_;
  }

 private:
  std::string buf_;
};

// Sends one request on `fd` and waits for its ack; the kernel's errno on
// failure (also in `*kernel_err`, when given).
absl::Status Talk(int fd, Req& r, const std::string& what, int* kernel_err = nullptr) {
  std::string& m = r.Finish();
  if (send(fd, m.data(), m.size(), 0) < 0) return Err(what);
  char buf[8192];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return Err(what);
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, size_t(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        if (kernel_err != nullptr) *kernel_err = err;
        return err == 0 ? absl::OkStatus() : Err(what, err);
      }
    }
  }
}

int NetlinkSocket() { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); }

// Sets `name` up, and gives it `addr`/`prefix_len` (its on-link route comes
// with it), through netlink socket `fd` of the interface's namespace.
absl::Status Configure(int fd, const std::string& name, uint32_t addr, int prefix_len) {
  Req up(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  up.Put(&ifi, sizeof ifi);
  up.Str(IFLA_IFNAME, name);
  if (absl::Status s = Talk(fd, up, "setting " + name + " up"); !s.ok()) return s;
  // Its index, asked of the same namespace.
  Req get(RTM_GETLINK, 0);
  ifinfomsg q{};
  get.Put(&q, sizeof q);
  get.Str(IFLA_IFNAME, name);
  std::string& m = get.Finish();
  // No NLM_F_ACK on a get: the reply is the link or an error.
  nlmsghdr* hdr = reinterpret_cast<nlmsghdr*>(m.data());
  hdr->nlmsg_flags = NLM_F_REQUEST;
  if (send(fd, m.data(), m.size(), 0) < 0) return Err("looking up " + name);
  char buf[8192];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < ssize_t(NLMSG_LENGTH(sizeof(ifinfomsg)))) return Err("looking up " + name);
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf);
  if (h->nlmsg_type == NLMSG_ERROR) {
    return Err("looking up " + name, -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error);
  }
  int index = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
  Req add(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefix_len);
  ifa.ifa_index = static_cast<uint32_t>(index);
  add.Put(&ifa, sizeof ifa);
  uint32_t be = htonl(addr);
  add.Attr(IFA_LOCAL, &be, sizeof be);
  add.Attr(IFA_ADDRESS, &be, sizeof be);
  uint32_t brd = htonl(addr | (0xffffffffu >> prefix_len));
  add.Attr(IFA_BROADCAST, &brd, sizeof brd);
  return Talk(fd, add, "adding an address to " + name);
}

}  // namespace

absl::StatusOr<SandboxAddrs> ParseSandboxIp(const std::string& ip) {
  std::vector<std::string> parts = absl::StrSplit(ip, '/');
  SandboxAddrs a;
  in_addr in{};
  if (parts.size() > 2 || inet_pton(AF_INET, parts[0].c_str(), &in) != 1 ||
      (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &a.prefix_len) || a.prefix_len < 8 ||
                             a.prefix_len > 30))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ip=", ip, ": want an IPv4 address, optionally with /8../30"));
  }
  a.guest = ntohl(in.s_addr);
  uint32_t host_bits = 0xffffffffu >> a.prefix_len;
  uint32_t net = a.guest & ~host_bits;
  if ((a.guest & host_bits) == 0 || (a.guest & host_bits) == host_bits) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ip=", ip, ": the subnet's network or broadcast address"));
  }
  a.host = net | ((a.guest & host_bits) == 1 ? 2 : 1);
  return a;
}

std::string HostEndName(pid_t pid) { return absl::StrCat("svd", pid); }

absl::Status MakeSandboxNetwork(const SandboxAddrs& a, pid_t pid) {
  return MakeSandboxNetwork(a, HostEndName(pid));
}

absl::Status MakeSandboxNetwork(const SandboxAddrs& a, const std::string& host_end) {
  // A netlink socket stays in the namespace it was made in: this one
  // configures the host end after the thread has left.
  int host_nl = NetlinkSocket();
  int host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  struct Closer {
    int a, b;
    ~Closer() {
      if (a >= 0) close(a);
      if (b >= 0) close(b);
    }
  } closer{host_nl, host_ns};
  if (host_nl < 0) return Err("netlink socket");
  if (host_ns < 0) return Err("opening the network namespace");
  if (unshare(CLONE_NEWNET) != 0) return Err("a new network namespace");
  int nl = NetlinkSocket();
  if (nl < 0) return Err("netlink socket");
  struct Close1 {
    int fd;
    ~Close1() { close(fd); }
  } close_nl{nl};
  Req mk(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  mk.Put(&ifi, sizeof ifi);
  mk.Str(IFLA_IFNAME, kGuestIf);
  size_t info = mk.Begin(IFLA_LINKINFO);
  mk.Str(IFLA_INFO_KIND, "veth");
  size_t data = mk.Begin(IFLA_INFO_DATA);
  size_t peer = mk.Begin(VETH_INFO_PEER);
  ifinfomsg pi{};
  pi.ifi_family = AF_UNSPEC;
  mk.Put(&pi, sizeof pi);
  mk.Str(IFLA_IFNAME, host_end);
  mk.U32(IFLA_NET_NS_FD, uint32_t(host_ns));
  mk.End(peer);
  mk.End(data);
  mk.End(info);
  if (absl::Status s = Talk(nl, mk, "creating the veth pair " + host_end); !s.ok()) return s;
  absl::Status s = Configure(host_nl, host_end, a.host, a.prefix_len);
  if (s.ok()) s = Configure(nl, kGuestIf, a.guest, a.prefix_len);
  // Nothing half made is left: the pair goes now, not whenever the kernel
  // tears the namespace down (its host end's name would stay taken).
  if (!s.ok()) DeleteLink(kGuestIf).IgnoreError();
  return s;
}

absl::Status DeleteLink(const std::string& name) {
  int fd = NetlinkSocket();
  if (fd < 0) return Err("netlink socket");
  Req del(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  del.Put(&ifi, sizeof ifi);
  del.Str(IFLA_IFNAME, name);
  int err = 0;
  absl::Status s = Talk(fd, del, "deleting " + name, &err);
  close(fd);
  return err == ENODEV ? absl::OkStatus() : s;  // gone already
}

}  // namespace seedvisor::runsc
