#include "sentry/socket/net_takeover.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "sentry/base/log.h"

namespace seedvisor::sentry {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

// The default route's gateway per interface name, from /proc/net/route
// (host byte order there is little-endian hex of the network-order value).
netstack::Ip4 DefaultGateway(const std::string& ifname) {
  std::ifstream f("/proc/net/route");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string name, dst, gw;
    if (!(in >> name >> dst >> gw)) continue;
    if (name != ifname || dst != "00000000") continue;
    uint32_t g = uint32_t(strtoul(gw.c_str(), nullptr, 16));
    return netstack::Ip4{ntohl(g)};
  }
  return {};
}

netstack::IpAddr ParseHex16(const std::string& hex) {
  netstack::IpAddr a;
  for (int i = 0; i < 16 && size_t(2 * i + 1) < hex.size(); ++i) {
    a.b[i] = uint8_t(strtoul(hex.substr(2 * i, 2).c_str(), nullptr, 16));
  }
  return a;
}

// The IPv6 addresses of interface `index` (if6_seq_show()'s format:
// address, ifindex, prefix length, scope, flags, name), without those whose
// duplicate address detection failed (IFA_F_DADFAILED).
std::vector<netstack::AddrPrefix> Ip6Addresses(int index) {
  std::ifstream f("/proc/net/if_inet6");
  std::vector<netstack::AddrPrefix> out;
  std::string addr, idx, plen, scope, flags, name;
  while (f >> addr >> idx >> plen >> scope >> flags >> name) {
    if (int(strtoul(idx.c_str(), nullptr, 16)) != index) continue;
    if (strtoul(flags.c_str(), nullptr, 16) & 0x08) continue;
    out.push_back({ParseHex16(addr), int(strtoul(plen.c_str(), nullptr, 16))});
  }
  return out;
}

// The IPv6 default route's next hop through `ifname` (/proc/net/ipv6_route:
// destination, its length, source, its length, next hop, metric, refcount,
// use, flags, device).
netstack::IpAddr DefaultGateway6(const std::string& ifname) {
  std::ifstream f("/proc/net/ipv6_route");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string dst, dlen, src, slen, hop, metric, ref, use, flags, dev;
    if (!(in >> dst >> dlen >> src >> slen >> hop >> metric >> ref >> use >> flags >> dev)) continue;
    if (dev != ifname || dlen != "00" || !ParseHex16(dst).zero()) continue;
    netstack::IpAddr g = ParseHex16(hop);
    if (!g.zero()) return g;
  }
  return {};
}

}  // namespace

absl::StatusOr<std::vector<HostInterface>> ListHostInterfaces() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return Errno("listing interfaces: socket");
  std::vector<HostInterface> out;
  struct if_nameindex* names = if_nameindex();
  if (names == nullptr) {
    close(s);
    return Errno("listing interfaces: if_nameindex");
  }
  for (struct if_nameindex* n = names; n->if_index != 0; ++n) {
    ifreq r{};
    strncpy(r.ifr_name, n->if_name, IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFHWADDR, &r) != 0 || r.ifr_hwaddr.sa_family != ARPHRD_ETHER) continue;
    HostInterface i;
    i.name = n->if_name;
    i.index = int(n->if_index);
    memcpy(i.mac.data(), r.ifr_hwaddr.sa_data, 6);
    if (ioctl(s, SIOCGIFMTU, &r) == 0) i.mtu = uint32_t(r.ifr_mtu);
    i.v6 = Ip6Addresses(i.index);
    i.gateway6 = DefaultGateway6(i.name);
    if (ioctl(s, SIOCGIFADDR, &r) != 0) {  // no IPv4 address
      if (!i.v6.empty()) out.push_back(i);
      continue;  // no address at all: not ours to take
    }
    i.addr = netstack::Ip4{ntohl(reinterpret_cast<sockaddr_in*>(&r.ifr_addr)->sin_addr.s_addr)};
    if (ioctl(s, SIOCGIFNETMASK, &r) == 0) {
      uint32_t m = ntohl(reinterpret_cast<sockaddr_in*>(&r.ifr_netmask)->sin_addr.s_addr);
      i.prefix_len = __builtin_popcount(m);
    }
    if (ioctl(s, SIOCGIFBRDADDR, &r) == 0) {
      i.broadcast =
          netstack::Ip4{ntohl(reinterpret_cast<sockaddr_in*>(&r.ifr_broadaddr)->sin_addr.s_addr)};
    }
    i.gateway = DefaultGateway(i.name);
    out.push_back(i);
  }
  if_freenameindex(names);
  close(s);
  return out;
}

