// Unix-domain socket semantics of issue 19 (each as Linux's af_unix.c):
// credentials on streams, shutdown poll events of datagram and seqpacket
// sockets, writes to a closed peer, capacity and POLLOUT, SO_SNDBUF
// wakeups, timeouts and signals, listener close and backlog, MSG_TRUNC over
// many iovecs, MSG_PEEK with SCM_RIGHTS, unbound senders.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

void SendCred(int fd, const char* data) {
  ASSERT_EQ(send(fd, data, strlen(data), 0), static_cast<ssize_t>(strlen(data)));
}

// One recvmsg with room for credentials: the bytes and the sender's pid.
std::pair<std::string, pid_t> RecvCred(int fd) {
  MsgBuf m;
  ssize_t n = recvmsg(fd, &m.h, MSG_DONTWAIT);
  if (n < 0) return {"err", -1};
  cmsghdr* c = CMSG_FIRSTHDR(&m.h);
  pid_t pid = -1;
  if (c && c->cmsg_type == SCM_CREDENTIALS) {
    ucred u;
    memcpy(&u, CMSG_DATA(c), sizeof(u));
    pid = u.pid;
  }
  return {std::string(m.data, n), pid};
}

TEST(UnixSocketSemantics, StreamCredentialsAreNotCoalescedAcrossSenders) {
  Pair p = MakePair(SOCK_STREAM);
  int one = 1;
  ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  // A child writes and exits (and is reaped) while its credentials are queued.
  pid_t child = fork();
  if (child == 0) _exit(send(p.a, "a", 1, 0) == 1 ? 0 : 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  SendCred(p.a, "b");
  SendCred(p.a, "c");
  auto first = RecvCred(p.b);
  EXPECT_EQ(first.first, "a");
  EXPECT_EQ(first.second, child);
  auto second = RecvCred(p.b);  // the same writer twice: one read
  EXPECT_EQ(second.first, "bc");
  EXPECT_EQ(second.second, getpid());
}

TEST(UnixSocketSemantics, StreamWithoutPasscredCoalescesWriters) {
  Pair p = MakePair(SOCK_STREAM);
  pid_t child = fork();
  if (child == 0) _exit(send(p.a, "a", 1, 0) == 1 ? 0 : 1);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  SendCred(p.a, "b");
  char buf[8];
  EXPECT_EQ(recv(p.b, buf, sizeof(buf), 0), 2);
}

TEST(UnixSocketSemantics, DatagramShutdownPollEvents) {
  Pair p = MakePair(SOCK_DGRAM);
  EXPECT_EQ(PollNow(p.a), POLLOUT);
  ASSERT_EQ(shutdown(p.a, SHUT_RD), 0);
  EXPECT_EQ(PollNow(p.a), POLLIN | POLLOUT | POLLRDHUP);
  EXPECT_EQ(PollNow(p.b), POLLOUT);  // a datagram peer is not told
  char c;
  EXPECT_ERRNO(EAGAIN, recv(p.a, &c, 1, MSG_DONTWAIT));  // only seqpacket says EOF
  EXPECT_EQ(recv(p.a, &c, 1, 0), 0);                     // a blocking read does not wait
  ASSERT_EQ(shutdown(p.a, SHUT_WR), 0);
  EXPECT_EQ(PollNow(p.a), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  EXPECT_ERRNO(EPIPE, send(p.a, "x", 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(EPIPE, send(p.b, "x", 1, MSG_NOSIGNAL));  // a's receive side is shut
}

TEST(UnixSocketSemantics, SeqpacketShutdownPollEvents) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_EQ(send(p.a, "m", 1, 0), 1);
  ASSERT_EQ(shutdown(p.a, SHUT_WR), 0);
  EXPECT_EQ(PollNow(p.b), POLLIN | POLLOUT | POLLRDHUP);
  EXPECT_EQ(PollNow(p.a), POLLOUT);
  EXPECT_ERRNO(EPIPE, send(p.a, "x", 1, MSG_NOSIGNAL));
  char c;
  EXPECT_EQ(recv(p.b, &c, 1, 0), 1);  // the pending message first
  EXPECT_EQ(recv(p.b, &c, 1, MSG_DONTWAIT), 0);
  EXPECT_EQ(recv(p.b, &c, 1, 0), 0);
  ASSERT_EQ(shutdown(p.b, SHUT_WR), 0);
  EXPECT_EQ(PollNow(p.a), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  EXPECT_EQ(PollNow(p.b), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
}

TEST(UnixSocketSemantics, ShutdownWakesPollersWaitingForHangupsOnly) {
  for (int type : {SOCK_SEQPACKET, SOCK_STREAM}) {
    Pair p = MakePair(type);
    Fd ep(epoll_create1(0));
    epoll_event ev{};
    ev.events = EPOLLRDHUP;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p.b, &ev), 0);
    std::thread t([&] {
      usleep(50000);
      shutdown(p.a, SHUT_WR);
    });
    pollfd pf{p.b, POLLRDHUP, 0};
    EXPECT_EQ(poll(&pf, 1, 5000), 1);
    EXPECT_EQ(pf.revents, POLLRDHUP);
    epoll_event out;
    EXPECT_EQ(epoll_wait(ep, &out, 1, 5000), 1);
    EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLRDHUP));
    t.join();
    // A full close is a hangup for a poller of POLLHUP alone (events 0).
    std::thread t2([&] {
      usleep(50000);
      p.a.Close();
    });
    pollfd ph{p.b, 0, 0};
    EXPECT_EQ(poll(&ph, 1, 5000), 1);
    EXPECT_EQ(ph.revents, POLLHUP);
    t2.join();
  }
}

TEST(UnixSocketSemantics, ZeroLengthMessages) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_EQ(send(p.a, "", 0, 0), 0);
  EXPECT_EQ(PollNow(p.b) & POLLIN, POLLIN);
  char c;
  EXPECT_EQ(recv(p.b, &c, 1, MSG_DONTWAIT), 0);  // the empty message
  EXPECT_ERRNO(EAGAIN, recv(p.b, &c, 1, MSG_DONTWAIT));
  Pair d = MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(d.a, "", 0, 0), 0);
  EXPECT_EQ(recv(d.b, &c, 1, MSG_DONTWAIT), 0);
  EXPECT_ERRNO(EAGAIN, recv(d.b, &c, 1, MSG_DONTWAIT));
}

