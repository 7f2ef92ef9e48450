// getsockopt(IPPROTO_TCP, TCP_INFO) (tcp_get_info()) over loopback: a
// fresh socket's initial values, a listener's queue and backlog, the
// options, MSS, path MTU, RTT and byte counts of a connection, and the
// states it passes through when both sides close. A socket whose
// connection went to TIME_WAIT shows TCP_CLOSE: the kernel handed the
// connection to a timewait sock (tcp_time_wait(), tcp_done()).
//
// <linux/tcp.h> for the whole struct (glibc's netinet/tcp.h stops at
// tcpi_total_retrans).
#include <linux/tcp.h>

#include <chrono>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr uint8_t kEstablished = 1, kFinWait2 = 5, kClose = 7, kCloseWait = 8, kListen = 10;

class TcpInfoTest : public InetTest {
 protected:
  static tcp_info Info(int fd) {
    tcp_info ti;
    memset(&ti, 0xa5, sizeof ti);
    socklen_t l = sizeof ti;
    EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l), 0) << strerror(errno);
    EXPECT_EQ(l, sizeof ti);
    return ti;
  }
  // Waits (3 s at most) until `ok` holds for the socket's tcp_info.
  static tcp_info WaitInfo(int fd, const std::function<bool(const tcp_info&)>& ok) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    tcp_info ti = Info(fd);
    while (!ok(ti) && std::chrono::steady_clock::now() < end) {
      usleep(1000);
      ti = Info(fd);
    }
    return ti;
  }
  // A connected pair over loopback: c connected to s.
  void Connect(Fd* c, Fd* s) {
    sockaddr_storage a;
    Fd l = Bound(SOCK_STREAM, &a);
    ASSERT_EQ(listen(l, 4), 0);
    *c = Fd(socket(family(), SOCK_STREAM, 0));
    ASSERT_EQ(connect(*c, Sa(a), Len()), 0) << strerror(errno);
    *s = Fd(accept(l, nullptr, nullptr));
    ASSERT_GE(*s, 0) << strerror(errno);
  }
  // Sends `n` bytes on `from` and reads them all on `to`.
  static void Transfer(int from, int to, size_t n) {
    std::string out(n, 'x'), in(n, '\0');
    size_t sent = 0, got = 0;
    while (got < n) {
      if (sent < n) {
        ssize_t k = send(from, out.data() + sent, n - sent, MSG_DONTWAIT);
        if (k > 0) sent += size_t(k);
        ASSERT_TRUE(k > 0 || errno == EAGAIN) << strerror(errno);
      }
      ssize_t k = recv(to, in.data() + got, n - got, sent < n ? MSG_DONTWAIT : 0);
      if (k > 0) got += size_t(k);
      ASSERT_TRUE(k > 0 || (k < 0 && errno == EAGAIN)) << k << " " << strerror(errno);
    }
  }
};

TEST_P(TcpInfoTest, AFreshSocketShowsTheInitialValues) {
  Fd s(socket(family(), SOCK_STREAM, 0));
  tcp_info ti = Info(s);
  EXPECT_EQ(ti.tcpi_state, kClose);
  EXPECT_EQ(ti.tcpi_ca_state, TCP_CA_Open);
  EXPECT_EQ(ti.tcpi_options, 0);
  EXPECT_EQ(ti.tcpi_rto, 1000000u);      // TCP_TIMEOUT_INIT
  EXPECT_EQ(ti.tcpi_rtt, 0u);
  EXPECT_EQ(ti.tcpi_rttvar, 250000u);    // mdev_us = 1 s, shown >> 2
  EXPECT_EQ(ti.tcpi_snd_mss, 536u);      // TCP_MSS_DEFAULT
  EXPECT_EQ(ti.tcpi_snd_cwnd, 10u);      // TCP_INIT_CWND
  EXPECT_EQ(ti.tcpi_snd_ssthresh, 0x7fffffffu);  // TCP_INFINITE_SSTHRESH
  EXPECT_EQ(ti.tcpi_reordering, 3u);
  EXPECT_EQ(ti.tcpi_min_rtt, ~0u);
  EXPECT_EQ(ti.tcpi_unacked, 0u);
  EXPECT_EQ(ti.tcpi_bytes_acked, 0u);
  // A short buffer gets the struct's start.
  uint8_t head[8];
  socklen_t l = sizeof head;
  ASSERT_EQ(getsockopt(s, IPPROTO_TCP, TCP_INFO, head, &l), 0);
  EXPECT_EQ(l, sizeof head);
  EXPECT_EQ(head[0], kClose);
}

TEST_P(TcpInfoTest, AListenerShowsItsAcceptQueueAndBacklog) {
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 5), 0);
  tcp_info ti = Info(l);
  EXPECT_EQ(ti.tcpi_state, kListen);
  EXPECT_EQ(ti.tcpi_unacked, 0u);
  EXPECT_EQ(ti.tcpi_sacked, 5u);
  Fd c(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, Sa(a), Len()), 0) << strerror(errno);
  ti = WaitInfo(l, [](const tcp_info& t) { return t.tcpi_unacked == 1; });
  EXPECT_EQ(ti.tcpi_unacked, 1u);
  EXPECT_EQ(ti.tcpi_sacked, 5u);
}

