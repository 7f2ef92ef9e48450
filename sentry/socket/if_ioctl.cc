#include "sentry/socket/if_ioctl.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

void SetInet(sockaddr* sa, uint32_t host_order) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(host_order);
  memcpy(sa, &in, sizeof(in));
}

}  // namespace

bool IsInterfaceIoctl(unsigned long cmd) {
  switch (cmd) {
    case SIOCGIFINDEX:
    case SIOCGIFNAME:
    case SIOCGIFFLAGS:
    case SIOCGIFMTU:
    case SIOCGIFTXQLEN:
    case SIOCGIFADDR:
    case SIOCGIFNETMASK:
    case SIOCGIFHWADDR:
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

Result<long> InterfaceIoctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (t.kernel().options().network == "host") return Errno(ENOTTY);
  ifreq r;
  SV_TRY(t.CopyIn(arg, &r, sizeof(r)));
  if (cmd == SIOCGIFNAME) {
    if (r.ifr_ifindex != 1) return Errno(ENODEV);
    memset(r.ifr_name, 0, sizeof(r.ifr_name));
    memcpy(r.ifr_name, "lo", 2);
  } else {
    r.ifr_name[IFNAMSIZ - 1] = '\0';
    if (strcmp(r.ifr_name, "lo") != 0) return Errno(ENODEV);
    switch (cmd) {
      case SIOCGIFINDEX: r.ifr_ifindex = 1; break;
      case SIOCGIFFLAGS: r.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING; break;
      case SIOCGIFMTU: r.ifr_mtu = 65536; break;
      case SIOCGIFTXQLEN: r.ifr_qlen = 1000; break;
      case SIOCGIFADDR: SetInet(&r.ifr_addr, INADDR_LOOPBACK); break;
      case SIOCGIFNETMASK: SetInet(&r.ifr_netmask, 0xff000000u); break;
      case SIOCGIFHWADDR:
        memset(&r.ifr_hwaddr, 0, sizeof(r.ifr_hwaddr));
        r.ifr_hwaddr.sa_family = ARPHRD_LOOPBACK;
        break;
      default: return Errno(ENOTTY);
    }
  }
  SV_TRY(t.CopyOut(arg, &r, sizeof(r)));
  return 0L;
}

}  // namespace seedvisor::sentry
