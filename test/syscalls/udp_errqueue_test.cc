// ICMP errors on UDP sockets, over loopback, IPv4 and IPv6: a connected
// socket's SO_ERROR (ECONNREFUSED after a port unreachable, once; the next
// send or receive fails with it), and IP_RECVERR/IPV6_RECVERR's error
// queue read with MSG_ERRQUEUE: a sock_extended_err with the errno, origin,
// ICMP type and code, the offender (who sent the ICMP message), the failed
// datagram's destination as msg_name and its payload as data
// (__udp4_lib_err()/__udp6_lib_err(), ip_icmp_error()/ipv6_icmp_error(),
// ip_recv_error()/ipv6_recv_error(), sock_dequeue_err_skb()).
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/inet_test_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class UdpErrqueueTest : public InetTest {
 protected:
  int SoError(int fd) {
    int err = -1;
    socklen_t l = sizeof(err);
    EXPECT_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l), 0);
    return err;
  }

  // The sock_extended_err and its offender address of a MSG_ERRQUEUE
  // message, as `family`'s error cmsg carries them.
  struct QueuedError {
    sock_extended_err ee{};
    sockaddr_storage offender{};
  };
  QueuedError ErrorOf(msghdr& h, int family) {
    QueuedError q;
    cmsghdr* cm = CMSG_FIRSTHDR(&h);
    EXPECT_NE(cm, nullptr);
    if (cm == nullptr) return q;
    bool six = family == AF_INET6;
    EXPECT_EQ(cm->cmsg_level, six ? SOL_IPV6 : SOL_IP);
    EXPECT_EQ(cm->cmsg_type, six ? IPV6_RECVERR : IP_RECVERR);
    size_t addr_len = six ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    EXPECT_EQ(cm->cmsg_len, CMSG_LEN(sizeof(sock_extended_err) + addr_len));
    memcpy(&q.ee, CMSG_DATA(cm), sizeof(q.ee));
    memcpy(&q.offender, CMSG_DATA(cm) + sizeof(q.ee), addr_len);
    EXPECT_EQ(CMSG_NXTHDR(&h, cm), nullptr);
    return q;
  }
};

// A connected UDP socket learns of the ICMP error (__udp4_lib_err(),
// __udp6_lib_err()): POLLERR, then the next receive (or SO_ERROR) says
// ECONNREFUSED once; after that a receive blocks again, until its timeout.
TEST_P(UdpErrqueueTest, PortUnreachableIsEconnrefusedOnce) {
  Fd s = ConnectedToClosedPort();
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  char c;
  EXPECT_ERRNO(ECONNREFUSED, recv(s, &c, 1, 0));
  EXPECT_EQ(PollNow(s), POLLOUT);
  SetRcvTimeoutMs(s, 100);
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, 0));
  EXPECT_GE(NowMs() - t0, 90);
}

