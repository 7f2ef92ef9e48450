// Datagram and seqpacket unix sockets (issue 19), the cases unix_socket's
// stream-first tests leave out: shutdown(SHUT_RD/SHUT_WR/SHUT_RDWR) of
// either end with what each end then polls, sends and receives
// (unix_shutdown() tells a seqpacket peer, never a datagram one;
// unix_dgram_poll()); a poller of its own socket woken by that socket's
// shutdown; a blocked sender woken by raising SO_SNDBUF; SO_RCVTIMEO and
// SO_SNDTIMEO; filesystem names; a listener closed with a pending
// seqpacket connection; a sender or connect() blocked on a full receiver
// that closes (LTP sendmsg02 hung there).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr short kAll = POLLIN | POLLOUT | POLLRDHUP;

struct ShutdownCase {
  int type;
  int how;
  // What the shut end (a) and its peer (b) poll for kAll afterwards.
  short poll_a, poll_b;
  // send(MSG_DONTWAIT|MSG_NOSIGNAL) of one byte from a and from b: 1 or -errno.
  int send_a, send_b;
  // recv(MSG_DONTWAIT) of an empty queue on a and on b: 0 (EOF) or -errno.
  int recv_a, recv_b;
};

int SendResult(int fd) {
  ssize_t n = send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  return n < 0 ? -errno : static_cast<int>(n);
}

int RecvResult(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  return n < 0 ? -errno : static_cast<int>(n);
}

TEST(UnixMsgTest, ShutdownOfEitherEnd) {
  constexpr short kIn = POLLIN | POLLRDHUP;
  const ShutdownCase cases[] = {
      // A datagram peer is never told (unix_shutdown()).
      {SOCK_DGRAM, SHUT_RD, kIn | POLLOUT, POLLOUT, 1, -EPIPE, -EAGAIN, -EAGAIN},
      {SOCK_DGRAM, SHUT_WR, POLLOUT, POLLOUT, -EPIPE, 1, -EAGAIN, -EAGAIN},
      {SOCK_DGRAM, SHUT_RDWR, kIn | POLLOUT | POLLHUP, POLLOUT, -EPIPE, -EPIPE, -EAGAIN, -EAGAIN},
      // A seqpacket peer gets the mirror image; EOF instead of EAGAIN.
      {SOCK_SEQPACKET, SHUT_RD, kIn | POLLOUT, POLLOUT, 1, -EPIPE, 0, -EAGAIN},
      {SOCK_SEQPACKET, SHUT_WR, POLLOUT, kIn | POLLOUT, -EPIPE, 1, -EAGAIN, 0},
      {SOCK_SEQPACKET, SHUT_RDWR, kIn | POLLOUT | POLLHUP, kIn | POLLOUT | POLLHUP, -EPIPE, -EPIPE,
       0, 0},
  };
  for (const ShutdownCase& c : cases) {
    SCOPED_TRACE(std::string(c.type == SOCK_DGRAM ? "dgram" : "seqpacket") + " how=" +
                 std::to_string(c.how));
    Pair p = MakePair(c.type);
    ASSERT_EQ(shutdown(p.a, c.how), 0);
    EXPECT_EQ(PollNow(p.a, kAll), c.poll_a);
    EXPECT_EQ(PollNow(p.b, kAll), c.poll_b);
    ASSERT_EQ(shutdown(p.a, c.how), 0);  // again: nothing changes
    EXPECT_EQ(PollNow(p.a, kAll), c.poll_a);
    EXPECT_EQ(PollNow(p.b, kAll), c.poll_b);
    EXPECT_EQ(RecvResult(p.a), c.recv_a);
    EXPECT_EQ(RecvResult(p.b), c.recv_b);
    EXPECT_EQ(SendResult(p.a), c.send_a);
    EXPECT_EQ(SendResult(p.b), c.send_b);
  }
}