TEST(UnixSocketSemantics, WritesToAClosedPeer) {
  Pair s = MakePair(SOCK_STREAM);
  s.b.Close();
  EXPECT_ERRNO(EPIPE, send(s.a, "x", 1, MSG_NOSIGNAL));
  EXPECT_EQ(PollNow(s.a), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  Pair q = MakePair(SOCK_SEQPACKET);
  q.b.Close();
  EXPECT_ERRNO(EPIPE, send(q.a, "x", 1, MSG_NOSIGNAL));
  char c;
  EXPECT_EQ(recv(q.a, &c, 1, 0), 0);
  Pair d = MakePair(SOCK_DGRAM);
  d.b.Close();
  EXPECT_ERRNO(ECONNREFUSED, send(d.a, "x", 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(ENOTCONN, send(d.a, "x", 1, MSG_NOSIGNAL));  // then disconnected
  // A stream peer that leaves data unread resets us.
  Pair r = MakePair(SOCK_STREAM);
  ASSERT_EQ(send(r.a, "abc", 3, 0), 3);
  r.b.Close();
  EXPECT_EQ(PollNow(r.a), POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR);
  EXPECT_ERRNO(ECONNRESET, recv(r.a, &c, 1, MSG_DONTWAIT));
  EXPECT_EQ(recv(r.a, &c, 1, MSG_DONTWAIT), 0);
  // A datagram sent to a name whose socket is gone.
  std::string name = UniqueName("gone");
  auto [addr, len] = AbstractAddr(name);
  {
    Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
    ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  }
  Fd tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, sendto(tx, "x", 1, 0, reinterpret_cast<sockaddr*>(&addr), len));
}

TEST(UnixSocketSemantics, StreamPollOutFollowsTheSendBuffer) {
  Pair p = MakePair(SOCK_STREAM);
  int fl = fcntl(p.a, F_GETFL);
  ASSERT_EQ(fcntl(p.a, F_SETFL, fl | O_NONBLOCK), 0);
  std::vector<char> buf(65536, 'x');
  size_t total = 0;
  for (;;) {
    ssize_t n = send(p.a, buf.data(), buf.size(), 0);
    if (n < 0) break;
    total += n;
  }
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GT(total, 0u);
  EXPECT_EQ(PollNow(p.a) & POLLOUT, 0);
  int outq = 0, inq = 0;
  ASSERT_EQ(ioctl(p.a, TIOCOUTQ, &outq), 0);
  ASSERT_EQ(ioctl(p.b, FIONREAD, &inq), 0);
  EXPECT_GE(static_cast<size_t>(outq), total);  // the charge: data and overhead
  EXPECT_EQ(static_cast<size_t>(inq), total);
  size_t got = 0;
  while (got < total) {
    ssize_t n = recv(p.b, buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0);
    got += n;
  }
  EXPECT_EQ(PollNow(p.a) & POLLOUT, POLLOUT);
  ASSERT_EQ(ioctl(p.a, TIOCOUTQ, &outq), 0);
  EXPECT_EQ(outq, 0);
}

TEST(UnixSocketSemantics, DatagramPollOutFollowsTheReceiveQueue) {
  std::string name = UniqueName("dgq");
  auto [addr, len] = AbstractAddr(name);
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  Fd tx(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  ASSERT_EQ(connect(tx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  int sent = 0;
  while (send(tx, "d", 1, 0) == 1) ++sent;
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GT(sent, 0);
  EXPECT_EQ(PollNow(tx) & POLLOUT, 0);
  // A poller waiting for room is woken by a read.
  std::thread t([&] {
    usleep(50000);
    char c;
    recv(rx, &c, 1, 0);
  });
  pollfd pf{tx, POLLOUT, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(pf.revents, POLLOUT);
  t.join();
  EXPECT_EQ(send(tx, "d", 1, 0), 1);
}

TEST(UnixSocketSemantics, RaisingSndbufUnblocksABlockedWriter) {
  Pair p = MakePair(SOCK_STREAM);
  int small = 4096;
  ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  std::atomic<ssize_t> wrote{-2};
  std::thread t([&] {
    std::vector<char> buf(65536, 'w');
    wrote = write(p.a, buf.data(), buf.size());
  });
  usleep(200000);
  EXPECT_EQ(wrote.load(), -2);  // blocked: nobody reads
  int big = 1 << 20;
  ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
  for (int i = 0; i < 500 && wrote.load() == -2; ++i) usleep(10000);
  EXPECT_EQ(wrote.load(), 65536);
  if (wrote.load() == -2) shutdown(p.b, SHUT_RD);  // let the writer go
  t.join();
}

TEST(UnixSocketSemantics, SndbufIsDoubledAndClamped) {
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  int v = 10000;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
  int got = 0;
  socklen_t l = sizeof(got);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_SNDBUF, &got, &l), 0);
  EXPECT_EQ(got, 20000);
  v = 1;
  ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
  ASSERT_EQ(getsockopt(s, SOL_SOCKET, SO_SNDBUF, &got, &l), 0);
  EXPECT_EQ(got, 4608);  // SOCK_MIN_SNDBUF
}

volatile sig_atomic_t g_signals = 0;
void OnSignal(int) { g_signals = g_signals + 1; }

// Installs a SIGUSR1 handler (with or without SA_RESTART) and sends the
// signal to this thread after `ms`.
struct SignalLater {
  std::thread t;
  SignalLater(bool restart, int ms) {
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, nullptr);
    pthread_t self = pthread_self();
    t = std::thread([self, ms] {
      usleep(ms * 1000);
      pthread_kill(self, SIGUSR1);
    });
  }
  ~SignalLater() {
    t.join();
    signal(SIGUSR1, SIG_DFL);
  }
};

TEST(UnixSocketSemantics, BlockingCallsAndSignals) {
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    char c;
    {
      SignalLater s(/*restart=*/false, 50);
      EXPECT_ERRNO(EINTR, recv(p.b, &c, 1, 0));
    }
    {
      // SA_RESTART: the read goes on and gets what comes later.
      SignalLater s(/*restart=*/true, 50);
      std::thread w([&] {
        usleep(200000);
        send(p.a, "r", 1, 0);
      });
      EXPECT_EQ(recv(p.b, &c, 1, 0), 1);
      w.join();
    }
    {
      // With SO_RCVTIMEO, never restarted (signal(7)).
      timeval tv{5, 0};
      ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
      SignalLater s(/*restart=*/true, 50);
      int64_t t0 = NowMs();
      EXPECT_ERRNO(EINTR, recv(p.b, &c, 1, 0));
      EXPECT_LT(NowMs() - t0, 4000);
    }
  }
}

TEST(UnixSocketSemantics, Timeouts) {
  Pair p = MakePair(SOCK_STREAM);
  timeval tv{0, 100000};
  ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  char c;
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, recv(p.b, &c, 1, 0));
  EXPECT_GE(NowMs() - t0, 90);
  int small = 4096;
  ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
  std::vector<char> buf(1 << 20, 's');
  ssize_t n = send(p.a, buf.data(), buf.size(), 0);  // partial, after the timeout
  EXPECT_GT(n, 0);
  EXPECT_LT(n, static_cast<ssize_t>(buf.size()));
  EXPECT_ERRNO(EAGAIN, send(p.a, buf.data(), buf.size(), 0));
  std::string name = UniqueName("acc");
  auto [addr, len] = AbstractAddr(name);
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 1), 0);
  ASSERT_EQ(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  EXPECT_ERRNO(EAGAIN, accept(l, nullptr, nullptr));
}

