// Unix socket features of issue 19, each as Linux's net/unix/af_unix.c:
// abstract names in one table per socket type, autobind on send/connect
// with SO_PASSCRED, the socket file's write permission on connect,
// SO_PEEK_OFF with MSG_PEEK, ETOOMANYREFS once a user has more files in
// flight than RLIMIT_NOFILE, SO_PEERPIDFD and SO_PASSPIDFD (Linux 6.5; the
// host's 6.18 has them, so the sandbox does), SIGPIPE on EPIPE for stream
// sockets only, and a blocked stream writer that wakes only once a quarter
// of its send buffer or less is in flight.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

namespace syscall_test {
namespace {

sockaddr* Sa(sockaddr_un& a) { return reinterpret_cast<sockaddr*>(&a); }

// ---- Abstract names ----

// unix_abstract_hash() mixes in the type: each type has its own names.
TEST(UnixFeatureTest, AbstractNamesAreSeparatePerType) {
  auto [addr, len] = AbstractAddr(UniqueName("per-type"));
  Fd st(socket(AF_UNIX, SOCK_STREAM, 0));
  Fd dg(socket(AF_UNIX, SOCK_DGRAM, 0));
  Fd sp(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(bind(st, Sa(addr), len), 0);
  EXPECT_EQ(bind(dg, Sa(addr), len), 0) << strerror(errno);
  EXPECT_EQ(bind(sp, Sa(addr), len), 0) << strerror(errno);
  Fd st2(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(EADDRINUSE, bind(st2, Sa(addr), len));
  ASSERT_EQ(listen(sp, 1), 0);
  Fd c(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  EXPECT_EQ(connect(c, Sa(addr), len), 0) << strerror(errno);
  Fd tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(tx, "d", 1, 0, Sa(addr), len), 1);
  char ch;
  EXPECT_EQ(recv(dg, &ch, 1, MSG_DONTWAIT), 1);
  // The stream name is not listening: refused, although the seqpacket is.
  Fd c2(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(c2, Sa(addr), len));
  // getsockname of each says the same name.
  sockaddr_un got{};
  socklen_t gl = sizeof(got);
  ASSERT_EQ(getsockname(dg, Sa(got), &gl), 0);
  EXPECT_EQ(gl, len);
  EXPECT_EQ(memcmp(&got, &addr, len), 0);
}

// ---- Autobind ----

std::string NameOf(int fd, bool peer) {
  sockaddr_un a{};
  socklen_t l = sizeof(a);
  EXPECT_EQ((peer ? getpeername : getsockname)(fd, Sa(a), &l), 0);
  return std::string(reinterpret_cast<char*>(&a) + offsetof(sockaddr_un, sun_path),
                     l - offsetof(sockaddr_un, sun_path));
}

// unix_dgram_sendmsg(), unix_dgram_connect(), unix_stream_connect(): with
// SO_PASSCRED an unbound socket is autobound first, so that the receiver
// sees who sent (a NUL and five hex digits, unix(7)).
TEST(UnixFeatureTest, PasscredAutobindsOnSendAndConnect) {
  auto [addr, len] = AbstractAddr(UniqueName("autobind"));
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(rx, Sa(addr), len), 0);
  int one = 1;
  Fd tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_EQ(NameOf(tx, false), "");
  ASSERT_EQ(setsockopt(tx, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  EXPECT_EQ(NameOf(tx, false), "");  // not yet
  ASSERT_EQ(sendto(tx, "x", 1, 0, Sa(addr), len), 1);
  std::string name = NameOf(tx, false);
  ASSERT_EQ(name.size(), 6u);
  EXPECT_EQ(name[0], '\0');
  sockaddr_un from{};
  socklen_t fl = sizeof(from);
  char ch;
  ASSERT_EQ(recvfrom(rx, &ch, 1, 0, Sa(from), &fl), 1);
  EXPECT_EQ(fl, offsetof(sockaddr_un, sun_path) + 6);
  // connect() of a datagram socket, and of a stream socket.
  Fd tx2(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(setsockopt(tx2, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  ASSERT_EQ(connect(tx2, Sa(addr), len), 0);
  EXPECT_EQ(NameOf(tx2, false).size(), 6u);
  auto [saddr, slen] = AbstractAddr(UniqueName("autobind-l"));
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, Sa(saddr), slen), 0);
  ASSERT_EQ(listen(l, 1), 0);
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  ASSERT_EQ(connect(c, Sa(saddr), slen), 0);
  std::string cname = NameOf(c, false);
  EXPECT_EQ(cname.size(), 6u);
  Fd s(accept(l, nullptr, nullptr));
  EXPECT_EQ(NameOf(s, true), cname);
  // Without SO_PASSCRED nothing is bound.
  Fd plain(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(plain, "x", 1, 0, Sa(addr), len), 1);
  EXPECT_EQ(NameOf(plain, false), "");
}

// ---- Permissions ----

// unix_find_bsd(): connect and sendto need write permission on the
// socket file (EACCES), which bind made with the umask applied.
TEST(UnixFeatureTest, ConnectNeedsWritePermissionOnTheSocketFile) {
  std::string path = TmpDir() + "/" + UniqueName("perm");
  auto [addr, len] = PathAddr(path);
  mode_t old = umask(022);
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, Sa(addr), len), 0);
  umask(old);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(listen(l, 4), 0);
  std::string dpath = TmpDir() + "/" + UniqueName("permd");
  auto [daddr, dlen] = PathAddr(dpath);
  Fd d(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(d, Sa(daddr), dlen), 0);
  ASSERT_EQ(chmod(dpath.c_str(), 0755), 0);
  int rc = RunAsNobody([&] {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, Sa(addr), len) != -1 || errno != EACCES) return 1;
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto(u, "x", 1, 0, Sa(daddr), dlen) != -1 || errno != EACCES) return 2;
    if (connect(u, Sa(daddr), dlen) != -1 || errno != EACCES) return 3;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "1 connect 2 sendto 3 dgram connect; 100 setuid; 200 crashed";
  // Writable by others: nobody may connect.
  ASSERT_EQ(chmod(path.c_str(), 0757), 0);
  rc = RunAsNobody([&] {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    return connect(c, Sa(addr), len) == 0 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
  unlink(path.c_str());
  unlink(dpath.c_str());
}

// ---- SO_PEEK_OFF ----

int PeekOff(int fd) {
  int v = -2;
  socklen_t l = sizeof(v);
  EXPECT_EQ(getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, &l), 0);
  return v;
}

void SetPeekOff(int fd, int v) {
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)), 0) << strerror(errno);
}

std::string Recv(int fd, size_t n, int flags) {
  std::string b(n, '\0');
  ssize_t r = recv(fd, b.data(), n, flags | MSG_DONTWAIT);
  if (r < 0) return errno == EAGAIN ? "EAGAIN" : "errno " + std::to_string(errno);
  b.resize(r);
  return b;
}

// sk_peek_offset_fwd()/_bwd(): each MSG_PEEK starts at the offset and
// moves it on; a read moves it back by what it took.
TEST(UnixFeatureTest, PeekOffsetOnAStream) {
  Pair p = MakePair(SOCK_STREAM);
  EXPECT_EQ(PeekOff(p.b), -1);
  ASSERT_EQ(send(p.a, "abc", 3, 0), 3);
  ASSERT_EQ(send(p.a, "defg", 4, 0), 4);
  EXPECT_EQ(Recv(p.b, 2, MSG_PEEK), "ab");  // off: no offset
  EXPECT_EQ(Recv(p.b, 2, MSG_PEEK), "ab");
  SetPeekOff(p.b, 0);
  EXPECT_EQ(Recv(p.b, 2, MSG_PEEK), "ab");
  EXPECT_EQ(PeekOff(p.b), 2);
  EXPECT_EQ(Recv(p.b, 3, MSG_PEEK), "cde");
  EXPECT_EQ(PeekOff(p.b), 5);
  EXPECT_EQ(Recv(p.b, 1, 0), "a");
  EXPECT_EQ(PeekOff(p.b), 4);
  EXPECT_EQ(Recv(p.b, 10, MSG_PEEK), "fg");
  EXPECT_EQ(PeekOff(p.b), 6);
  EXPECT_EQ(Recv(p.b, 10, MSG_PEEK), "EAGAIN");
  EXPECT_EQ(Recv(p.b, 10, 0), "bcdefg");
  EXPECT_EQ(PeekOff(p.b), 0);
  SetPeekOff(p.b, -1);
  EXPECT_EQ(PeekOff(p.b), -1);
}

// __skb_try_recv_from_queue(): on a datagram socket the offset runs
// across messages; a peek returns the rest of the message it lands in.
TEST(UnixFeatureTest, PeekOffsetOnDatagrams) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    Pair p = MakePair(type);
    ASSERT_EQ(send(p.a, "abc", 3, 0), 3);
    ASSERT_EQ(send(p.a, "de", 2, 0), 2);
    SetPeekOff(p.b, 0);
    EXPECT_EQ(Recv(p.b, 2, MSG_PEEK), "ab");
    EXPECT_EQ(PeekOff(p.b), 2);
    EXPECT_EQ(Recv(p.b, 2, MSG_PEEK), "c");
    EXPECT_EQ(PeekOff(p.b), 3);
    EXPECT_EQ(Recv(p.b, 8, MSG_PEEK), "de");
    EXPECT_EQ(PeekOff(p.b), 5);
    EXPECT_EQ(Recv(p.b, 8, MSG_PEEK), "EAGAIN");
    EXPECT_EQ(Recv(p.b, 8, 0), "abc");
    EXPECT_EQ(PeekOff(p.b), 2);
    EXPECT_EQ(Recv(p.b, 8, MSG_PEEK), "EAGAIN");
    SetPeekOff(p.b, 0);
    EXPECT_EQ(Recv(p.b, 8, MSG_PEEK), "de");
  }
}

