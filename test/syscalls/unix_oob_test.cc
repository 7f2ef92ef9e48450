// MSG_OOB on AF_UNIX stream sockets as Linux >= 5.15 has it
// (CONFIG_AF_UNIX_OOB, net/unix/af_unix.c: queue_oob(), manage_oob(),
// unix_stream_recv_urg()): the last byte of a MSG_OOB send is the one
// out-of-band byte (a later one replaces it, the old one becomes ordinary
// data), recv(MSG_OOB) takes it (EINVAL when there is none or with
// SO_OOBINLINE), the mark ends a read, an out-of-band byte the reader
// reaches without taking it is dropped (kept inline with SO_OOBINLINE),
// SIOCATMARK, POLLPRI/EPOLLPRI while one is pending, and SIGURG to the
// receiving socket's F_SETOWN owner. Datagram and seqpacket sockets say
// EOPNOTSUPP.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// What recv(flags | MSG_DONTWAIT) returns, as a string ("EINVAL", "EAGAIN"
// if it failed with those, "errno N" for others).
std::string Recv(int fd, int flags, size_t len = 64) {
  char buf[64];
  ssize_t n = recv(fd, buf, len, flags | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EINVAL) return "EINVAL";
    if (errno == EAGAIN) return "EAGAIN";
    return "errno " + std::to_string(errno);
  }
  return std::string(buf, static_cast<size_t>(n));
}

int AtMark(int fd) {
  int v = -1;
  if (ioctl(fd, SIOCATMARK, &v) != 0) return -errno;
  return v;
}

short Revents(int fd) {
  pollfd p{fd, static_cast<short>(POLLIN | POLLPRI | POLLOUT), 0};
  EXPECT_EQ(poll(&p, 1, 0), 1);
  return p.revents;
}

TEST(UnixOobTest, OneByteOutOfBand) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(Revents(p.b), POLLOUT);
  ASSERT_EQ(send(p.a, "abc", 3, MSG_OOB), 3);
  EXPECT_EQ(Revents(p.b), POLLIN | POLLPRI | POLLOUT);
  EXPECT_EQ(AtMark(p.b), 0);
  int n = -1;
  ASSERT_EQ(ioctl(p.b, FIONREAD, &n), 0);
  EXPECT_EQ(n, 3);
  // A peek leaves it; recvmsg says MSG_OOB.
  EXPECT_EQ(Recv(p.b, MSG_OOB | MSG_PEEK), "c");
  char c = 0;
  iovec iov{&c, 1};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  ASSERT_EQ(recvmsg(p.b, &h, MSG_OOB), 1);
  EXPECT_EQ(c, 'c');
  EXPECT_EQ(h.msg_flags, MSG_OOB);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "EINVAL");  // taken
  EXPECT_EQ(Revents(p.b), POLLIN | POLLOUT);
  ASSERT_EQ(ioctl(p.b, FIONREAD, &n), 0);
  EXPECT_EQ(n, 2);
  h.msg_flags = -1;
  char buf[8];
  iov = {buf, sizeof(buf)};
  ASSERT_EQ(recvmsg(p.b, &h, 0), 2);
  EXPECT_EQ(std::string(buf, 2), "ab");
  EXPECT_EQ(h.msg_flags, 0);
  // The taken byte's place is the mark now.
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Recv(p.b, 0), "EAGAIN");
}

TEST(UnixOobTest, NoneIsEinvalEvenBlocking) {
  Pair p = MakePair(SOCK_STREAM);
  char c;
  EXPECT_ERRNO(EINVAL, recv(p.b, &c, 1, MSG_OOB));  // does not wait
  ASSERT_EQ(send(p.a, "x", 1, 0), 1);
  EXPECT_ERRNO(EINVAL, recv(p.b, &c, 1, MSG_OOB));
  EXPECT_EQ(Recv(p.b, 0), "x");
}

TEST(UnixOobTest, MarkSplitsReadsAndUntakenByteIsDropped) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "abc", 3, MSG_OOB), 3);
  ASSERT_EQ(send(p.a, "de", 2, 0), 2);
  EXPECT_EQ(Recv(p.b, MSG_PEEK), "ab");  // a peek stops there too
  EXPECT_EQ(Recv(p.b, 0), "ab");
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Revents(p.b), POLLIN | POLLPRI | POLLOUT);
  EXPECT_EQ(Recv(p.b, MSG_PEEK), "de");  // a peek at the mark passes it
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Recv(p.b, 0), "de");  // 'c' was never taken: gone
  EXPECT_EQ(AtMark(p.b), 0);
  EXPECT_EQ(Revents(p.b), POLLOUT);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "EINVAL");
}

int Inq(int fd) {
  int n = -1;
  if (ioctl(fd, FIONREAD, &n) != 0) return -errno;
  return n;
}

