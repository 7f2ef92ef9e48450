#include "sentry/socket/net_proc.h"

#include <arpa/inet.h>
#include <linux/route.h>
#include <linux/rtnetlink.h>

#include <cinttypes>
#include <cstdio>

namespace seedvisor::sentry {
namespace {

// "%08X" of an address as the kernel prints a __be32: its bytes in
// network order read as a little-endian number.
uint32_t Be(netstack::Ip4 a) { return htonl(a.v); }
uint32_t Be(const netstack::IpAddr& a) { return a.is_v4() ? Be(a.v4()) : 0; }

// "%08X%08X%08X%08X" of an in6_addr's four __be32 words, as tcp6_seq_show().
std::string Hex6(const netstack::IpAddr& a) {
  char buf[40];
  uint32_t w[4];
  for (int i = 0; i < 4; ++i) {
    w[i] = uint32_t(a.b[4 * i]) | uint32_t(a.b[4 * i + 1]) << 8 | uint32_t(a.b[4 * i + 2]) << 16 |
           uint32_t(a.b[4 * i + 3]) << 24;
  }
  snprintf(buf, sizeof(buf), "%08X%08X%08X%08X", w[0], w[1], w[2], w[3]);
  return buf;
}

uint32_t Mask(int prefix_len) {
  return prefix_len == 0 ? 0 : htonl(~(0xffffffffu >> prefix_len));
}

// seq_setwidth() + seq_pad(): a line padded with spaces to `width`.
void PadLine(std::string* out, const char* line, size_t width) {
  std::string l(line);
  if (l.size() < width) l.resize(width, ' ');
  *out += l;
  *out += '\n';
}

// The row both TCP and UDP share up to the inode (tcp4_seq_show() adds
// its timers, UDP a drop count after it).
std::string SockRow(int slot, int slot_width, const netstack::SocketInfo& s) {
  char buf[256];
  snprintf(buf, sizeof(buf),
           "%*d: %08X:%04X %08X:%04X %02X %08" PRIX64 ":%08" PRIX64 " %02X:%08lX %08X %5u %8d %" PRIu64,
           slot_width, slot, Be(s.local.ip), s.local.port, Be(s.remote.ip), s.remote.port, s.state,
           s.tx_queue, s.rx_queue, 0, 0ul, 0, s.uid, 0, s.ino);
  return buf;
}

std::string SockRow6(int slot, int slot_width, const netstack::SocketInfo& s) {
  netstack::IpAddr local = s.local.ip.any() ? netstack::IpAddr{} : s.local.ip;
  netstack::IpAddr remote = s.remote.ip.any() ? netstack::IpAddr{} : s.remote.ip;
  char buf[320];
  snprintf(buf, sizeof(buf),
           "%*d: %s:%04X %s:%04X %02X %08" PRIX64 ":%08" PRIX64 " %02X:%08lX %08X %5u %8d %" PRIu64,
           slot_width, slot, Hex6(local).c_str(), s.local.port, Hex6(remote).c_str(),
           s.remote.port, s.state, s.tx_queue, s.rx_queue, 0, 0ul, 0, s.uid, 0, s.ino);
  return buf;
}

// tcp4_seq_show()'s fields after the inode: refcount, pointer (hidden:
// %pK), rto, ato, quick/pingpong, cwnd and ssthresh. ato and
// quick/pingpong stay 0 (no delayed ACKs yet); a listener's last field is
// its fastopen queue length (0).
std::string TcpTail(const netstack::SocketInfo& s) {
  char tail[96];
  snprintf(tail, sizeof(tail), " 1 0000000000000000 %" PRId64 " 0 0 %u %" PRId64,
           s.rto_ns / 10'000'000, s.cwnd, s.state == 10 ? 0 : s.ssthresh);
  return tail;
}

constexpr char kHeader6[] =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

}  // namespace

std::string ProcNetDev(const NetView& view) {
  std::string out =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n";
  for (const NetInterface& i : view.interfaces) {
    char buf[512];
    snprintf(buf, sizeof(buf),
             "%6s:%8" PRIu64 " %7" PRIu64 " %4d %4d %4d %5d %10d %9d %8" PRIu64 " %7" PRIu64
             " %4d %4d %4d %5d %7d %10d\n",
             i.name.c_str(), i.rx_bytes, i.rx_packets, 0, 0, 0, 0, 0, 0, i.tx_bytes, i.tx_packets,
             0, 0, 0, 0, 0, 0);
    out += buf;
  }
  return out;
}

std::string ProcNetRoute(const NetView& view) {
  std::string out;
  PadLine(&out, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
          127);
  for (const NetRoute& r : view.routes) {
    if (r.table != RT_TABLE_MAIN || r.type != RTN_UNICAST) continue;
    const NetInterface* i = view.Find(r.index);
    if (!i) continue;
    unsigned flags = RTF_UP | (r.gateway.any() ? 0 : RTF_GATEWAY);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s\t%08X\t%08X\t%04X\t%d\t%u\t%d\t%08X\t%d\t%u\t%u",
             i->name.c_str(), Be(r.dst.addr), Be(r.gateway), flags, 0, 0u, 0,
             Mask(r.dst.prefix_len), 0, 0u, 0u);
    PadLine(&out, buf, 127);
  }
  return out;
}