// ---- Files in flight ----

// too_many_unix_fds(): a user without CAP_SYS_RESOURCE/CAP_SYS_ADMIN who
// has more files in flight than RLIMIT_NOFILE cannot send more
// (ETOOMANYREFS); receiving them makes room again.
TEST(UnixFeatureTest, FilesInFlightAreLimitedByRlimitNofile) {
  int rc = RunAsNobody([] {
    rlimit r{16, 16};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) return 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return 2;
    int sent = 0;
    while (sent < 100 && SendFds(sv[0], {sv[0]}) == 1) ++sent;
    if (sent != 17) return 10 + (sent > 80 ? 80 : sent);
    if (errno != ETOOMANYREFS) return 3;
    char c;
    if (recv(sv[1], &c, 1, 0) != 1) return 4;  // one file out of flight
    if (SendFds(sv[0], {sv[0]}) != 1) return 5;
    if (SendFds(sv[0], {sv[0]}) != -1 || errno != ETOOMANYREFS) return 6;
    // Sending without files still works.
    if (send(sv[0], "x", 1, 0) != 1) return 7;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "10+n: n sends went through, want 17";
}

// ---- Pidfds ----

int PeerPidfd(int fd) {
  int v = -1;
  socklen_t l = sizeof(v);
  return getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &v, &l) == 0 ? v : -1;
}

