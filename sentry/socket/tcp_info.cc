#include "sentry/socket/tcp_info.h"

#include <algorithm>
#include <cstring>

namespace seedvisor::sentry {
namespace {

constexpr uint32_t kInfiniteSsthresh = 0x7fffffff;  // TCP_INFINITE_SSTHRESH
constexpr uint32_t kInitCwnd = 10;                  // TCP_INIT_CWND
constexpr uint32_t kReordering = 3;                 // net.ipv4.tcp_reordering
// tcp_init_sock(): mdev_us starts at TCP_TIMEOUT_INIT (1 s); TCP_INFO
// shows a quarter of it until the first measurement.
constexpr uint32_t kInitRttvarUs = 250000;

uint32_t Us(int64_t ns) { return uint32_t(std::clamp<int64_t>(ns / 1000, 0, UINT32_MAX)); }
uint32_t Ms(int64_t ns) { return uint32_t(std::clamp<int64_t>(ns / 1000000, 0, UINT32_MAX)); }

}  // namespace

LinuxTcpInfo ToLinuxTcpInfo(const netstack::TcpEndpoint::Info& i) {
  LinuxTcpInfo o{};
  o.state = uint8_t(i.linux_state);
  // No pacing: the rates are unlimited (~0, as an unset sk_pacing_rate).
  o.pacing_rate = o.max_pacing_rate = ~uint64_t{0};
  if (o.state == 10) {  // TCP_LISTEN: the accept queue and its limit, nothing else
    o.unacked = i.accept_queue;
    o.sacked = i.backlog;
    return o;
  }
  const uint32_t mss = std::max<uint32_t>(i.snd_mss, 1);
  o.ca_state = i.ca_state;
  o.retransmits = i.retransmits;
  o.probes = i.probes;
  o.backoff = i.backoff;
  if (i.ts_ok) o.options |= kTcpiOptTimestamps;
  if (i.sack_ok) o.options |= kTcpiOptSack;
  if (i.wscale_ok) {
    o.options |= kTcpiOptWscale;
    o.wscale = uint8_t((i.snd_wscale & 0xf) | (i.rcv_wscale & 0xf) << 4);
  }
  o.rto = Us(i.rto_ns);
  o.snd_mss = i.snd_mss;
  o.rcv_mss = i.rcv_mss;
  o.unacked = i.unacked_segs;
  o.sacked = i.sacked_segs;
  o.last_data_sent = Ms(i.last_data_sent_ago_ns);
  o.last_data_recv = Ms(i.last_data_recv_ago_ns);
  o.last_ack_recv = Ms(i.last_ack_recv_ago_ns);
  o.pmtu = i.pmtu;
  // The most we would advertise: the receive buffer's room, as far as
  // the window field (and its scale) can say.
  o.rcv_ssthresh = uint32_t(std::min<uint64_t>(i.rcvbuf, uint64_t(65535) << i.rcv_wscale));
  if (i.srtt_ns >= 0) {
    o.rtt = std::max<uint32_t>(Us(i.srtt_ns), 1);
    o.rttvar = Us(i.rttvar_ns);
  } else {
    o.rttvar = kInitRttvarUs;
  }
  o.snd_ssthresh = i.ssthresh >= kInfiniteSsthresh ? kInfiniteSsthresh : i.ssthresh / mss;
  o.snd_cwnd = i.cwnd ? i.cwnd / mss : kInitCwnd;
  o.advmss = i.advmss;
  o.reordering = kReordering;
  o.rcv_space = uint32_t(std::min<uint64_t>(i.rcv_space, UINT32_MAX));
  o.total_retrans = i.total_retrans;
  o.bytes_acked = i.bytes_acked;
  o.bytes_received = i.bytes_received;
  o.segs_out = i.segs_out;
  o.segs_in = i.segs_in;
  o.notsent_bytes = i.notsent_bytes;
  o.min_rtt = i.min_rtt_ns >= 0 ? std::max<uint32_t>(Us(i.min_rtt_ns), 1) : ~uint32_t{0};
  o.data_segs_in = i.data_segs_in;
  o.data_segs_out = i.data_segs_out;
  o.bytes_sent = i.bytes_sent;
  o.bytes_retrans = i.bytes_retrans;
  o.dsack_dups = i.dsack_dups;
  o.rcv_ooopack = i.rcv_ooopack;
  o.snd_wnd = i.snd_wnd;
  return o;
}

std::string TcpInfoBytes(const netstack::TcpEndpoint::Info& i, size_t optlen) {
  LinuxTcpInfo o = ToLinuxTcpInfo(i);
  std::string s(sizeof o, '\0');
  memcpy(s.data(), &o, sizeof o);
  s.resize(std::min(optlen, sizeof o));
  return s;
}

}  // namespace seedvisor::sentry
