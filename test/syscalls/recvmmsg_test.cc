// recvmmsg(2) on unix datagram, UDP and TCP loopback sockets: the timeout is
// checked after each message (do_recvmmsg()), an invalid timespec is EINVAL
// before anything blocks, MSG_WAITFORONE stops waiting after the first.
// Every case runs under an alarm: a hang fails instead of stalling.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// A receiving socket `rx` and a sending one `tx` of one kind.
struct Endpoints {
  Fd rx, tx;
  bool stream = false;
};

Endpoints UnixDgram() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  Endpoints e;
  e.rx.fd = sv[0];
  e.tx.fd = sv[1];
  return e;
}

sockaddr_in Loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

Endpoints Udp() {
  Endpoints e;
  e.rx.fd = socket(AF_INET, SOCK_DGRAM, 0);
  e.tx.fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = Loopback();
  socklen_t l = sizeof(a);
  EXPECT_EQ(bind(e.rx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(getsockname(e.rx, reinterpret_cast<sockaddr*>(&a), &l), 0);
  EXPECT_EQ(connect(e.tx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return e;
}

Endpoints Tcp() {
  Endpoints e;
  e.stream = true;
  Fd l(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback();
  socklen_t len = sizeof(a);
  EXPECT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(l, 1), 0);
  EXPECT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  e.tx.fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(connect(e.tx, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  e.rx.fd = accept(l, nullptr, nullptr);
  return e;
}

struct Batch {
  std::vector<std::string> bufs;
  std::vector<iovec> iovs;
  std::vector<mmsghdr> msgs;
  explicit Batch(size_t n) : bufs(n, std::string(16, '\0')), iovs(n), msgs(n) {
    for (size_t i = 0; i < n; ++i) {
      iovs[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
};

// Queues `n` one-byte messages and waits until the receiver holds them all.
void Queue(Endpoints& e, int n) {
  for (int i = 0; i < n; ++i) ASSERT_EQ(send(e.tx, "m", 1, 0), 1);
  usleep(20000);  // loopback delivery
}

class RecvmmsgTest : public ::testing::TestWithParam<int> {
 protected:
  Endpoints Make() {
    switch (GetParam()) {
      case 0: return UnixDgram();
      case 1: return Udp();
      default: return Tcp();
    }
  }
  void SetUp() override { ArmHangGuard(20); }
  void TearDown() override { DisarmHangGuard(); }
};

TEST_P(RecvmmsgTest, InvalidTimeoutIsEinvalBeforeBlocking) {
  Endpoints e = Make();
  Batch b(4);
  for (timespec bad : {timespec{0, -1}, timespec{0, 1000000000}, timespec{-1, 0}}) {
    EXPECT_ERRNO(EINVAL, recvmmsg(e.rx, b.msgs.data(), 4, 0, &bad));
  }
}

TEST_P(RecvmmsgTest, TimeoutIsCheckedAfterEachMessage) {
  Endpoints e = Make();
  Queue(e, 3);
  Batch b(5);
  timespec ts{0, 1};  // past by the time the first message is in
  int n = recvmmsg(e.rx, b.msgs.data(), 5, 0, &ts);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
  if (!e.stream) {
    // The rest is still there.
    EXPECT_EQ(recvmmsg(e.rx, b.msgs.data(), 5, MSG_DONTWAIT, nullptr), 2);
  }
}

TEST_P(RecvmmsgTest, ZeroTimeoutReturnsAfterTheFirst) {
  Endpoints e = Make();
  Queue(e, 2);
  Batch b(5);
  timespec ts{0, 0};
  EXPECT_EQ(recvmmsg(e.rx, b.msgs.data(), 5, 0, &ts), 1);
}

TEST_P(RecvmmsgTest, TimeoutLeftIsWrittenBack) {
  Endpoints e = Make();
  Queue(e, 2);
  Batch b(2);
  timespec ts{100, 0};
  int want = e.stream ? 1 : 2;
  if (e.stream) {
    EXPECT_EQ(recvmmsg(e.rx, b.msgs.data(), 1, 0, &ts), want);
  } else {
    EXPECT_EQ(recvmmsg(e.rx, b.msgs.data(), 2, 0, &ts), want);
  }
  EXPECT_TRUE(ts.tv_sec >= 98 && ts.tv_sec < 100) << ts.tv_sec;
}

TEST_P(RecvmmsgTest, WaitForOneStopsWaitingAfterTheFirst) {
  Endpoints e = Make();
  Queue(e, 2);
  Batch b(5);
  int n = recvmmsg(e.rx, b.msgs.data(), 5, MSG_WAITFORONE, nullptr);
  EXPECT_EQ(n, e.stream ? 1 : 2);  // a stream's bytes come in one read
  EXPECT_EQ(b.msgs[0].msg_len, e.stream ? 2u : 1u);
  // It blocks for the first one.
  Batch c(5);
  timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t child = fork();
  if (child == 0) {
    usleep(100000);
    _exit(send(e.tx, "l", 1, 0) == 1 ? 0 : 1);
  }
  EXPECT_EQ(recvmmsg(e.rx, c.msgs.data(), 5, MSG_WAITFORONE, nullptr), 1);
  timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  EXPECT_GE((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 50);
  int status;
  EXPECT_EQ(waitpid(child, &status, 0), child);
}

std::string KindName(const ::testing::TestParamInfo<int>& i) {
  static const char* const kNames[] = {"UnixDgram", "Udp", "Tcp"};
  return kNames[i.param];
}

INSTANTIATE_TEST_SUITE_P(Sockets, RecvmmsgTest, ::testing::Values(0, 1, 2), KindName);

}  // namespace
}  // namespace syscall_test