TEST(UnixSocketSemantics, ListenerBacklogAndCloseWithPendingConnections) {
  std::string name = UniqueName("lsn");
  auto [addr, len] = AbstractAddr(name);
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 0), 0);
  Fd c1(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ASSERT_EQ(connect(c1, reinterpret_cast<sockaddr*>(&addr), len), 0);  // backlog 0 takes one
  Fd c2(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  EXPECT_ERRNO(EAGAIN, connect(c2, reinterpret_cast<sockaddr*>(&addr), len));
  // A blocking connect waits for room; a signal ends it.
  Fd c3(socket(AF_UNIX, SOCK_STREAM, 0));
  {
    SignalLater s(/*restart=*/false, 50);
    EXPECT_ERRNO(EINTR, connect(c3, reinterpret_cast<sockaddr*>(&addr), len));
  }
  ASSERT_EQ(send(c1, "x", 1, 0), 1);  // queued on the embryo
  l.Close();
  EXPECT_EQ(PollNow(c1), POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR);
  int err = 0;
  socklen_t el = sizeof(err);
  ASSERT_EQ(getsockopt(c1, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_ERRNO(EPIPE, send(c1, "y", 1, MSG_NOSIGNAL));
  char c;
  EXPECT_EQ(recv(c1, &c, 1, 0), 0);
  EXPECT_ERRNO(ECONNREFUSED, connect(c2, reinterpret_cast<sockaddr*>(&addr), len));
}

TEST(UnixSocketSemantics, AcceptGetsDataSentBeforeIt) {
  std::string name = UniqueName("early");
  auto [addr, len] = AbstractAddr(name);
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 4), 0);
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(send(c, "early", 5, 0), 5);
  EXPECT_EQ(PollNow(l, POLLIN | POLLOUT), POLLIN);  // a listener is never writable
  Fd a(accept(l, nullptr, nullptr));
  ASSERT_GE(a, 0);
  char buf[8];
  EXPECT_EQ(recv(a, buf, sizeof(buf), 0), 5);
  EXPECT_EQ(PollNow(l, POLLIN | POLLOUT), 0);
}

TEST(UnixSocketSemantics, SeqpacketSendtoWhenUnconnected) {
  std::string name = UniqueName("sq");
  auto [addr, len] = AbstractAddr(name);
  Fd l(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 1), 0);
  Fd s(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  EXPECT_ERRNO(ENOTCONN, send(s, "x", 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(ENOTCONN, sendto(s, "x", 1, MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len));
  char c;
  EXPECT_ERRNO(ENOTCONN, recv(s, &c, 1, MSG_DONTWAIT));
  ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&addr), len), 0);
  // Connected: an address is ignored.
  EXPECT_EQ(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&addr), len), 1);
}