std::string ProcNetTcp(const std::vector<netstack::SocketInfo>& sockets) {
  std::string out;
  PadLine(&out,
          "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode",
          149);
  int slot = 0;
  for (const netstack::SocketInfo& s : sockets) {
    if (s.v6) continue;
    std::string row = SockRow(slot++, 4, s) + TcpTail(s);
    PadLine(&out, row.c_str(), 149);
  }
  return out;
}

std::string ProcNetTcp6(const std::vector<netstack::SocketInfo>& sockets) {
  std::string out = std::string(kHeader6) + "\n";  // not padded (tcp6_seq_show())
  int slot = 0;
  for (const netstack::SocketInfo& s : sockets) {
    if (s.v6) out += SockRow6(slot++, 4, s) + TcpTail(s) + "\n";
  }
  return out;
}

std::string ProcNetUdp6(const std::vector<netstack::SocketInfo>& sockets) {
  std::string out = std::string(kHeader6) + " ref pointer drops\n";
  int slot = 0;
  for (const netstack::SocketInfo& s : sockets) {
    if (s.v6) out += SockRow6(slot++, 5, s) + " 2 0000000000000000 0\n";
  }
  return out;
}

std::string ProcNetIfInet6(const NetView& view) {
  // if6_seq_show(): address, ifindex, prefix length, scope (IFA_HOST 0x10,
  // IFA_LINK 0x20, global 0), flags (IFA_F_PERMANENT 0x80), name.
  std::string out;
  auto row = [&](const netstack::IpAddr& a, const NetInterface& i, int len, int scope) {
    char buf[128];
    std::string hex;
    for (uint8_t b : a.b) {
      char h[3];
      snprintf(h, sizeof(h), "%02x", b);
      hex += h;
    }
    snprintf(buf, sizeof(buf), "%s %02x %02x %02x %02x %8s\n", hex.c_str(), i.index, len, scope,
             0x80, i.name.c_str());
    out += buf;
  };
  for (const NetInterface& i : view.interfaces) {
    if (i.v6_loopback) row(netstack::kIp6Loopback, i, 128, 0x10);
    for (const netstack::AddrPrefix& a : i.v6) row(a.addr, i, a.prefix_len, a.addr.link_local() ? 0x20 : 0);
  }
  return out;
}

std::string ProcNetIpv6Route(const NetView& view) {
  // ipv6_route_native_seq_show(): destination, its length, source (none
  // here), its length, next hop, metric, refcount, use, flags, device; the
  // tables in order, then the null entry the fib6 walk ends with.
  std::string out;
  auto hex = [](const netstack::IpAddr& a) {
    std::string h;
    for (uint8_t b : a.b) {
      char x[3];
      snprintf(x, sizeof(x), "%02x", b);
      h += x;
    }
    return h;
  };
  auto row = [&](const netstack::IpAddr& dst, int len, const netstack::IpAddr& hop,
                 uint32_t metric, uint32_t flags, const std::string& dev) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s %02x %s %02x %s %08x %08x %08x %08x %8s\n", hex(dst).c_str(),
             len, hex(netstack::kIp6Any).c_str(), 0, hex(hop).c_str(), metric, 1u, 0u, flags,
             dev.c_str());
    out += buf;
  };
  for (const NetRoute6& r : view.routes6) {
    const NetInterface* i = view.Find(r.index);
    if (!i) continue;
    uint32_t flags = RTF_UP;
    if (!r.gateway.zero()) flags |= RTF_GATEWAY;
    if (r.type == RTN_LOCAL) flags |= 0x80000000u | 0x00200000u;  // RTF_LOCAL | RTF_NONEXTHOP
    row(r.dst.addr, r.dst.prefix_len, r.gateway, r.metric, flags, i->name);
  }
  row(netstack::kIp6Any, 0, netstack::kIp6Any, 0xffffffffu, 0x00200200u, "lo");  // RTF_NONEXTHOP|RTF_REJECT
  return out;
}

std::string ProcNetUdp(const std::vector<netstack::SocketInfo>& sockets) {
  std::string out;
  PadLine(&out,
          "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode ref pointer drops",
          127);
  int slot = 0;
  for (const netstack::SocketInfo& s : sockets) {
    if (s.v6) continue;
    std::string row = SockRow(slot++, 5, s) + " 2 0000000000000000 0";
    PadLine(&out, row.c_str(), 127);
  }
  return out;
}

}  // namespace seedvisor::sentry