// sk_getsockopt(SO_PEERPIDFD): a new close-on-exec pidfd of the peer as it
// was at connect() or socketpair(); ENODATA without one. It names that
// process even after it is reaped (a stale pidfd: waitid says ECHILD).
TEST(UnixFeatureTest, PeerPidfdNamesThePeerProcess) {
  Fd u(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ENODATA, PeerPidfd(u));
  Fd d(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(ENODATA, PeerPidfd(d));
  auto [addr, len] = AbstractAddr(UniqueName("pidfd"));
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l, Sa(addr), len), 0);
  ASSERT_EQ(listen(l, 1), 0);
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, Sa(addr), len) != 0) _exit(1);
    char x;
    (void)!read(go[0], &x, 1);
    _exit(7);
  }
  Fd s(accept(l, nullptr, nullptr));
  Fd pfd(PeerPidfd(s));
  ASSERT_GE(pfd, 0) << strerror(errno);
  EXPECT_EQ(fcntl(pfd, F_GETFD), FD_CLOEXEC);
  siginfo_t si{};
  ASSERT_EQ(waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG), 0);
  EXPECT_EQ(si.si_pid, 0);  // alive
  ASSERT_EQ(write(go[1], "x", 1), 1);
  ASSERT_EQ(waitid(P_PIDFD, pfd, &si, WEXITED), 0);
  EXPECT_EQ(si.si_pid, child);
  EXPECT_EQ(si.si_status, 7);
  Fd stale(PeerPidfd(s));
  ASSERT_GE(stale, 0) << strerror(errno);
  EXPECT_ERRNO(ECHILD, waitid(P_PIDFD, stale, &si, WEXITED | WNOHANG));
  // A socketpair's peer is this process; so is a listener's own.
  Pair p = MakePair(SOCK_SEQPACKET);
  Fd self(PeerPidfd(p.a));
  ASSERT_GE(self, 0);
  EXPECT_EQ(syscall(SYS_pidfd_send_signal, self.fd, 0, nullptr, 0), 0);
  Fd lself(PeerPidfd(l));
  EXPECT_GE(lself, 0);
  close(go[0]);
  close(go[1]);
}