TEST(UnixSocketSemantics, MsgTruncOverManyIovecs) {
  Pair p = MakePair(SOCK_DGRAM);
  std::string msg;
  std::vector<iovec> in;
  for (int i = 0; i < 64; ++i) msg += static_cast<char>('A' + i % 26);
  for (int i = 0; i < 64; ++i) in.push_back({&msg[i], 1});
  msghdr h{};
  h.msg_iov = in.data();
  h.msg_iovlen = in.size();
  ASSERT_EQ(sendmsg(p.a, &h, 0), 64);
  ASSERT_EQ(sendmsg(p.a, &h, 0), 64);
  char a[3], b[5];
  iovec out[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
  msghdr r{};
  r.msg_iov = out;
  r.msg_iovlen = 2;
  EXPECT_EQ(recvmsg(p.b, &r, 0), 8);
  EXPECT_EQ(r.msg_flags & MSG_TRUNC, MSG_TRUNC);
  EXPECT_EQ(std::string(a, 3) + std::string(b, 5), msg.substr(0, 8));
  r.msg_flags = 0;
  EXPECT_EQ(recvmsg(p.b, &r, MSG_TRUNC), 64);  // the real length
  EXPECT_EQ(r.msg_flags & MSG_TRUNC, MSG_TRUNC);
}

TEST(UnixSocketSemantics, PeekInstallsPassedFiles) {
  Pair p = MakePair(SOCK_STREAM);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  ASSERT_EQ(SendFds(p.a, {pfd[1]}), 1);
  close(pfd[1]);
  for (int flags : {static_cast<int>(MSG_PEEK), 0}) {
    char d;
    char rbuf[CMSG_SPACE(sizeof(int))] = {};
    iovec riov{&d, 1};
    msghdr r{};
    r.msg_iov = &riov;
    r.msg_iovlen = 1;
    r.msg_control = rbuf;
    r.msg_controllen = sizeof(rbuf);
    ASSERT_EQ(recvmsg(p.b, &r, flags), 1);
    cmsghdr* rc = CMSG_FIRSTHDR(&r);
    ASSERT_NE(rc, nullptr);
    ASSERT_EQ(rc->cmsg_type, SCM_RIGHTS);
    int fd;
    memcpy(&fd, CMSG_DATA(rc), sizeof(int));
    EXPECT_EQ(write(fd, "z", 1), 1);
    close(fd);
  }
  char z[4];
  EXPECT_EQ(read(pfd[0], z, sizeof(z)), 2);
  close(pfd[0]);
}

TEST(UnixSocketSemantics, UnboundSenderHasNoAddress) {
  std::string name = UniqueName("ub");
  auto [addr, len] = AbstractAddr(name);
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  Fd tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(tx, "u", 1, 0, reinterpret_cast<sockaddr*>(&addr), len), 1);
  sockaddr_un from{};
  socklen_t fl = sizeof(from);
  char c;
  ASSERT_EQ(recvfrom(rx, &c, 1, 0, reinterpret_cast<sockaddr*>(&from), &fl), 1);
  EXPECT_EQ(fl, 0u);
  sockaddr_un self{};
  socklen_t sl = sizeof(self);
  ASSERT_EQ(getsockname(tx, reinterpret_cast<sockaddr*>(&self), &sl), 0);
  EXPECT_EQ(sl, sizeof(sa_family_t));
  EXPECT_ERRNO(ENOTCONN, getpeername(tx, reinterpret_cast<sockaddr*>(&self), &sl));
}

