// Every blocking socket call and a signal (issue 19), on unix stream,
// seqpacket and datagram sockets and TCP/UDP loopback, each call its own
// case: while the call is blocked (its thread is in state S), a SIGUSR1
// whose handler was installed
//   - without SA_RESTART: the call fails with EINTR;
//   - with SA_RESTART: the call goes on and completes once its peer acts
//     (recv/accept/connect/send restarted, signal(7)); poll(2) and
//     epoll_wait(2) are never restarted (EINTR);
//   - with SA_RESTART and SO_RCVTIMEO (receives, accept) or SO_SNDTIMEO
//     (sends, connect) set: EINTR, never restarted (sock_intr_errno()).
// Every case runs under an alarm: a call that stays blocked fails the
// binary instead of hanging it.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

enum Family { kUnixStream, kUnixSeqpacket, kUnixDgram, kTcp, kUdp };
enum Call {
  kRecv, kRecvfrom, kRecvmsg, kRecvmmsg, kRead, kReadv,  // receives
  kSend, kSendto, kSendmsg, kWrite, kWritev,             // sends into a full buffer
  kAccept, kAccept4,                                     // a listener with none pending
  kConnect,                                              // a full backlog
  kPoll, kEpollWait,                                     // waiting for input
};
enum Mode { kNoRestart, kRestart, kTimeout };

bool IsReceive(Call c) { return c <= kReadv; }
bool IsSend(Call c) { return c >= kSend && c <= kWritev; }
bool IsAccept(Call c) { return c == kAccept || c == kAccept4; }
bool IsWait(Call c) { return c == kPoll || c == kEpollWait; }

// Which calls can block on which family: UDP sends never wait, datagram
// sockets have no accept/connect queue, and a loopback TCP connect is
// answered at once.
bool Applies(Family f, Call c) {
  if (IsSend(c)) return f != kUdp;
  if (IsAccept(c)) return f == kUnixStream || f == kUnixSeqpacket || f == kTcp;
  if (c == kConnect) return f == kUnixStream || f == kUnixSeqpacket;
  return true;
}

int SockType(Family f) {
  switch (f) {
    case kUnixStream: case kTcp: return SOCK_STREAM;
    case kUnixSeqpacket: return SOCK_SEQPACKET;
    default: return SOCK_DGRAM;
  }
}