// The pidfd of a message (SCM_PIDFD), after any credentials and files.
int PidfdOf(msghdr& h) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_PIDFD) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof(fd));
      return fd;
    }
  }
  return -1;
}

// scm_pidfd_recv(): with SO_PASSPIDFD each message comes with a pidfd of
// its sender (stale if the sender is gone), without room MSG_CTRUNC.
TEST(UnixFeatureTest, PassPidfdGivesTheSendersPidfd) {
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    Pair p = MakePair(type);
    int one = 1, v = 0;
    ASSERT_EQ(setsockopt(p.b, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one)), 0);
    socklen_t vl = sizeof(v);
    ASSERT_EQ(getsockopt(p.b, SOL_SOCKET, SO_PASSPIDFD, &v, &vl), 0);
    EXPECT_EQ(v, 1);
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    pid_t child = fork();
    if (child == 0) {
      char x;
      if (send(p.a, "c", 1, 0) != 1) _exit(1);
      (void)!read(go[0], &x, 1);
      _exit(3);
    }
    MsgBuf m;
    ASSERT_EQ(recvmsg(p.b, &m.h, 0), 1);
    EXPECT_EQ(m.h.msg_flags, 0);
    Fd pfd(PidfdOf(m.h));
    ASSERT_GE(pfd, 0);
    EXPECT_EQ(fcntl(pfd, F_GETFD), FD_CLOEXEC);
    ASSERT_EQ(write(go[1], "x", 1), 1);
    siginfo_t si{};
    ASSERT_EQ(waitid(P_PIDFD, pfd, &si, WEXITED), 0);
    EXPECT_EQ(si.si_pid, child);
    // Our own message, received without room for control messages.
    ASSERT_EQ(send(p.a, "d", 1, 0), 1);
    char c;
    iovec iov{&c, 1};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    ASSERT_EQ(recvmsg(p.b, &h, 0), 1);
    EXPECT_EQ(h.msg_flags, MSG_CTRUNC);
    close(go[0]);
    close(go[1]);
  }
}

// ---- SIGPIPE ----