// Each pair carries the previous one in flight: releasing the last frees
// them all, one inside the other (the sentry must not recurse that deep).
TEST(UnixSocketSemantics, ReleasingAChainOfQueuedSocketsEnds) {
  constexpr int kDepth = 20000;
  int prev[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, prev), 0);
  for (int i = 0; i < kDepth; ++i) {
    int cur[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, cur), 0);
    ASSERT_EQ(SendFds(cur[0], {prev[0], prev[1]}), 1) << i << ": " << strerror(errno);
    close(prev[0]);
    close(prev[1]);
    prev[0] = cur[0];
    prev[1] = cur[1];
  }
  close(prev[0]);
  close(prev[1]);
  Pair p = MakePair(SOCK_STREAM);  // still alive
  ASSERT_EQ(send(p.a, "k", 1, 0), 1);
  char k;
  EXPECT_EQ(recv(p.b, &k, 1, 0), 1);
}

// unix_gc(): a socket pair sent over itself, holding a bound listener, is
// held by nothing else once closed; a later release collects it, and the
// listener's name is free again.
TEST(UnixSocketSemantics, CyclesOfQueuedSocketsAreCollected) {
  std::string name = UniqueName("cycle");
  auto [addr, len] = AbstractAddr(name);
  {
    Pair p = MakePair(SOCK_STREAM);
    Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(listen(l, 1), 0);
    ASSERT_EQ(SendFds(p.a, {p.a, p.b, l}), 1);  // b's queue holds a, b and l
    // And a listener queued on its own embryo.
    Fd l2(socket(AF_UNIX, SOCK_STREAM, 0));
    auto [addr2, len2] = AbstractAddr(name + "-2");
    ASSERT_EQ(bind(l2, reinterpret_cast<sockaddr*>(&addr2), len2), 0);
    ASSERT_EQ(listen(l2, 1), 0);
    Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr2), len2), 0);
    ASSERT_EQ(SendFds(c, {l2}), 1);
  }
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    Fd(socket(AF_UNIX, SOCK_DGRAM, 0));  // a release runs the collector
    Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
    freed = bind(s, reinterpret_cast<sockaddr*>(&addr), len) == 0;
    if (!freed) usleep(10000);
  }
  EXPECT_TRUE(freed) << "the cycle's listener still holds its name";
  auto [addr2, len2] = AbstractAddr(name + "-2");
  Fd s2(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_EQ(bind(s2, reinterpret_cast<sockaddr*>(&addr2), len2), 0)
      << "the listener queued on its own embryo still holds its name";
}

