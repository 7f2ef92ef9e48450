#include "sentry/socket/if_ioctl.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/host_socket.h"
#include "sentry/socket/net_service.h"

namespace seedvisor::sentry {

namespace {

void SetInet(sockaddr* sa, uint32_t host_order) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(host_order);
  memcpy(sa, &in, sizeof(in));
}

// dev_ifconf() + inet_gifconf(): one struct ifreq per IPv4 address, in
// interface order. `*total` is what the list needs (a null buffer) or
// what fit of it in whole entries.
void ViewIfconf(const NetView& view, bool counting, int len, std::string* out, int* total) {
  const int size = sizeof(ifreq);
  *total = 0;
  for (const NetInterface& i : view.interfaces) {
    for (const netstack::AddrPrefix& a : i.v4) {
      if (counting) {
        *total += size;
        continue;
      }
      if (len - *total < size) return;
      ifreq r{};
      strncpy(r.ifr_name, i.name.c_str(), IFNAMSIZ - 1);
      SetInet(&r.ifr_addr, a.addr.v4().v);
      out->append(reinterpret_cast<const char*>(&r), sizeof(r));
      *total += size;
    }
  }
}

Result<long> ViewIoctl(const NetView& view, Task& t, unsigned long cmd, UserAddr arg) {
  ifreq r;
  SV_TRY(t.CopyIn(arg, &r, sizeof(r)));
  if (cmd == SIOCGIFNAME) {
    const NetInterface* i = view.Find(r.ifr_ifindex);
    if (!i) return Errno(ENODEV);
    memset(r.ifr_name, 0, sizeof(r.ifr_name));
    strncpy(r.ifr_name, i->name.c_str(), IFNAMSIZ - 1);
    SV_TRY(t.CopyOut(arg, &r, sizeof(r)));
    return 0L;
  }
  r.ifr_name[IFNAMSIZ - 1] = '\0';
  const NetInterface* i = view.Find(std::string_view(r.ifr_name));
  if (!i) return Errno(ENODEV);
  // devinet_ioctl(): the interface's first IPv4 address answers; none is
  // EADDRNOTAVAIL.
  if (IsInetInterfaceIoctl(cmd) && i->v4.empty()) return Errno(EADDRNOTAVAIL);
  switch (cmd) {
    case SIOCGIFINDEX: r.ifr_ifindex = i->index; break;
    // ifr_flags is a short: IFF_LOWER_UP and up do not fit (dev_ifsioc_locked()).
    case SIOCGIFFLAGS: r.ifr_flags = static_cast<short>(i->flags() & 0xffff); break;
    case SIOCGIFMETRIC: r.ifr_metric = 0; break;
    case SIOCGIFMTU: r.ifr_mtu = static_cast<int>(i->mtu); break;
    case SIOCGIFTXQLEN: r.ifr_qlen = 1000; break;
    case SIOCGIFADDR: SetInet(&r.ifr_addr, i->v4[0].addr.v4().v); break;
    case SIOCGIFNETMASK:
      SetInet(&r.ifr_netmask,
              i->v4[0].prefix_len == 0 ? 0 : ~(0xffffffffu >> i->v4[0].prefix_len));
      break;
    // ifa_broadcast: 0.0.0.0 unless the address was given one.
    case SIOCGIFBRDADDR: SetInet(&r.ifr_broadaddr, i->v4[0].brd.v); break;
    // ifa_address: the peer of a point-to-point link, else the local
    // address itself (lo answers 127.0.0.1).
    case SIOCGIFDSTADDR: SetInet(&r.ifr_dstaddr, i->v4[0].addr.v4().v); break;
    case SIOCGIFHWADDR:
      memset(&r.ifr_hwaddr, 0, sizeof(r.ifr_hwaddr));
      r.ifr_hwaddr.sa_family = i->arp_type();
      memcpy(r.ifr_hwaddr.sa_data, i->mac.data(), i->mac.size());
      break;
    default: return Errno(ENOTTY);
  }
  SV_TRY(t.CopyOut(arg, &r, sizeof(r)));
  return 0L;
}

// --network=host: the host answers, on a host socket of the sentry's own
// (the sentry's policy allows exactly these read-only requests).
Result<long> HostIoctl(Task& t, unsigned long cmd, UserAddr arg) {
  SV_ASSIGN_OR_RETURN(int fd, NewHostSocket(AF_INET, SOCK_DGRAM, 0, /*host_network=*/true));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (cmd != SIOCGIFCONF) {
    ifreq r;
    SV_TRY(t.CopyIn(arg, &r, sizeof(r)));
    if (ioctl(fd, cmd, &r) != 0) return Errno(errno);
    SV_TRY(t.CopyOut(arg, &r, sizeof(r)));
    return 0L;
  }
  ifconf c;
  SV_TRY(t.CopyIn(arg, &c, sizeof(c)));
  const UserAddr buf(reinterpret_cast<uint64_t>(c.ifc_buf));
  // The guest's buffer is its own; ours holds at most what the host has.
  constexpr int kMaxEntries = 1024;
  std::string scratch(static_cast<size_t>(std::clamp(c.ifc_len, 0, kMaxEntries *
                                                                        static_cast<int>(sizeof(ifreq)))),
                      '\0');
  ifconf h{};
  h.ifc_len = static_cast<int>(scratch.size());
  h.ifc_buf = buf.IsNull() ? nullptr : scratch.data();
  if (ioctl(fd, SIOCGIFCONF, &h) != 0) return Errno(errno);
  if (!buf.IsNull() && h.ifc_len > 0) SV_TRY(t.CopyOut(buf, scratch.data(), h.ifc_len));
  c.ifc_len = h.ifc_len;
  SV_TRY(t.CopyOut(arg, &c.ifc_len, sizeof(c.ifc_len)));
  return 0L;
}

}  // namespace