absl::StatusOr<int> OpenPacketSocket(int ifindex) {
  // Protocol 0: nothing comes in before bind(), so no frame is queued
  // without the header PACKET_VNET_HDR adds.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("opening the packet socket");
  sockaddr_ll a{};
  a.sll_family = AF_PACKET;
  a.sll_protocol = htons(ETH_P_ALL);
  a.sll_ifindex = ifindex;
  // PACKET_AUXDATA: says which frames carry no transport checksum yet.
  int one = 1;
  // PACKET_VNET_HDR: a virtio_net_hdr before every frame, so that TCP can
  // hand the host 64 KiB segments to cut and leave it the checksums (and
  // learns which frames the host checked). Without it (a kernel that
  // refuses it) the link sends single segments (NetService::PacketLink).
  (void)setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one);
  // Our own transmissions are not read back (Linux 4.20; before, the
  // reader skips them: PACKET_OUTGOING).
  (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  // Room for bursts while the device thread is away (a loaded host): the
  // default 208 KiB holds three 64 KiB frames of the host's GSO, and
  // every frame past it is dropped and resent by the peer. FORCE needs
  // CAP_NET_ADMIN, which a takeover has; else what rmem_max allows.
  int rcvbuf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    absl::Status st = Errno(absl::StrCat("binding the packet socket to interface ", ifindex));
    close(fd);
    return st;
  }
  return fd;
}

namespace {

// Not fatal: where /proc/sys cannot be written (mounted read-only, as
// container runtimes do) the sandbox still serves the interface; the
// host's kernel then keeps its IPv6 addresses there and may answer for
// them too (neighbour advertisements, RSTs), which one warning line says.
void DisableHostIp6(const HostInterface& i) {
  std::string path = "/proc/sys/net/ipv6/conf/" + i.name + "/disable_ipv6";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else {
    if (write(fd, "1\n", 2) != 2) err = errno;
    close(fd);
  }
  if (err != 0) {
    Log::Warning("network: %s: cannot turn the host's IPv6 off (%s: %s); its kernel keeps the "
                 "interface's IPv6 addresses and may answer for them too",
                 i.name, path, strerror(err));
  }
}

absl::Status RemoveHostAddress4(const HostInterface& i);

}  // namespace

absl::Status RemoveHostAddress(const HostInterface& i) {
  if (!i.v6.empty()) DisableHostIp6(i);
  if (i.addr.any()) return absl::OkStatus();
  return RemoveHostAddress4(i);
}

namespace {

absl::Status RemoveHostAddress4(const HostInterface& i) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return Errno("netlink socket");
  struct {
    nlmsghdr h;
    ifaddrmsg a;
    char attrs[64];
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  req.h.nlmsg_type = RTM_DELADDR;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.a.ifa_family = AF_INET;
  req.a.ifa_prefixlen = uint8_t(i.prefix_len);
  req.a.ifa_index = uint32_t(i.index);
  uint32_t be = htonl(i.addr.v);
  for (unsigned short type : {IFA_LOCAL, IFA_ADDRESS}) {
    rtattr* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.h.nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(sizeof be);
    memcpy(RTA_DATA(rta), &be, sizeof be);
    req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }
  sockaddr_nl k{};
  k.nl_family = AF_NETLINK;
  if (sendto(s, &req, req.h.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&k), sizeof k) < 0) {
    absl::Status st = Errno("netlink RTM_DELADDR");
    close(s);
    return st;
  }
  char buf[4096];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  close(s);
  if (n < ssize_t(NLMSG_LENGTH(sizeof(nlmsgerr)))) return Errno("netlink RTM_DELADDR reply");
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (h->nlmsg_type == NLMSG_ERROR) {
    int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
    if (err != 0) {
      return absl::InternalError(absl::StrCat("removing ", netstack::FormatIp4(i.addr), " from ",
                                              i.name, ": ", strerror(err)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TakenInterface>> TakeOverInterfaces() {
  absl::StatusOr<std::vector<HostInterface>> ifs = ListHostInterfaces();
  if (!ifs.ok()) return ifs.status();
  std::vector<TakenInterface> out;
  auto fail = [&out](absl::Status s) {
    for (TakenInterface& t : out) close(t.packet_fd);
    return s;
  };
  for (const HostInterface& i : *ifs) {
    absl::StatusOr<int> fd = OpenPacketSocket(i.index);
    if (!fd.ok()) return fail(fd.status());
    out.push_back({i, *fd});
    if (absl::Status s = RemoveHostAddress(i); !s.ok()) return fail(s);
  }
  return out;
}

}  // namespace seedvisor::sentry