TEST(UnixMsgTest, PendingMessageIsReadBeforeEof) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    ASSERT_EQ(send(p.b, "m", 1, 0), 1);
    ASSERT_EQ(shutdown(p.a, SHUT_RD), 0);
    char c = 0;
    EXPECT_EQ(recv(p.a, &c, 1, MSG_DONTWAIT), 1);
    EXPECT_EQ(c, 'm');
    EXPECT_EQ(recv(p.a, &c, 1, 0), 0);  // a blocking read does not wait
  }
}

TEST(UnixMsgTest, OwnShutdownWakesItsPollers) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    Fd ep(epoll_create1(0));
    epoll_event ev{};
    ev.events = EPOLLRDHUP;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &ev), 0);
    std::thread t([&] {
      usleep(50000);
      shutdown(p.a, SHUT_RD);
    });
    pollfd pf{p.a, POLLRDHUP, 0};
    EXPECT_EQ(poll(&pf, 1, 5000), 1);
    EXPECT_EQ(pf.revents, POLLRDHUP);
    epoll_event out{};
    EXPECT_EQ(epoll_wait(ep, &out, 1, 5000), 1);
    EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLRDHUP));
    t.join();
    // And a full shutdown is a hangup for a poller of nothing (POLLHUP).
    std::thread t2([&] {
      usleep(50000);
      shutdown(p.a, SHUT_WR);
    });
    pollfd ph{p.a, 0, 0};
    EXPECT_EQ(poll(&ph, 1, 5000), 1);
    EXPECT_EQ(ph.revents, POLLHUP);
    t2.join();
  }
}

// Fills `tx`'s send buffer with `size`-byte messages; how many went.
int FillWith(int tx, size_t size) {
  std::vector<char> buf(size, 'f');
  int n = 0;
  while (send(tx, buf.data(), buf.size(), MSG_DONTWAIT) == static_cast<ssize_t>(size)) ++n;
  EXPECT_EQ(errno, EAGAIN);
  return n;
}

TEST(UnixMsgTest, RaisingSndbufUnblocksABlockedSender) {
  constexpr size_t kSize = 2000;
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    int small = 4096;
    ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    EXPECT_GT(FillWith(p.a, kSize), 0);
    EXPECT_EQ(PollNow(p.a) & POLLOUT, 0);
    std::atomic<ssize_t> sent{-2};
    std::thread t([&] {
      std::vector<char> buf(kSize, 'w');
      sent = send(p.a, buf.data(), buf.size(), 0);
    });
    usleep(200000);
    EXPECT_EQ(sent.load(), -2);  // blocked: nobody reads
    int big = 1 << 20;
    ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
    for (int i = 0; i < 500 && sent.load() == -2; ++i) usleep(10000);
    EXPECT_EQ(sent.load(), static_cast<ssize_t>(kSize));
    if (sent.load() == -2) shutdown(p.b, SHUT_RD);  // let the sender go
    t.join();
    EXPECT_EQ(PollNow(p.a) & POLLOUT, POLLOUT);
  }
}

TEST(UnixMsgTest, ReceiveAndSendTimeouts) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    timeval tv{0, 100000};
    ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    char c;
    int64_t t0 = NowMs();
    EXPECT_ERRNO(EAGAIN, recv(p.b, &c, 1, 0));
    EXPECT_GE(NowMs() - t0, 90);
    timeval got{};
    socklen_t gl = sizeof(got);
    ASSERT_EQ(getsockopt(p.b, SOL_SOCKET, SO_RCVTIMEO, &got, &gl), 0);
    EXPECT_EQ(got.tv_sec, 0);
    EXPECT_EQ(got.tv_usec, 100000);

    int small = 4096;
    ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ASSERT_EQ(setsockopt(p.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    EXPECT_GT(FillWith(p.a, 2000), 0);
    std::vector<char> buf(2000, 's');
    t0 = NowMs();
    EXPECT_ERRNO(EAGAIN, send(p.a, buf.data(), buf.size(), 0));  // a message goes whole or not
    EXPECT_GE(NowMs() - t0, 90);
    // A message that can never fit is EMSGSIZE at once, not a wait.
    std::vector<char> huge(1 << 22, 'h');
    EXPECT_ERRNO(EMSGSIZE, send(p.a, huge.data(), huge.size(), 0));
  }
  // accept(2) of a seqpacket listener times out with SO_RCVTIMEO.
  auto [addr, len] = AbstractAddr(UniqueName("sqacc"));
  Fd l(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 1), 0);
  timeval tv{0, 100000};
  ASSERT_EQ(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  int64_t t0 = NowMs();
  EXPECT_ERRNO(EAGAIN, accept(l, nullptr, nullptr));
  EXPECT_GE(NowMs() - t0, 90);
}