// The fds of the first SCM_RIGHTS message of one recvmsg on `via` (empty
// if none came).
std::vector<int> RecvFds(int via) {
  MsgBuf m;
  if (recvmsg(via, &m.h, MSG_DONTWAIT) < 1) return {};
  cmsghdr* c = CMSG_FIRSTHDR(&m.h);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return {};
  std::vector<int> fds((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  memcpy(fds.data(), CMSG_DATA(c), fds.size() * sizeof(int));
  return fds;
}

// unix_gc() collects only what no live socket holds: sockets that only
// queues hold, in a chain (queued in a closed socket that is itself queued)
// or in a listener's pending connection, stay while a socket an fd holds
// has them queued. Witnesses: a released socket hangs up its kept peer.
TEST(UnixSocketSemantics, QueuedSocketsThatALiveSocketHoldsAreNotCollected) {
  Pair x = MakePair(SOCK_STREAM);  // x.b's queue holds everything below
  Pair w1 = MakePair(SOCK_STREAM), w2 = MakePair(SOCK_STREAM);
  std::string name = UniqueName("held");
  auto [addr, len] = AbstractAddr(name);
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  {
    Pair pq = MakePair(SOCK_STREAM);
    ASSERT_EQ(SendFds(pq.a, {w1.a}), 1);  // q's queue holds w1.a
    Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(listen(l, 1), 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(SendFds(c, {w2.a}), 1);  // the pending connection's queue holds w2.a
    ASSERT_EQ(SendFds(x.a, {pq.a, pq.b, l}), 1);
    w1.a.Close();
    w2.a.Close();
  }
  for (int i = 0; i < 20; ++i) Fd(socket(AF_UNIX, SOCK_DGRAM, 0));  // releases collect
  usleep(100000);  // Linux collects from a workqueue
  EXPECT_EQ(PollNow(w1.b) & POLLHUP, 0) << "a socket queued in a queued socket was collected";
  EXPECT_EQ(PollNow(w2.b) & POLLHUP, 0) << "a socket queued in a pending connection was collected";
  std::vector<int> held = RecvFds(x.b);
  ASSERT_EQ(held.size(), 3u);
  Fd p(held[0]), q(held[1]), l(held[2]);
  std::vector<int> in_q = RecvFds(q);
  ASSERT_EQ(in_q.size(), 1u);
  Fd a1(in_q[0]);
  Fd e(accept(l, nullptr, nullptr));
  ASSERT_GE(e, 0);
  std::vector<int> in_e = RecvFds(e);
  ASSERT_EQ(in_e.size(), 1u);
  Fd a2(in_e[0]);
  char z;
  ASSERT_EQ(send(a1, "1", 1, 0), 1);
  EXPECT_EQ(recv(w1.b, &z, 1, MSG_DONTWAIT), 1);
  ASSERT_EQ(send(a2, "2", 1, 0), 1);
  EXPECT_EQ(recv(w2.b, &z, 1, MSG_DONTWAIT), 1);
}

}  // namespace
}  // namespace syscall_test