bool IsDeviceIoctl(unsigned long cmd) {
  switch (cmd) {
    case SIOCGIFCONF:
    case SIOCGIFINDEX:
    case SIOCGIFNAME:
    case SIOCGIFFLAGS:
    case SIOCGIFMETRIC:
    case SIOCGIFMTU:
    case SIOCGIFTXQLEN:
    case SIOCGIFHWADDR:
      return true;
    default:
      return false;
  }
}

bool IsInetInterfaceIoctl(unsigned long cmd) {
  switch (cmd) {
    case SIOCGIFADDR:
    case SIOCGIFNETMASK:
    case SIOCGIFBRDADDR:
    case SIOCGIFDSTADDR:
      return true;
    default:
      return false;
  }
}

bool IsInterfaceSetIoctl(unsigned long cmd) {
  switch (cmd) {
    case SIOCSIFFLAGS: case SIOCSIFMETRIC: case SIOCSIFMTU: case SIOCSIFHWADDR:
    case SIOCSIFSLAVE: case SIOCADDMULTI: case SIOCDELMULTI: case SIOCSIFHWBROADCAST:
    case SIOCSIFMAP: case SIOCSIFNAME: case SIOCSIFTXQLEN: case SIOCSIFADDR:
    case SIOCSIFBRDADDR: case SIOCSIFNETMASK: case SIOCSIFDSTADDR: case SIOCSIFPFLAGS:
    case SIOCDIFADDR: case SIOCADDRT: case SIOCDELRT: case SIOCSARP: case SIOCDARP:
    case SIOCSIFLINK: case SIOCSIFENCAP: case SIOCSIFBR:
      return true;
    // linux/sockios.h: SIOCSMIIREG, SIOCWANDEV, SIOCADDDLCI, SIOCDELDLCI,
    // SIOCSIFVLAN, SIOCBRADDBR, SIOCBRDELBR, SIOCBRADDIF, SIOCBRDELIF,
    // SIOCSHWTSTAMP (glibc's headers lack them).
    case 0x8949: case 0x894A: case 0x8980: case 0x8981: case 0x8983:
    case 0x89a0: case 0x89a1: case 0x89a2: case 0x89a3: case 0x89b0:
      return true;
    default:
      return false;
  }
}

NetView SandboxNetView(Kernel& k) {
  NetService* net = k.net();
  return net ? StackView(net->stack()) : LoopbackOnlyView();
}

Result<long> InterfaceIoctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (!IsDeviceIoctl(cmd) && !IsInetInterfaceIoctl(cmd)) return Errno(ENOTTY);
  if (t.kernel().options().network == "host") return HostIoctl(t, cmd, arg);
  const NetView view = SandboxNetView(t.kernel());
  if (cmd != SIOCGIFCONF) return ViewIoctl(view, t, cmd, arg);
  ifconf c;
  SV_TRY(t.CopyIn(arg, &c, sizeof(c)));
  const UserAddr buf(reinterpret_cast<uint64_t>(c.ifc_buf));
  std::string entries;
  int total = 0;
  ViewIfconf(view, buf.IsNull(), c.ifc_len, &entries, &total);
  if (!entries.empty()) SV_TRY(t.CopyOut(buf, entries.data(), entries.size()));
  SV_TRY(t.CopyOut(arg, &total, sizeof(total)));
  return 0L;
}

}  // namespace seedvisor::sentry