sockaddr_in Loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A listener of `f` (bound, listening) and the address to reach it.
struct Listener {
  Fd fd;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Listener Listen(Family f, int backlog) {
  Listener l;
  if (f == kTcp) {
    l.fd.fd = socket(AF_INET, SOCK_STREAM, 0);
    // Accepted sockets get a small locked receive buffer and a small MSS:
    // a full connection stays full, and a read reopens the window at once
    // (a window update needs a read of a few segments' worth).
    int small = 4096, mss = 1024;
    EXPECT_EQ(setsockopt(l.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    EXPECT_EQ(setsockopt(l.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)), 0);
    sockaddr_in a = Loopback();
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    memcpy(&l.addr, &a, sizeof(a));
    l.len = sizeof(a);
  } else {
    l.fd.fd = socket(AF_UNIX, SockType(f), 0);
    auto [a, len] = AbstractAddr(UniqueName("sig"));
    EXPECT_EQ(bind(l.fd, reinterpret_cast<sockaddr*>(&a), len), 0);
    memcpy(&l.addr, &a, len);
    l.len = len;
  }
  EXPECT_EQ(listen(l.fd, backlog), 0);
  return l;
}

// A new socket of `f`'s domain and type connected to `l` (flags: SOCK_NONBLOCK).
int ConnectTo(Family f, const Listener& l, int flags = 0) {
  int fd = socket(f == kTcp ? AF_INET : AF_UNIX, SockType(f) | flags, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&l.addr), l.len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// Two connected ends: `rx` receives what `tx` sends.
struct Ends {
  Fd rx, tx;
};

Ends Connect(Family f) {
  Ends e;
  if (f == kUdp) {
    e.rx.fd = socket(AF_INET, SOCK_DGRAM, 0);
    e.tx.fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = Loopback();
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(e.rx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(getsockname(e.rx, reinterpret_cast<sockaddr*>(&a), &len), 0);
    EXPECT_EQ(connect(e.tx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  } else if (f == kTcp) {
    Listener l = Listen(kTcp, 1);
    // A small send buffer: quick to fill.
    int small = 4096, mss = 1024;
    e.tx.fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(setsockopt(e.tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    EXPECT_EQ(setsockopt(e.tx, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)), 0);
    EXPECT_EQ(connect(e.tx, reinterpret_cast<sockaddr*>(&l.addr), l.len), 0);
    e.rx.fd = accept(l.fd, nullptr, nullptr);
  } else {
    Pair p = MakePair(SockType(f));
    e.rx = std::move(p.a);
    e.tx = std::move(p.b);
    int small = 4096;
    EXPECT_EQ(setsockopt(e.tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  }
  return e;
}

constexpr size_t kMsg = 1000;  // a datagram's size when filling

// Sends without blocking until the send buffer is full. A unix socket's is
// full at the first EAGAIN; TCP's frees as the peer takes what was in
// flight: until five passes 20 ms apart send nothing.
void Fill(Family f, int tx) {
  std::vector<char> buf(f == kTcp || f == kUnixStream ? 65536 : kMsg, 'f');
  const int quiet_passes = f == kTcp ? 5 : 1;
  int quiet = 0;
  for (int pass = 0; pass < 1000; ++pass) {
    int sent = 0;
    while (send(tx, buf.data(), buf.size(), MSG_DONTWAIT) >= 0) ++sent;
    ASSERT_EQ(errno, EAGAIN) << strerror(errno);
    quiet = sent == 0 ? quiet + 1 : 0;
    if (quiet == quiet_passes) return;
    usleep(20000);
  }
  FAIL() << "the send buffer never filled";
}

// Reads whatever `rx` holds without blocking.
void Drain(int rx) {
  char buf[65536];
  while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

// The state letter of thread `tid` of this process (/proc/PID/task/TID/stat).
char ThreadState(pid_t tid) {
  std::string s = ReadFile("/proc/self/task/" + std::to_string(tid) + "/stat");
  size_t p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() ? '?' : s[p + 2];
}

volatile sig_atomic_t g_handled = 0;
void OnSignal(int) { g_handled = g_handled + 1; }

struct Case {
  Family family;
  Call call;
  Mode mode;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& i) {
  static const char* const kFamilies[] = {"UnixStream", "UnixSeqpacket", "UnixDgram", "Tcp", "Udp"};
  static const char* const kCalls[] = {"Recv", "Recvfrom", "Recvmsg", "Recvmmsg", "Read", "Readv",
                                       "Send", "Sendto", "Sendmsg", "Write", "Writev",
                                       "Accept", "Accept4", "Connect", "Poll", "EpollWait"};
  static const char* const kModes[] = {"Eintr", "SaRestart", "SaRestartWithTimeout"};
  return std::string(kFamilies[i.param.family]) + "_" + kCalls[i.param.call] + "_" +
         kModes[i.param.mode];
}

class SocketSignalTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { ArmHangGuard(30); }
  void TearDown() override {
    DisarmHangGuard();
    signal(SIGUSR1, SIG_DFL);
  }
};

TEST_P(SocketSignalTest, InterruptedWhileBlocked) {
  const Case c = GetParam();
  const Family f = c.family;

  // The sockets the call blocks on, and what ends the wait.
  Ends e;
  Listener l;
  Fd pending;  // connect: the connection that fills the backlog
  Fd ep;
  int fd = -1;
  if (IsAccept(c.call)) {
    l = Listen(f, 1);
    fd = l.fd;
  } else if (c.call == kConnect) {
    l = Listen(f, 0);
    pending.fd = ConnectTo(f, l, SOCK_NONBLOCK);  // backlog 0 takes one
    ASSERT_GE(pending.fd, 0) << strerror(errno);
    Fd probe(ConnectTo(f, l, SOCK_NONBLOCK));
    ASSERT_EQ(probe.fd, -1) << "the backlog is not full";
    ASSERT_EQ(errno, EAGAIN);
    // The test's own accepts (below) must not block.
    ASSERT_EQ(fcntl(l.fd, F_SETFL, O_NONBLOCK), 0);
    fd = socket(AF_UNIX, SockType(f), 0);
    e.tx.fd = fd;
  } else {
    e = Connect(f);
    if (IsSend(c.call)) {
      Fill(f, e.tx);
      if (HasFatalFailure()) return;
      fd = e.tx;
    } else {
      fd = e.rx;
    }
  }
  if (c.call == kEpollWait) {
    ep.fd = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
  }
  if (c.mode == kTimeout) {
    timeval tv{20, 0};
    int opt = IsSend(c.call) || c.call == kConnect ? SO_SNDTIMEO : SO_RCVTIMEO;
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)), 0);
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = c.mode == kNoRestart ? 0 : SA_RESTART;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);

  // The blocked call, on its own thread.
  const size_t send_len = f == kUnixStream || f == kTcp ? 1 : kMsg;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  long rc = -2;
  int err = 0;
  std::thread t([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    std::vector<char> buf(std::max<size_t>(send_len, 16), 's');
    iovec iov{buf.data(), IsSend(c.call) ? send_len : buf.size()};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    mmsghdr mm{};
    mm.msg_hdr = h;
    sockaddr_storage from{};
    socklen_t fl = sizeof(from);
    switch (c.call) {
      case kRecv: rc = recv(fd, buf.data(), buf.size(), 0); break;
      case kRecvfrom: rc = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl); break;
      case kRecvmsg: rc = recvmsg(fd, &h, 0); break;
      case kRecvmmsg: rc = recvmmsg(fd, &mm, 1, 0, nullptr); break;
      case kRead: rc = read(fd, buf.data(), buf.size()); break;
      case kReadv: rc = readv(fd, &iov, 1); break;
      case kSend: rc = send(fd, buf.data(), send_len, 0); break;
      case kSendto: rc = sendto(fd, buf.data(), send_len, 0, nullptr, 0); break;
      case kSendmsg: rc = sendmsg(fd, &h, 0); break;
      case kWrite: rc = write(fd, buf.data(), send_len); break;
      case kWritev: rc = writev(fd, &iov, 1); break;
      case kAccept: rc = accept(fd, nullptr, nullptr); break;
      case kAccept4: rc = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); break;
      case kConnect: rc = connect(fd, reinterpret_cast<const sockaddr*>(&l.addr), l.len); break;
      case kPoll: {
        pollfd p{fd, POLLIN, 0};
        rc = poll(&p, 1, -1);
        break;
      }
      case kEpollWait: {
        epoll_event out;
        rc = epoll_wait(ep, &out, 1, -1);
        break;
      }
    }
    err = errno;
    done = true;
  });

  // Wait until the call sleeps, then signal its thread.
  int64_t t0 = NowMs();
  while (tid.load() == 0 || ThreadState(tid.load()) != 'S') {
    ASSERT_FALSE(done.load()) << "returned without blocking: " << rc << " " << strerror(err);
    ASSERT_LT(NowMs() - t0, 10000) << "the call never blocked";
    usleep(1000);
  }
  const sig_atomic_t handled_before = g_handled;
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), tid.load(), SIGUSR1), 0);

  // What ends the wait, if the call is still waiting after the handler ran.
  auto unblock = [&] {
    if (IsReceive(c.call) || IsWait(c.call)) {
      send(e.tx, "d", 1, 0);
    } else if (IsSend(c.call)) {
      Drain(e.rx);
    } else if (IsAccept(c.call)) {
      pending.fd = ConnectTo(f, l, SOCK_NONBLOCK);
    } else if (c.call == kConnect) {
      Fd a(accept(l.fd, nullptr, nullptr));  // makes room in the backlog
    }
  };

  const bool restarts = c.mode == kRestart && !IsWait(c.call);
  if (!restarts) {
    t.join();
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(err, EINTR) << strerror(err);
  } else {
    // The handler runs, and the call goes on waiting.
    while (g_handled == handled_before && NowMs() - t0 < 10000) usleep(1000);
    EXPECT_GT(g_handled, handled_before) << "the handler did not run";
    usleep(20000);
    EXPECT_FALSE(done.load()) << "returned " << rc << " " << strerror(err);
    // One byte, one connection, one accept: the call must take exactly
    // that (on a stream a second byte could join the first read). A full
    // send buffer is drained until the sender is through.
    unblock();
    while (!done.load() && NowMs() - t0 < 10000) {
      if (IsSend(c.call)) unblock();
      usleep(5000);
    }
    t.join();
    if (IsReceive(c.call)) {
      EXPECT_EQ(rc, 1) << strerror(err);
    } else if (IsSend(c.call)) {
      EXPECT_EQ(rc, static_cast<long>(send_len)) << strerror(err);
    } else if (IsAccept(c.call)) {
      EXPECT_GE(rc, 0) << strerror(err);
      if (rc >= 0) close(static_cast<int>(rc));
    } else {
      EXPECT_EQ(rc, 0) << strerror(err);
    }
  }
  EXPECT_GT(g_handled, handled_before);
}

std::vector<Case> AllCases() {
  std::vector<Case> v;
  for (Family f : {kUnixStream, kUnixSeqpacket, kUnixDgram, kTcp, kUdp}) {
    for (int call = kRecv; call <= kEpollWait; ++call) {
      if (!Applies(f, static_cast<Call>(call))) continue;
      for (Mode m : {kNoRestart, kRestart, kTimeout}) {
        if (m == kTimeout && IsWait(static_cast<Call>(call))) continue;
        v.push_back({f, static_cast<Call>(call), m});
      }
    }
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Calls, SocketSignalTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace syscall_test