// Linux 6.17+ (u->inq_len): a byte a read dropped without taking it stays
// counted by FIONREAD, one per dropped byte; a byte taken with MSG_OOB, or
// read inline, does not.
TEST(UnixOobTest, FionreadKeepsDroppedBytes) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "ab", 2, MSG_OOB), 2);
  ASSERT_EQ(send(p.a, "cd", 2, 0), 2);
  EXPECT_EQ(Inq(p.b), 4);
  EXPECT_EQ(Recv(p.b, 0), "a");
  EXPECT_EQ(Inq(p.b), 3);
  EXPECT_EQ(Recv(p.b, MSG_PEEK), "cd");  // a peek drops nothing
  EXPECT_EQ(Inq(p.b), 3);
  EXPECT_EQ(Recv(p.b, 0), "cd");  // 'b' dropped
  EXPECT_EQ(Inq(p.b), 1);
  EXPECT_EQ(Recv(p.b, 0), "EAGAIN");
  ASSERT_EQ(send(p.a, "e", 1, MSG_OOB), 1);
  ASSERT_EQ(send(p.a, "f", 1, 0), 1);
  EXPECT_EQ(Recv(p.b, 0), "f");  // 'e' dropped too
  EXPECT_EQ(Inq(p.b), 2);
  EXPECT_EQ(Recv(p.b, 0), "EAGAIN");

  Pair q = MakePair(SOCK_STREAM);  // taken: not counted
  ASSERT_EQ(send(q.a, "a", 1, MSG_OOB), 1);
  EXPECT_EQ(Recv(q.b, MSG_OOB), "a");
  ASSERT_EQ(send(q.a, "b", 1, 0), 1);
  EXPECT_EQ(Recv(q.b, 0), "b");
  EXPECT_EQ(Inq(q.b), 0);

  Pair r = MakePair(SOCK_STREAM);  // inline: ordinary data
  int one = 1;
  ASSERT_EQ(setsockopt(r.b, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)), 0);
  ASSERT_EQ(send(r.a, "ab", 2, MSG_OOB), 2);
  ASSERT_EQ(send(r.a, "c", 1, 0), 1);
  EXPECT_EQ(Recv(r.b, 0), "a");
  EXPECT_EQ(Recv(r.b, 0), "bc");
  EXPECT_EQ(Inq(r.b), 0);
}

TEST(UnixOobTest, MarkEndsWaitall) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "abc", 3, MSG_OOB), 3);
  ASSERT_EQ(send(p.a, "de", 2, 0), 2);
  char buf[8];
  EXPECT_EQ(recv(p.b, buf, 5, MSG_WAITALL), 2);
}

TEST(UnixOobTest, TakenFirstThenTheMarkStillSplits) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "abc", 3, MSG_OOB), 3);
  ASSERT_EQ(send(p.a, "de", 2, 0), 2);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "c");
  EXPECT_EQ(Recv(p.b, 0), "ab");
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Recv(p.b, 0), "de");
  EXPECT_EQ(AtMark(p.b), 0);
}

TEST(UnixOobTest, AtTheMarkFirst) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "c", 1, MSG_OOB), 1);
  ASSERT_EQ(send(p.a, "de", 2, 0), 2);
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Recv(p.b, 0), "de");
  EXPECT_EQ(AtMark(p.b), 0);
}

TEST(UnixOobTest, Inline) {
  Pair p = MakePair(SOCK_STREAM);
  int one = 1;
  ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)), 0);
  int v = 0;
  socklen_t vl = sizeof(v);
  ASSERT_EQ(getsockopt(p.b, SOL_SOCKET, SO_OOBINLINE, &v, &vl), 0);
  EXPECT_EQ(v, 1);
  ASSERT_EQ(send(p.a, "abc", 3, MSG_OOB), 3);
  ASSERT_EQ(send(p.a, "de", 2, 0), 2);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "EINVAL");
  EXPECT_EQ(Recv(p.b, 0), "ab");
  EXPECT_EQ(AtMark(p.b), 1);
  EXPECT_EQ(Revents(p.b), POLLIN | POLLPRI | POLLOUT);
  EXPECT_EQ(Recv(p.b, 0), "cde");
  EXPECT_EQ(Revents(p.b), POLLOUT);
}

TEST(UnixOobTest, ANewByteReplacesTheOld) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "a", 1, MSG_OOB), 1);
  ASSERT_EQ(send(p.a, "b", 1, MSG_OOB), 1);
  EXPECT_EQ(AtMark(p.b), 0);  // 'a' is ordinary data now
  EXPECT_EQ(Recv(p.b, MSG_OOB), "b");
  EXPECT_EQ(Recv(p.b, 0), "a");
  EXPECT_EQ(Recv(p.b, 0), "EAGAIN");

  Pair q = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(q.a, "xa", 2, MSG_OOB), 2);
  ASSERT_EQ(send(q.a, "yb", 2, MSG_OOB), 2);
  EXPECT_EQ(Recv(q.b, 0), "xay");
  EXPECT_EQ(AtMark(q.b), 1);
  EXPECT_EQ(Recv(q.b, 0), "EAGAIN");  // 'b' dropped, nothing after it
}