// Whether SIGPIPE is pending for this thread (it is blocked); takes it.
bool TakeSigpipe() {
  sigset_t pend;
  sigpending(&pend);
  if (!sigismember(&pend, SIGPIPE)) return false;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  timespec zero{};
  return sigtimedwait(&s, nullptr, &zero) == SIGPIPE;
}

// unix_stream_sendmsg() sends SIGPIPE with EPIPE (unless MSG_NOSIGNAL);
// unix_dgram_sendmsg(), which seqpacket sockets use too, returns EPIPE
// without a signal: so do write(2) and sendmsg(2) on them.
TEST(UnixFeatureTest, SigpipeOnlyForStreamSockets) {
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &s, &old), 0);
  ASSERT_FALSE(TakeSigpipe());
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    ASSERT_GE(p.a, 0);
    ASSERT_EQ(shutdown(p.a, SHUT_WR), 0);
    const bool want = type == SOCK_STREAM;
    EXPECT_ERRNO(EPIPE, write(p.a, "x", 1));
    EXPECT_EQ(TakeSigpipe(), want);
    EXPECT_ERRNO(EPIPE, send(p.a, "x", 1, 0));
    EXPECT_EQ(TakeSigpipe(), want);
    iovec iov{const_cast<char*>("x"), 1};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    EXPECT_ERRNO(EPIPE, sendmsg(p.a, &h, 0));
    EXPECT_EQ(TakeSigpipe(), want);
    EXPECT_ERRNO(EPIPE, send(p.a, "x", 1, MSG_NOSIGNAL));
    EXPECT_FALSE(TakeSigpipe());
  }
  // A closed peer: a stream and a seqpacket writer both see EPIPE.
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
    SCOPED_TRACE(type);
    Pair p = MakePair(type);
    p.b.Close();
    EXPECT_ERRNO(EPIPE, write(p.a, "x", 1));
    EXPECT_EQ(TakeSigpipe(), type == SOCK_STREAM);
  }
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
}

// ---- Blocked stream writers ----

// A stream writer that found its send buffer full sleeps until the
// buffer's space callback, unix_write_space(), wakes it, which happens
// only once unix_writable(): at most a quarter of SO_SNDBUF in flight.
// Reading half of the queued data leaves it asleep; reading it all wakes it.
TEST(UnixFeatureTest, BlockedStreamWriterWakesAtAQuarterOfSndbuf) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_GE(p.a, 0);
  std::atomic<size_t> written{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string chunk(4096, 'w');
    while (!stop.load()) {
      ssize_t n = send(p.a, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
  });
  // Wait until the writer is blocked: the queued count stops growing.
  auto queued = [&] {
    int n = 0;
    ioctl(p.b, FIONREAD, &n);
    return n;
  };
  int before = -1;
  for (int i = 0; i < 200; ++i) {
    usleep(20000);
    int q = queued();
    if (q > 0 && q == before) break;
    before = q;
  }
  const int full = queued();
  ASSERT_GT(full, 0);
  // Half of it read: more than a quarter stays in flight.
  std::string buf(static_cast<size_t>(full), '\0');
  size_t got = 0;
  while (got < static_cast<size_t>(full / 2)) {
    ssize_t n = read(p.b, buf.data(), static_cast<size_t>(full / 2) - got);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  usleep(200000);
  EXPECT_EQ(queued(), full - static_cast<int>(got)) << "the writer woke too early";
  // Everything read: the writer goes on.
  while (queued() > 0) {
    ssize_t n = read(p.b, buf.data(), buf.size());
    ASSERT_GT(n, 0);
  }
  int later = 0;
  for (int i = 0; i < 250 && later == 0; ++i) {
    usleep(20000);
    later = queued();
  }
  EXPECT_GT(later, 0) << "the writer never woke";
  stop = true;
  p.b.Close();  // EPIPE ends the writer
  writer.join();
}

}  // namespace
}  // namespace syscall_test