std::string SunPath(const sockaddr_un& a, socklen_t len) {
  if (len <= offsetof(sockaddr_un, sun_path)) return "";
  return std::string(a.sun_path, strnlen(a.sun_path, len - offsetof(sockaddr_un, sun_path)));
}

// Socket files under TmpDir() (sun_path is 108 bytes; $TEST_TMPDIR is often
// longer), removed at the end.
struct SocketFiles {
  std::vector<std::string> paths;
  std::string Path(const char* base) {
    paths.push_back(TmpDir() + "/" + UniqueName(base));
    return paths.back();
  }
  ~SocketFiles() {
    for (const std::string& p : paths) unlink(p.c_str());
  }
};

TEST(UnixMsgTest, FilesystemNames) {
  SocketFiles dir;
  // seqpacket: a listener on a path; the accepted end and the client name it.
  std::string lpath = dir.Path("sq.sock");
  auto [laddr, llen] = PathAddr(lpath);
  Fd l(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&laddr), llen), 0);
  struct stat st {};
  ASSERT_EQ(stat(lpath.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ASSERT_EQ(listen(l, 1), 0);
  Fd c(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&laddr), llen), 0);
  sockaddr_un peer{};
  socklen_t pl = sizeof(peer);
  Fd a(accept(l, reinterpret_cast<sockaddr*>(&peer), &pl));
  ASSERT_GE(a, 0);
  EXPECT_EQ(pl, sizeof(sa_family_t));  // an unbound client has no name
  pl = sizeof(peer);
  ASSERT_EQ(getpeername(c, reinterpret_cast<sockaddr*>(&peer), &pl), 0);
  EXPECT_EQ(SunPath(peer, pl), lpath);
  pl = sizeof(peer);
  ASSERT_EQ(getsockname(a, reinterpret_cast<sockaddr*>(&peer), &pl), 0);
  EXPECT_EQ(SunPath(peer, pl), lpath);
  ASSERT_EQ(send(c, "q", 1, 0), 1);
  char ch;
  EXPECT_EQ(recv(a, &ch, 1, 0), 1);
  // Connecting to a path whose file is gone is ENOENT; to a path that is
  // not a socket ECONNREFUSED.
  ASSERT_EQ(unlink(lpath.c_str()), 0);
  Fd c2(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  EXPECT_ERRNO(ENOENT, connect(c2, reinterpret_cast<sockaddr*>(&laddr), llen));
  std::string plain = dir.Path("plain");
  ASSERT_TRUE(WriteFile(plain, "x"));
  auto [xaddr, xlen] = PathAddr(plain);
  EXPECT_ERRNO(ECONNREFUSED, connect(c2, reinterpret_cast<sockaddr*>(&xaddr), xlen));

  // dgram: a path-bound sender is named by recvfrom; a second bind of the
  // path is EADDRINUSE while the file exists.
  std::string rpath = dir.Path("rx.sock"), spath = dir.Path("tx.sock");
  auto [raddr, rlen] = PathAddr(rpath);
  auto [saddr, slen] = PathAddr(spath);
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0)), tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&raddr), rlen), 0);
  ASSERT_EQ(bind(tx, reinterpret_cast<sockaddr*>(&saddr), slen), 0);
  Fd again(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(EADDRINUSE, bind(again, reinterpret_cast<sockaddr*>(&raddr), rlen));
  ASSERT_EQ(sendto(tx, "d", 1, 0, reinterpret_cast<sockaddr*>(&raddr), rlen), 1);
  sockaddr_un from{};
  socklen_t fl = sizeof(from);
  ASSERT_EQ(recvfrom(rx, &ch, 1, 0, reinterpret_cast<sockaddr*>(&from), &fl), 1);
  EXPECT_EQ(SunPath(from, fl), spath);
}