TEST_P(UdpErrqueueTest, PortUnreachableViaSoError) {
  Fd s = ConnectedToClosedPort();
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  EXPECT_EQ(SoError(s), ECONNREFUSED);
  EXPECT_EQ(SoError(s), 0);
  EXPECT_EQ(PollNow(s), POLLOUT);
  // A send after the error was taken goes out (and fails the same way).
  EXPECT_EQ(send(s, "y", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  EXPECT_ERRNO(ECONNREFUSED, send(s, "z", 1, 0));  // sock_alloc_send_pskb()
  EXPECT_EQ(PollNow(s), POLLOUT);
}

// An error waiting comes before a datagram waiting (__skb_recv_udp() takes
// sock_error() first).
TEST_P(UdpErrqueueTest, PendingErrorComesBeforeQueuedData) {
  Fd s = ConnectedToClosedPort();
  sockaddr_storage self;
  socklen_t sl = sizeof(self);
  ASSERT_EQ(getsockname(s, Sa(self), &sl), 0);
  ASSERT_EQ(send(s, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  // A datagram from the connected peer's port.
  sockaddr_storage peer;
  socklen_t pl = sizeof(peer);
  ASSERT_EQ(getpeername(s, Sa(peer), &pl), 0);
  Fd from(socket(family(), SOCK_DGRAM, 0));
  ASSERT_EQ(bind(from, Sa(peer), pl), 0) << strerror(errno);
  ASSERT_EQ(sendto(from, "d", 1, 0, Sa(self), sl), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLIN, POLLIN);
  char c = 0;
  EXPECT_ERRNO(ECONNREFUSED, recv(s, &c, 1, 0));
  EXPECT_EQ(recv(s, &c, 1, 0), 1);
  EXPECT_EQ(c, 'd');
}

// MSG_ERRQUEUE never waits (ip_recv_error()): EAGAIN on an empty queue,
// even on a blocking socket, UDP or TCP.
TEST_P(UdpErrqueueTest, ErrqueueReadNeverBlocks) {
  Fd s(socket(family(), SOCK_DGRAM, 0));
  MsgBuf m;
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
  sockaddr_storage a;
  Fd l = Bound(SOCK_STREAM, &a);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c(socket(family(), SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, Sa(a), Len()), 0) << strerror(errno);
  EXPECT_ERRNO(EAGAIN, recvmsg(c, &m.h, MSG_ERRQUEUE));
}

// IP_RECVERR/IPV6_RECVERR: the ICMP error is queued with its origin, type
// and code; it keeps POLLERR up until it is read with MSG_ERRQUEUE, while
// a plain receive that finds only it waits for data (and is woken by it).
TEST_P(UdpErrqueueTest, RecvErrQueuesTheIcmpError) {
  Fd s = WithQueuedIcmpError();
  char c;
  EXPECT_ERRNO(ECONNREFUSED, recv(s, &c, 1, 0));  // sk_err first
  EXPECT_EQ(PollNow(s), POLLOUT | POLLERR);       // the queued error
  // A blocking receive waits for data: woken by a datagram from the port
  // we are connected to.
  sockaddr_storage peer;
  socklen_t pl = sizeof(peer);
  ASSERT_EQ(getpeername(s, Sa(peer), &pl), 0);
  sockaddr_storage self;
  socklen_t sl = sizeof(self);
  ASSERT_EQ(getsockname(s, Sa(self), &sl), 0);
  Fd from(socket(family(), SOCK_DGRAM, 0));
  int reuse = 1;
  ASSERT_EQ(setsockopt(from, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)), 0);
  ASSERT_EQ(bind(from, Sa(peer), pl), 0) << strerror(errno);
  std::thread t([&] {
    usleep(100000);
    sendto(from, "d", 1, 0, Sa(self), sl);
  });
  int64_t t0 = NowMs();
  EXPECT_EQ(recv(s, &c, 1, 0), 1);
  EXPECT_GE(NowMs() - t0, 90);
  EXPECT_EQ(c, 'd');
  t.join();
  // The error itself, from the error queue: the datagram that failed, its
  // destination as the source address, the ICMP message's sender as the
  // offender.
  MsgBuf m;
  sockaddr_storage name{};
  m.h.msg_name = &name;
  m.h.msg_namelen = sizeof(name);
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 1);
  EXPECT_EQ(m.data[0], 'x');
  EXPECT_EQ(m.h.msg_flags, MSG_ERRQUEUE);
  EXPECT_EQ(m.h.msg_namelen, Len());
  EXPECT_EQ(memcmp(&name, &peer, Len()), 0);
  QueuedError q = ErrorOf(m.h, family());
  EXPECT_EQ(q.ee.ee_errno, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(q.ee.ee_origin, v6() ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP);
  EXPECT_EQ(q.ee.ee_type, v6() ? 1 : 3);  // destination unreachable
  EXPECT_EQ(q.ee.ee_code, v6() ? 4 : 3);  // port unreachable
  EXPECT_EQ(q.ee.ee_pad, 0);
  EXPECT_EQ(q.ee.ee_info, 0u);
  EXPECT_EQ(q.ee.ee_data, 0u);
  sockaddr_storage loop = Loopback(0);  // the loopback stack answered
  EXPECT_EQ(memcmp(&q.offender, &loop, Len()), 0);
  EXPECT_EQ(PollNow(s), POLLOUT);
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
}

// With the error queued and nothing else, a timed receive runs to its
// timeout (it is not an endless stream of EAGAINs or an instant return).
TEST_P(UdpErrqueueTest, RecvErrTimedReceiveRunsToItsTimeout) {
  Fd s = WithQueuedIcmpError();
  EXPECT_EQ(SoError(s), ECONNREFUSED);
  SetRcvTimeoutMs(s, 200);
  char c;
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, 0));
  EXPECT_GE(NowMs() - t0, 190);
  EXPECT_ERRNO(EAGAIN, recv(s, &c, 1, MSG_DONTWAIT));
}

// With IP_RECVERR an unconnected socket hears of its errors too: sk_err
// (so the next sendto fails) and the queue; msg_name says which
// destination refused.
TEST_P(UdpErrqueueTest, RecvErrReportsToAnUnconnectedSocket) {
  sockaddr_storage to = Loopback(ClosedPort(SOCK_DGRAM));
  Fd s(socket(family(), SOCK_DGRAM, 0));
  SetRecvErr(s, 1);
  ASSERT_EQ(sendto(s, "abc", 3, 0, Sa(to), Len()), 3);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  EXPECT_ERRNO(ECONNREFUSED, sendto(s, "d", 1, 0, Sa(to), Len()));
  EXPECT_EQ(PollNow(s), POLLOUT | POLLERR);
  MsgBuf m;
  sockaddr_storage name{};
  m.h.msg_name = &name;
  m.h.msg_namelen = sizeof(name);
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 3);
  EXPECT_EQ(std::string(m.data, 3), "abc");
  EXPECT_EQ(memcmp(&name, &to, Len()), 0);
  EXPECT_EQ(ErrorOf(m.h, family()).ee.ee_errno, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(PollNow(s), POLLOUT);
}

// Without it an unconnected socket hears nothing (RFC 1122 4.1.3.3 leaves
// it to the application; Linux reports to connected sockets only).
TEST_P(UdpErrqueueTest, UnconnectedSocketWithoutRecvErrHearsNothing) {
  sockaddr_storage to = Loopback(ClosedPort(SOCK_DGRAM));
  Fd s(socket(family(), SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(s, "a", 1, 0, Sa(to), Len()), 1);
  // A connected socket's error, sent after ours, has come: so has ours.
  Fd witness(socket(family(), SOCK_DGRAM, 0));
  ASSERT_EQ(connect(witness, Sa(to), Len()), 0);
  ASSERT_EQ(send(witness, "w", 1, 0), 1);
  EXPECT_EQ(PollFor(witness, POLLIN) & POLLERR, POLLERR);
  EXPECT_EQ(PollNow(s), POLLOUT);
  EXPECT_EQ(SoError(s), 0);
  EXPECT_EQ(sendto(s, "b", 1, 0, Sa(to), Len()), 1);
}

// Reading an ICMP error from the queue sets sk_err to the next one's errno
// if another ICMP error waits, else clears it (sock_dequeue_err_skb()).
TEST_P(UdpErrqueueTest, ReadingAnErrorLeavesTheNextOneInSoError) {
  Fd s = ConnectedToClosedPort();
  SetRecvErr(s, 1);
  for (char c : {'1', '2'}) {
    ASSERT_EQ(send(s, &c, 1, 0), 1);
    EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
    EXPECT_EQ(SoError(s), ECONNREFUSED);
  }
  EXPECT_EQ(PollNow(s), POLLOUT | POLLERR);
  MsgBuf m;
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 1);
  EXPECT_EQ(m.data[0], '1');
  EXPECT_EQ(SoError(s), ECONNREFUSED);
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 1);
  EXPECT_EQ(m.data[0], '2');
  EXPECT_EQ(SoError(s), 0);
  EXPECT_EQ(PollNow(s), POLLOUT);
}