TEST_P(TcpInfoTest, AConnectionsOptionsMssAndRtt) {
  Fd c, s;
  ASSERT_NO_FATAL_FAILURE(Connect(&c, &s));
  tcp_info tc = Info(c), ts = Info(s);
  for (const tcp_info* t : {&tc, &ts}) {
    EXPECT_EQ(t->tcpi_state, kEstablished);
    EXPECT_EQ(t->tcpi_ca_state, TCP_CA_Open);
    EXPECT_TRUE(t->tcpi_options & TCPI_OPT_TIMESTAMPS);
    EXPECT_TRUE(t->tcpi_options & TCPI_OPT_SACK);
    EXPECT_TRUE(t->tcpi_options & TCPI_OPT_WSCALE);
    // lo's MTU 65536; an IPv4 route's is at most IP_MAX_MTU (ipv4_mtu()).
    EXPECT_EQ(t->tcpi_pmtu, v6() ? 65536u : 65535u);
    // The MTU less the IP and TCP headers, and the timestamps if agreed.
    const uint32_t ts = (t->tcpi_options & TCPI_OPT_TIMESTAMPS) ? 12 : 0;
    EXPECT_EQ(t->tcpi_advmss, (v6() ? 65476u : 65495u) - ts);
    EXPECT_GT(t->tcpi_rtt, 0u);  // the handshake was timed
    EXPECT_NE(t->tcpi_min_rtt, ~0u);
    EXPECT_GT(t->tcpi_min_rtt, 0u);
    EXPECT_GE(t->tcpi_rto, 200000u);  // TCP_RTO_MIN
    EXPECT_EQ(t->tcpi_retransmits, 0);
    EXPECT_EQ(t->tcpi_total_retrans, 0u);
    EXPECT_GT(t->tcpi_snd_wnd, 0u);
  }
  EXPECT_EQ(int(tc.tcpi_snd_wscale), int(ts.tcpi_rcv_wscale));
  EXPECT_EQ(int(tc.tcpi_rcv_wscale), int(ts.tcpi_snd_wscale));
  int maxseg = 0;
  socklen_t l = sizeof maxseg;
  ASSERT_EQ(getsockopt(c, IPPROTO_TCP, TCP_MAXSEG, &maxseg, &l), 0);
  EXPECT_EQ(tc.tcpi_snd_mss, uint32_t(maxseg));
  EXPECT_EQ(tc.tcpi_bytes_acked, 1u);  // the SYN
}

TEST_P(TcpInfoTest, BytesAndSegmentsOfATransfer) {
  constexpr size_t kN = 300000;
  Fd c, s;
  ASSERT_NO_FATAL_FAILURE(Connect(&c, &s));
  ASSERT_NO_FATAL_FAILURE(Transfer(c, s, kN));
  tcp_info tc = WaitInfo(c, [](const tcp_info& t) { return t.tcpi_unacked == 0; });
  EXPECT_EQ(tc.tcpi_unacked, 0u);
  EXPECT_EQ(tc.tcpi_notsent_bytes, 0u);
  EXPECT_EQ(tc.tcpi_bytes_acked, kN + 1);
  EXPECT_GE(tc.tcpi_bytes_sent, kN);
  EXPECT_GE(tc.tcpi_data_segs_out, 2u);
  EXPECT_GE(tc.tcpi_segs_out, tc.tcpi_data_segs_out);
  EXPECT_LT(tc.tcpi_last_data_sent, 10000u);
  tcp_info ts = Info(s);
  EXPECT_EQ(ts.tcpi_bytes_received, kN);
  EXPECT_GE(ts.tcpi_data_segs_in, 2u);
  EXPECT_GE(ts.tcpi_segs_in, ts.tcpi_data_segs_in);
  EXPECT_EQ(ts.tcpi_bytes_sent, 0u);
  EXPECT_LT(ts.tcpi_last_data_recv, 10000u);
}

TEST_P(TcpInfoTest, StatesThroughTheClose) {
  Fd c, s;
  ASSERT_NO_FATAL_FAILURE(Connect(&c, &s));
  ASSERT_NO_FATAL_FAILURE(Transfer(c, s, 1000));
  ASSERT_EQ(shutdown(c, SHUT_WR), 0);
  char b;
  ASSERT_EQ(recv(s, &b, 1, 0), 0);  // the FIN
  EXPECT_EQ(Info(s).tcpi_state, kCloseWait);
  EXPECT_EQ(Info(s).tcpi_bytes_received, 1001u);  // the FIN counts
  tcp_info tc = WaitInfo(c, [](const tcp_info& t) { return t.tcpi_state == kFinWait2; });
  EXPECT_EQ(tc.tcpi_state, kFinWait2);
  EXPECT_EQ(tc.tcpi_bytes_acked, 1002u);  // SYN, data, FIN
  ASSERT_EQ(shutdown(s, SHUT_WR), 0);
  ASSERT_EQ(recv(c, &b, 1, 0), 0);
  // The client's connection is in TIME_WAIT, its socket closed; the
  // server's closes when its FIN is acknowledged.
  tc = WaitInfo(c, [](const tcp_info& t) { return t.tcpi_state == kClose; });
  EXPECT_EQ(tc.tcpi_state, kClose);
  tcp_info ts = WaitInfo(s, [](const tcp_info& t) { return t.tcpi_state == kClose; });
  EXPECT_EQ(ts.tcpi_state, kClose);
  // The server's FIN: its connection began with the SYN-ACK acknowledged
  // (tcp_create_openreq_child()).
  EXPECT_EQ(ts.tcpi_bytes_acked, 1u);
}

INSTANTIATE_TEST_SUITE_P(Families, TcpInfoTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