TEST(UnixOobTest, ZeroLengthReceiveStillTakesIt) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "a", 1, MSG_OOB), 1);
  EXPECT_EQ(recv(p.b, nullptr, 0, MSG_OOB), 1);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "EINVAL");
}

TEST(UnixOobTest, Errors) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_ERRNO(EOPNOTSUPP, send(p.a, "", 0, MSG_OOB));
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  char c;
  EXPECT_ERRNO(EINVAL, recv(s, &c, 1, MSG_OOB));
  EXPECT_ERRNO(ENOTCONN, send(s, "a", 1, MSG_OOB));
  EXPECT_EQ(AtMark(s), 0);
  Pair shut = MakePair(SOCK_STREAM);
  ASSERT_EQ(shutdown(shut.b, SHUT_RD), 0);
  EXPECT_ERRNO(EPIPE, send(shut.a, "a", 1, MSG_OOB | MSG_NOSIGNAL));
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    Pair d = MakePair(type);
    SCOPED_TRACE(type);
    EXPECT_ERRNO(EOPNOTSUPP, send(d.a, "a", 1, MSG_OOB));
    EXPECT_ERRNO(EOPNOTSUPP, recv(d.b, &c, 1, MSG_OOB | MSG_DONTWAIT));
    int v;
    EXPECT_ERRNO(EOPNOTSUPP, ioctl(d.a, SIOCATMARK, &v));
  }
}

TEST(UnixOobTest, SurvivesThePeersClose) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(p.a, "a", 1, MSG_OOB), 1);
  p.a.Close();
  EXPECT_TRUE(Revents(p.b) & POLLPRI);
  EXPECT_EQ(Recv(p.b, MSG_OOB), "a");
  EXPECT_FALSE(Revents(p.b) & POLLPRI);
  EXPECT_EQ(Recv(p.b, 0), "");
}

TEST(UnixOobTest, Epollpri) {
  Pair p = MakePair(SOCK_STREAM);
  Fd ep(epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLPRI | EPOLLET;
  ev.data.u32 = 7;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p.b, &ev), 0);
  epoll_event out{};
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
  ASSERT_EQ(send(p.a, "ab", 2, 0), 2);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);  // data, but nothing urgent
  ASSERT_EQ(send(p.a, "c", 1, MSG_OOB), 1);
  ASSERT_EQ(epoll_wait(ep, &out, 1, 1000), 1);
  EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLPRI));
  EXPECT_EQ(out.data.u32, 7u);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);  // edge-triggered
  EXPECT_EQ(Recv(p.b, MSG_OOB), "c");
  ev.events = EPOLLPRI;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, p.b, &ev), 0);
  EXPECT_EQ(epoll_wait(ep, &out, 1, 0), 0);
}

// A blocked poll for POLLPRI alone wakes when the byte comes.
TEST(UnixOobTest, PollWakesForPri) {
  Pair p = MakePair(SOCK_STREAM);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    usleep(100 * 1000);
    _exit(send(p.a, "z", 1, MSG_OOB) == 1 ? 0 : 1);
  }
  pollfd pf{p.b, POLLPRI, 0};
  EXPECT_EQ(poll(&pf, 1, 10000), 1);
  EXPECT_EQ(pf.revents, POLLPRI);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(status, 0);
}

volatile sig_atomic_t g_urg = 0;
volatile sig_atomic_t g_urg_code = 0;
void OnUrg(int, siginfo_t* si, void*) {
  g_urg = g_urg + 1;
  g_urg_code = si->si_code;
}

// sk_send_sigurg(): the receiving socket's owner hears SIGURG, whether or
// not O_ASYNC is on; without an owner nobody does.
TEST(UnixOobTest, SigurgToTheOwner) {
  int status = RunInChild([] {
    struct sigaction sa {};
    sa.sa_sigaction = OnUrg;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGURG, &sa, nullptr) != 0) return 1;
    Pair p = MakePair(SOCK_STREAM);
    if (send(p.a, "a", 1, MSG_OOB) != 1 || g_urg != 0) return 2;
    if (fcntl(p.b, F_SETOWN, getpid()) != 0) return 3;
    if (send(p.a, "b", 1, MSG_OOB) != 1) return 4;
    if (g_urg != 1 || g_urg_code != SI_KERNEL) return 5;
    // Ordinary data: no SIGURG.
    if (send(p.a, "c", 1, 0) != 1 || g_urg != 1) return 6;
    // The sender's own owner is not told.
    if (fcntl(p.b, F_SETOWN, 0) != 0 || fcntl(p.a, F_SETOWN, getpid()) != 0) return 7;
    if (send(p.a, "d", 1, MSG_OOB) != 1 || g_urg != 1) return 8;
    // A process group owner.
    if (setpgid(0, 0) != 0 || fcntl(p.b, F_SETOWN, -getpgrp()) != 0) return 9;
    if (send(p.a, "e", 1, MSG_OOB) != 1 || g_urg != 2) return 10;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace syscall_test