// Turning the option off empties the queue (do_ip_setsockopt(),
// do_ipv6_setsockopt(): skb_errqueue_purge()); getsockopt shows it.
TEST_P(UdpErrqueueTest, RecvErrOffEmptiesTheQueue) {
  Fd s = WithQueuedIcmpError();
  EXPECT_EQ(SoError(s), ECONNREFUSED);
  int v = -1;
  socklen_t l = sizeof(v);
  int level = v6() ? SOL_IPV6 : SOL_IP, name = v6() ? IPV6_RECVERR : IP_RECVERR;
  ASSERT_EQ(getsockopt(s, level, name, &v, &l), 0);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(PollNow(s), POLLOUT | POLLERR);
  SetRecvErr(s, 0);
  ASSERT_EQ(getsockopt(s, level, name, &v, &l), 0);
  EXPECT_EQ(v, 0);
  EXPECT_EQ(PollNow(s), POLLOUT);
  MsgBuf m;
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
}

// A short buffer gets the start of the payload and MSG_TRUNC; a short
// control buffer a cut cmsg and MSG_CTRUNC (put_cmsg()); the message is
// gone either way (MSG_ERRQUEUE never peeks).
TEST_P(UdpErrqueueTest, ShortBuffersTruncate) {
  Fd s = ConnectedToClosedPort();
  SetRecvErr(s, 1);
  ASSERT_EQ(send(s, "hello", 5, 0), 5);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  MsgBuf m;
  m.iov.iov_len = 2;
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE | MSG_PEEK), 2);
  EXPECT_EQ(std::string(m.data, 2), "he");
  EXPECT_EQ(m.h.msg_flags, MSG_ERRQUEUE | MSG_TRUNC);
  EXPECT_ERRNO(EAGAIN, recvmsg(s, &m.h, MSG_ERRQUEUE));
  EXPECT_EQ(SoError(s), 0);  // the read cleared it

  ASSERT_EQ(send(s, "again", 5, 0), 5);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  MsgBuf n;
  n.h.msg_controllen = CMSG_LEN(8);
  ASSERT_EQ(recvmsg(s, &n.h, MSG_ERRQUEUE), 5);
  EXPECT_EQ(n.h.msg_flags, MSG_ERRQUEUE | MSG_CTRUNC);
  EXPECT_EQ(n.h.msg_controllen, CMSG_LEN(8));
  cmsghdr* cm = CMSG_FIRSTHDR(&n.h);
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(cm->cmsg_len, CMSG_LEN(8));
  EXPECT_EQ(cm->cmsg_type, v6() ? IPV6_RECVERR : IP_RECVERR);
  sock_extended_err ee{};
  memcpy(&ee, CMSG_DATA(cm), 8);  // ee_errno, origin, type, code, pad
  EXPECT_EQ(ee.ee_errno, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(ee.ee_origin, v6() ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP);
}

