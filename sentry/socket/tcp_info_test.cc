// LinuxTcpInfo against the kernel's own header, and the units and
// defaults ToLinuxTcpInfo() gives.
#include "sentry/socket/tcp_info.h"

#include <linux/tcp.h>

#include <cstddef>
#include <cstring>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

#define SAME_OFFSET(f) \
  static_assert(offsetof(LinuxTcpInfo, f) == offsetof(struct tcp_info, tcpi_##f), #f)
SAME_OFFSET(state);
SAME_OFFSET(options);
SAME_OFFSET(rto);
SAME_OFFSET(unacked);
SAME_OFFSET(last_ack_recv);
SAME_OFFSET(rtt);
SAME_OFFSET(snd_cwnd);
SAME_OFFSET(total_retrans);
SAME_OFFSET(pacing_rate);
SAME_OFFSET(bytes_received);
SAME_OFFSET(segs_in);
SAME_OFFSET(min_rtt);
SAME_OFFSET(delivery_rate);
SAME_OFFSET(delivered_ce);
SAME_OFFSET(bytes_retrans);
SAME_OFFSET(dsack_dups);
SAME_OFFSET(rcv_ooopack);
SAME_OFFSET(snd_wnd);
static_assert(sizeof(LinuxTcpInfo) <= sizeof(struct tcp_info));

TEST(TcpInfo, AFreshSocketShowsLinuxsInitialValues) {
  netstack::TcpEndpoint::Info i;
  i.snd_mss = 536;
  i.rto_ns = 1'000'000'000;
  i.ssthresh = 0x7fffffff;
  LinuxTcpInfo o = ToLinuxTcpInfo(i);
  EXPECT_EQ(o.state, 7);  // TCP_CLOSE
  EXPECT_EQ(o.rto, 1000000u);
  EXPECT_EQ(o.rtt, 0u);
  EXPECT_EQ(o.rttvar, 250000u);
  EXPECT_EQ(o.snd_cwnd, 10u);
  EXPECT_EQ(o.snd_ssthresh, 0x7fffffffu);
  EXPECT_EQ(o.min_rtt, ~0u);
  EXPECT_EQ(o.reordering, 3u);
  EXPECT_EQ(o.options, 0);
}

TEST(TcpInfo, UnitsOfAConnection) {
  netstack::TcpEndpoint::Info i;
  i.linux_state = 1;
  i.snd_mss = 1000;
  i.cwnd = 20000;
  i.ssthresh = 7000;
  i.srtt_ns = 2'500'000;
  i.rttvar_ns = 400'000;
  i.min_rtt_ns = 300;  // under a microsecond: still a measurement
  i.last_ack_recv_ago_ns = 1'999'999;
  i.wscale_ok = i.sack_ok = true;
  i.snd_wscale = 2;
  i.rcv_wscale = 7;
  LinuxTcpInfo o = ToLinuxTcpInfo(i);
  EXPECT_EQ(o.snd_cwnd, 20u);
  EXPECT_EQ(o.snd_ssthresh, 7u);
  EXPECT_EQ(o.rtt, 2500u);
  EXPECT_EQ(o.rttvar, 400u);
  EXPECT_EQ(o.min_rtt, 1u);
  EXPECT_EQ(o.last_ack_recv, 1u);
  EXPECT_EQ(o.options, kTcpiOptSack | kTcpiOptWscale);
  struct tcp_info k;
  static_assert(sizeof k >= sizeof o);
  memcpy(&k, &o, sizeof o);
  EXPECT_EQ(int(k.tcpi_snd_wscale), 2);
  EXPECT_EQ(int(k.tcpi_rcv_wscale), 7);
  EXPECT_EQ(TcpInfoBytes(i, 8).size(), 8u);
  EXPECT_EQ(TcpInfoBytes(i, 1000).size(), sizeof o);
}

TEST(TcpInfo, AListenerShowsItsQueueAndBacklogOnly) {
  netstack::TcpEndpoint::Info i;
  i.linux_state = 10;
  i.accept_queue = 2;
  i.backlog = 128;
  i.snd_mss = 536;
  i.sack_ok = true;
  LinuxTcpInfo o = ToLinuxTcpInfo(i);
  EXPECT_EQ(o.unacked, 2u);
  EXPECT_EQ(o.sacked, 128u);
  EXPECT_EQ(o.options, 0);
  EXPECT_EQ(o.snd_mss, 0u);
}

}  // namespace
}  // namespace seedvisor::sentry
