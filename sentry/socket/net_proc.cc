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
    // tcp4_seq_show() goes on with refcount, pointer (hidden: %pK), rto,
    // ato, quick/pingpong, cwnd and ssthresh; tools read up to the inode.
    // ato and quick/pingpong stay 0 (no delayed ACKs yet); a listener's
    // last field is its fastopen queue length (0).
    char tail[96];
    snprintf(tail, sizeof(tail), " 1 0000000000000000 %" PRId64 " 0 0 %u %" PRId64,
             s.rto_ns / 10'000'000, s.cwnd, s.state == 10 ? 0 : s.ssthresh);
    std::string row = SockRow(slot++, 4, s) + tail;
    PadLine(&out, row.c_str(), 149);
  }
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
    std::string row = SockRow(slot++, 5, s) + " 2 0000000000000000 0";
    PadLine(&out, row.c_str(), 127);
  }
  return out;
}

}  // namespace seedvisor::sentry