// An AF_INET6 socket talking IPv4 (a mapped peer) queues ICMPv4 errors
// when IP_RECVERR is on (the IPv4 layer's flag, __udp4_lib_err()), not
// with IPV6_RECVERR alone; they come as an IPV6_RECVERR cmsg with origin
// ICMP and a mapped offender (ipv6_recv_error()).
TEST_P(UdpErrqueueTest, MappedPeerOfAnIpv6Socket) {
  if (!v6()) GTEST_SKIP() << "an AF_INET6 case";
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = [&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Fd b(socket(AF_INET, SOCK_DGRAM, 0));
    socklen_t l = sizeof(a);
    EXPECT_EQ(bind(b, reinterpret_cast<sockaddr*>(&a), l), 0);
    EXPECT_EQ(getsockname(b, reinterpret_cast<sockaddr*>(&a), &l), 0);
    return a.sin_port;
  }();
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &to.sin6_addr), 1);
  auto* to_sa = reinterpret_cast<sockaddr*>(&to);

  // IPV6_RECVERR alone: only sk_err, as for any connected socket.
  Fd only6(socket(AF_INET6, SOCK_DGRAM, 0));
  SetRecvErr(only6, 1);
  ASSERT_EQ(connect(only6, to_sa, sizeof(to)), 0) << strerror(errno);
  ASSERT_EQ(send(only6, "x", 1, 0), 1);
  EXPECT_EQ(PollFor(only6, POLLIN) & POLLERR, POLLERR);
  EXPECT_EQ(SoError(only6), ECONNREFUSED);
  EXPECT_EQ(PollNow(only6), POLLOUT);
  MsgBuf m;
  EXPECT_ERRNO(EAGAIN, recvmsg(only6, &m.h, MSG_ERRQUEUE));

  // IP_RECVERR on the AF_INET6 socket: queued.
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  int one = 1;
  ASSERT_EQ(setsockopt(s, SOL_IP, IP_RECVERR, &one, sizeof(one)), 0) << strerror(errno);
  ASSERT_EQ(sendto(s, "y", 1, 0, to_sa, sizeof(to)), 1);
  EXPECT_EQ(PollFor(s, POLLIN) & POLLERR, POLLERR);
  sockaddr_in6 name{};
  m.h.msg_name = &name;
  m.h.msg_namelen = sizeof(name);
  ASSERT_EQ(recvmsg(s, &m.h, MSG_ERRQUEUE), 1);
  EXPECT_EQ(m.data[0], 'y');
  EXPECT_EQ(m.h.msg_namelen, sizeof(sockaddr_in6));
  EXPECT_EQ(memcmp(&name, &to, sizeof(to)), 0);
  QueuedError q = ErrorOf(m.h, AF_INET6);
  EXPECT_EQ(q.ee.ee_errno, static_cast<uint32_t>(ECONNREFUSED));
  EXPECT_EQ(q.ee.ee_origin, SO_EE_ORIGIN_ICMP);
  EXPECT_EQ(q.ee.ee_type, 3);
  EXPECT_EQ(q.ee.ee_code, 3);
  sockaddr_in6 offender = to;
  offender.sin6_port = 0;
  EXPECT_EQ(memcmp(&q.offender, &offender, sizeof(offender)), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, UdpErrqueueTest, InetFamilies(), InetFamilyName);

}  // namespace
}  // namespace syscall_test
