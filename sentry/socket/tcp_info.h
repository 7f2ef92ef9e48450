// TCP_INFO for the sandbox's own stack: a connection's snapshot
// (netstack::TcpEndpoint::Info) laid out as Linux's struct tcp_info
// (include/uapi/linux/tcp.h, up to tcpi_snd_wnd: 232 bytes, the layout of
// the build host's linux/tcp.h), in Linux's units (tcp_get_info()):
// times in microseconds or milliseconds, windows and thresholds in
// segments. What the stack does not model is 0 (delayed ACKs, pacing,
// delivery rate, lost and retransmitted segments in flight).
//
//   return TcpInfoBytes(tcp->info(), optlen);  // getsockopt(TCP_INFO)
#ifndef SEEDVISOR_SENTRY_SOCKET_TCP_INFO_H_
#define SEEDVISOR_SENTRY_SOCKET_TCP_INFO_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "netstack/shared/tcp.h"

namespace seedvisor::sentry {

// Linux's struct tcp_info, field for field. (linux/tcp.h itself cannot be
// included beside glibc's netinet/tcp.h; tcp_info_test checks the offsets
// against it.)
struct LinuxTcpInfo {
  uint8_t state, ca_state, retransmits, probes, backoff, options;
  uint8_t wscale;  // tcpi_snd_wscale in the low nibble, tcpi_rcv_wscale in the high
  uint8_t flags;   // tcpi_delivery_rate_app_limited, tcpi_fastopen_client_fail
  uint32_t rto, ato, snd_mss, rcv_mss;
  uint32_t unacked, sacked, lost, retrans, fackets;
  uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
  uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
  uint32_t rcv_rtt, rcv_space;
  uint32_t total_retrans;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  uint32_t segs_out, segs_in;
  uint32_t notsent_bytes, min_rtt, data_segs_in, data_segs_out;
  uint64_t delivery_rate;
  uint64_t busy_time, rwnd_limited, sndbuf_limited;
  uint32_t delivered, delivered_ce;
  uint64_t bytes_sent, bytes_retrans;
  uint32_t dsack_dups, reord_seen;
  uint32_t rcv_ooopack;
  uint32_t snd_wnd;
};
static_assert(sizeof(LinuxTcpInfo) == 232);

inline constexpr uint8_t kTcpiOptTimestamps = 1, kTcpiOptSack = 2, kTcpiOptWscale = 4;

LinuxTcpInfo ToLinuxTcpInfo(const netstack::TcpEndpoint::Info& i);
// The struct's bytes cut to `optlen`, as do_tcp_getsockopt() copies
// min(len, sizeof(info)).
std::string TcpInfoBytes(const netstack::TcpEndpoint::Info& i, size_t optlen);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_TCP_INFO_H_