TEST(UnixMsgTest, SeqpacketListenerClosedWithAPendingConnection) {
  auto [addr, len] = AbstractAddr(UniqueName("sqlsn"));
  Fd l(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 1), 0);
  Fd c(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(send(c, "x", 1, 0), 1);  // queued on the embryo
  l.Close();
  EXPECT_EQ(PollNow(c), POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR);
  char ch;
  EXPECT_ERRNO(ECONNRESET, recv(c, &ch, 1, MSG_DONTWAIT));
  EXPECT_EQ(recv(c, &ch, 1, MSG_DONTWAIT), 0);
  EXPECT_ERRNO(EPIPE, send(c, "y", 1, MSG_NOSIGNAL));
  Fd c2(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(c2, reinterpret_cast<sockaddr*>(&addr), len));
}

// Runs `blocked` (a call that blocks until `to_close` goes) on a thread,
// closes `to_close` once the call has blocked, and returns its -errno (or
// result); a call still blocked 10 s later fails the case (the hang guard
// ends it: the thread cannot be joined then).
long CloseWakes(Fd& to_close, std::function<long()> blocked) {
  ArmHangGuard(20);
  std::atomic<long> r{1000};
  std::thread t([&] {
    long n = blocked();
    r = n < 0 ? -errno : n;
  });
  usleep(200000);
  EXPECT_EQ(r.load(), 1000);  // blocked
  to_close.Close();
  for (int i = 0; i < 1000 && r.load() == 1000; ++i) usleep(10000);
  t.join();
  DisarmHangGuard();
  return r.load();
}

// unix_dgram_sendmsg() parks a sender on a full receiver in
// unix_wait_for_peer() holding the sock, never the file: the receiver's
// last close releases it (unix_release_sock()) and wakes the sender, whose
// next look-up of the name finds nobody bound: ECONNREFUSED.
TEST(UnixMsgTest, ReceiverClosedWakesASenderBlockedOnItsFullQueue) {
  auto [addr, len] = AbstractAddr(UniqueName("dgfull"));
  Fd r(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(r, reinterpret_cast<sockaddr*>(&addr), len), 0);
  Fd s(socket(AF_UNIX, SOCK_DGRAM, 0));
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  int n = 0;
  while (sendto(s, "x", 1, MSG_DONTWAIT, sa, len) == 1 && n < 100000) ++n;
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_GT(n, 0);
  EXPECT_EQ(CloseWakes(r, [&] { return long(sendto(s, "x", 1, 0, sa, len)); }), -ECONNREFUSED);
}

// The same for a connected sender (ECONNREFUSED once, then unconnected) and
// for connect() to a listener whose backlog is full.
TEST(UnixMsgTest, ReceiverClosedWakesAConnectedSenderAndAConnect) {
  auto [addr, len] = AbstractAddr(UniqueName("dgconn"));
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  Fd r(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(r, sa, len), 0);
  Fd s(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(connect(s, sa, len), 0);
  int n = 0;
  while (send(s, "x", 1, MSG_DONTWAIT) == 1 && n < 100000) ++n;
  ASSERT_EQ(errno, EAGAIN);
  EXPECT_EQ(CloseWakes(r, [&] { return long(send(s, "x", 1, 0)); }), -ECONNREFUSED);
  EXPECT_ERRNO(ENOTCONN, send(s, "x", 1, 0));

  auto [laddr, llen] = AbstractAddr(UniqueName("lsnfull"));
  auto* lsa = reinterpret_cast<sockaddr*>(&laddr);
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, lsa, llen), 0);
  ASSERT_EQ(listen(l, 0), 0);
  std::vector<Fd> pending;
  for (int i = 0; i < 100; ++i) {
    pending.emplace_back(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    if (connect(pending.back(), lsa, llen) != 0) break;
  }
  ASSERT_EQ(errno, EAGAIN);
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_EQ(CloseWakes(l, [&] { return long(connect(c, lsa, llen)); }), -ECONNREFUSED);
}

}  // namespace
}  // namespace syscall_test
