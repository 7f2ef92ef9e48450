// SIGIO from readiness: O_ASYNC with F_SETOWN/F_SETSIG on sockets (unix
// stream/datagram, TCP and UDP on loopback), pseudo-terminals and inotify.
// Linux signals the owner from the code that makes the file ready
// (sk_data_ready -> sk_wake_async(), tcp_finish_connect(), n_tty's and
// fsnotify's kill_fasync()); pipes and eventfds are in fcntl_test.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The F_SETSIG signal the tests use: queued with its siginfo (si_fd,
// si_band, si_code), one per event.
const int kSig = SIGRTMIN + 3;

// Blocks SIGIO and kSig for the test; takes them with sigtimedwait.
class Signals {
 public:
  Signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGIO);
    sigaddset(&set_, kSig);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~Signals() {
    timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  // The next signal within `ms`, or -1.
  int Take(siginfo_t* info, int ms = 3000) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    return sigtimedwait(&set_, info, &ts);
  }
  // Expects one kSig for `fd` with si_code `code` within a few seconds.
  void ExpectEvent(int fd, int code) {
    siginfo_t info{};
    ASSERT_EQ(Take(&info), kSig) << "no signal for fd " << fd;
    EXPECT_EQ(info.si_fd, fd);
    EXPECT_EQ(info.si_code, code);
    long band = code == POLL_IN    ? POLLIN | POLLRDNORM
                : code == POLL_OUT ? POLLOUT | POLLWRNORM | POLLWRBAND
                                   : POLLHUP | POLLERR;
    EXPECT_EQ(info.si_band, band);
  }
  void ExpectNothing(int ms = 200) {
    siginfo_t info{};
    EXPECT_EQ(Take(&info, ms), -1) << "signal for fd " << info.si_fd << " code " << info.si_code;
  }

 private:
  sigset_t set_, old_;
};

// The owner is this process; `sig` 0 is plain SIGIO.
void MakeAsync(int fd, int sig = kSig) {
  ASSERT_OK(fcntl(fd, F_SETOWN, getpid()));
  ASSERT_OK(fcntl(fd, F_SETSIG, sig));
  ASSERT_OK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC));
}

TEST(SigioTest, UnixStreamEachArrivalSignalsPollIn) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  MakeAsync(a.get());
  sigs.ExpectNothing();  // writable all along: no signal for that
  ASSERT_EQ(write(b.get(), "x", 1), 1);
  sigs.ExpectEvent(a.get(), POLL_IN);
  ASSERT_EQ(write(b.get(), "y", 1), 1);  // still unread: a new arrival
  sigs.ExpectEvent(a.get(), POLL_IN);
  sigs.ExpectNothing();
}

// Plain SIGIO without F_SETSIG, as the kernel sends it (SEND_SIG_PRIV).
TEST(SigioTest, UnixStreamPlainSigio) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  MakeAsync(a.get(), 0);
  ASSERT_EQ(write(b.get(), "x", 1), 1);
  siginfo_t info{};
  ASSERT_EQ(sigs.Take(&info), SIGIO);
  EXPECT_EQ(info.si_code, SI_KERNEL);
}

TEST(SigioTest, UnixDatagram) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  MakeAsync(a.get());
  ASSERT_EQ(send(b.get(), "x", 1, 0), 1);
  sigs.ExpectEvent(a.get(), POLL_IN);
  ASSERT_EQ(send(b.get(), "y", 1, 0), 1);
  sigs.ExpectEvent(a.get(), POLL_IN);
}

// Turning O_ASYNC on signals nothing by itself, even with data waiting.
TEST(SigioTest, AlreadyReadableSignalsNothingUntilTheNextArrival) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  ASSERT_EQ(write(b.get(), "x", 1), 1);
  MakeAsync(a.get());
  sigs.ExpectNothing();
  ASSERT_EQ(write(b.get(), "y", 1), 1);
  sigs.ExpectEvent(a.get(), POLL_IN);
}

// unix_release_sock(): the peer's close is POLL_HUP for a stream socket.
TEST(SigioTest, UnixStreamPeerCloseSignalsPollHup) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]);
  MakeAsync(a.get());
  ASSERT_OK(close(sv[1]));
  sigs.ExpectEvent(a.get(), POLL_HUP);
}

// Clearing O_ASYNC stops the signals.
TEST(SigioTest, ClearingAsyncStopsSignals) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  MakeAsync(a.get());
  ASSERT_OK(fcntl(a.get(), F_SETFL, fcntl(a.get(), F_GETFL) & ~O_ASYNC));
  ASSERT_EQ(write(b.get(), "x", 1), 1);
  sigs.ExpectNothing();
  // FIOASYNC turns it back on.
  int on = 1;
  ASSERT_OK(ioctl(a.get(), FIOASYNC, &on));
  ASSERT_EQ(write(b.get(), "y", 1), 1);
  sigs.ExpectEvent(a.get(), POLL_IN);
}

// A listener hears each connection waiting to be accepted.
TEST(SigioTest, UnixListenerSignalsConnections) {
  Signals sigs;
  FileDescriptor l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_GE(l.get(), 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "@sigio-%d", getpid());
  sa.sun_path[0] = '\0';
  socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1);
  ASSERT_OK(bind(l.get(), reinterpret_cast<sockaddr*>(&sa), len));
  ASSERT_OK(listen(l.get(), 4));
  MakeAsync(l.get());
  FileDescriptor c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), reinterpret_cast<sockaddr*>(&sa), len));
  sigs.ExpectEvent(l.get(), POLL_IN);
}

// A TCP listener on a free loopback port: the socket in `l`, its address
// in `sa`.
void ListenOnLoopback(FileDescriptor& l, sockaddr_in& sa) {
  l = FileDescriptor(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(l.get(), 0);
  sa = sockaddr_in{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(l.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
  socklen_t len = sizeof(sa);
  ASSERT_OK(getsockname(l.get(), reinterpret_cast<sockaddr*>(&sa), &len));
  ASSERT_OK(listen(l.get(), 4));
}

// A loopback TCP listener, connection and non-blocking connect.
TEST(SigioTest, TcpLoopback) {
  Signals sigs;
  FileDescriptor l;
  sockaddr_in sa{};
  ASSERT_NO_FATAL_FAILURE(ListenOnLoopback(l, sa));
  MakeAsync(l.get());

  FileDescriptor c(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ASSERT_GE(c.get(), 0);
  MakeAsync(c.get());
  sigs.ExpectNothing();  // an unconnected socket's readiness is no event
  int r = connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  ASSERT_TRUE(r == 0 || errno == EINPROGRESS) << strerror(errno);
  // tcp_finish_connect(): POLL_OUT for the connecting socket; the listener
  // hears the connection (POLL_IN). Either may come first.
  bool connected = false, listener = false;
  for (int i = 0; i < 2; i++) {
    siginfo_t info{};
    ASSERT_EQ(sigs.Take(&info), kSig) << "connected " << connected << " listener " << listener;
    if (info.si_fd == c.get()) {
      EXPECT_EQ(info.si_code, POLL_OUT);
      connected = true;
    } else {
      EXPECT_EQ(info.si_fd, l.get());
      EXPECT_EQ(info.si_code, POLL_IN);
      listener = true;
    }
  }
  EXPECT_TRUE(connected && listener);
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_GE(s.get(), 0);
  MakeAsync(s.get());
  ASSERT_EQ(write(c.get(), "x", 1), 1);
  sigs.ExpectEvent(s.get(), POLL_IN);
  ASSERT_EQ(write(c.get(), "y", 1), 1);
  sigs.ExpectEvent(s.get(), POLL_IN);
  sigs.ExpectNothing();
}

// A blocking connect gets its POLL_OUT too (tcp_finish_connect() signals
// whoever waits how) (issue 13).
TEST(SigioTest, TcpBlockingConnectSignalsPollOut) {
  Signals sigs;
  FileDescriptor l;
  sockaddr_in sa{};
  ASSERT_NO_FATAL_FAILURE(ListenOnLoopback(l, sa));
  FileDescriptor c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(c.get(), 0);
  MakeAsync(c.get());
  ASSERT_OK(connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
  sigs.ExpectEvent(c.get(), POLL_OUT);
  sigs.ExpectNothing();
}

TEST(SigioTest, UdpLoopback) {
  Signals sigs;
  FileDescriptor u(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(u.get(), 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(u.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)));
  socklen_t len = sizeof(sa);
  ASSERT_OK(getsockname(u.get(), reinterpret_cast<sockaddr*>(&sa), &len));
  MakeAsync(u.get());
  FileDescriptor c(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(c.get(), 0);
  ASSERT_EQ(sendto(c.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 1);
  sigs.ExpectEvent(u.get(), POLL_IN);
  ASSERT_EQ(sendto(c.get(), "y", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 1);
  sigs.ExpectEvent(u.get(), POLL_IN);
}

// A pseudo-terminal: a line written to the master makes the replica
// readable (POLL_IN to its owner), and output of the replica the master.
TEST(SigioTest, Pty) {
  Signals sigs;
  FileDescriptor m(posix_openpt(O_RDWR | O_NOCTTY));
  ASSERT_GE(m.get(), 0);
  ASSERT_OK(grantpt(m.get()));
  ASSERT_OK(unlockpt(m.get()));
  FileDescriptor s(open(ptsname(m.get()), O_RDWR | O_NOCTTY));
  ASSERT_GE(s.get(), 0);
  termios tio;
  ASSERT_OK(tcgetattr(s.get(), &tio));
  tio.c_lflag &= ~ECHO;  // the master hears only what the replica writes
  ASSERT_OK(tcsetattr(s.get(), TCSANOW, &tio));
  MakeAsync(s.get());
  sigs.ExpectNothing();
  ASSERT_EQ(write(m.get(), "x\n", 2), 2);
  sigs.ExpectEvent(s.get(), POLL_IN);
  MakeAsync(m.get());
  ASSERT_EQ(write(s.get(), "y\n", 2), 2);
  sigs.ExpectEvent(m.get(), POLL_IN);
}

// tty_fasync(): turning O_ASYNC on for a terminal without an owner makes
// its foreground process group the owner (the master's own tty has none:
// then the caller); an owner set before stays (issue 13).
TEST(SigioTest, PtyOwnerIsTheForegroundGroup) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setsid() < 0) return 1;
                     const int m = posix_openpt(O_RDWR | O_NOCTTY);
                     if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) return 2;
                     const int s = open(ptsname(m), O_RDWR | O_NOCTTY);
                     if (s < 0) return 3;
                     if (ioctl(s, TIOCSCTTY, 0) != 0) return 4;
                     if (tcgetpgrp(s) != getpid()) return 5;
                     if (fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_ASYNC) != 0) return 6;
                     if (fcntl(s, F_GETOWN) != -getpid()) return 7;  // a process group
                     if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_ASYNC) != 0) return 8;
                     if (fcntl(m, F_GETOWN) != getpid()) return 9;
                     // Another description of the replica, its owner set first.
                     const int s2 = open(ptsname(m), O_RDWR | O_NOCTTY);
                     if (s2 < 0) return 10;
                     if (fcntl(s2, F_SETOWN, getpid()) != 0) return 11;
                     if (fcntl(s2, F_SETFL, fcntl(s2, F_GETFL) | O_ASYNC) != 0) return 12;
                     if (fcntl(s2, F_GETOWN) != getpid()) return 13;
                     // A terminal that is nobody's controlling one: the caller.
                     const int m3 = posix_openpt(O_RDWR | O_NOCTTY);
                     if (m3 < 0 || grantpt(m3) != 0 || unlockpt(m3) != 0) return 14;
                     const int s3 = open(ptsname(m3), O_RDWR | O_NOCTTY);
                     if (s3 < 0) return 15;
                     int on = 1;
                     if (ioctl(s3, FIOASYNC, &on) != 0) return 16;
                     if (fcntl(s3, F_GETOWN) != getpid()) return 17;
                     return 0;
                   }),
                   0);
}

// inotify: each queued event is POLL_IN.
TEST(SigioTest, Inotify) {
  Signals sigs;
  TempDir dir;
  FileDescriptor in(inotify_init1(IN_NONBLOCK));
  ASSERT_GE(in.get(), 0);
  ASSERT_GE(inotify_add_watch(in.get(), dir.Path("").c_str(), IN_CREATE), 0);
  MakeAsync(in.get());
  FileDescriptor f1(open(dir.Path("a").c_str(), O_CREAT | O_WRONLY, 0600));
  ASSERT_GE(f1.get(), 0);
  sigs.ExpectEvent(in.get(), POLL_IN);
  FileDescriptor f2(open(dir.Path("b").c_str(), O_CREAT | O_WRONLY, 0600));
  ASSERT_GE(f2.get(), 0);
  sigs.ExpectEvent(in.get(), POLL_IN);
}

// Another process as the owner: the signal goes to it, not to the caller.
TEST(SigioTest, OwnerInAnotherProcess) {
  Signals sigs;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  FileDescriptor a(sv[0]), b(sv[1]);
  int ready[2];
  ASSERT_OK(pipe(ready));
  FileDescriptor rd(ready[0]), wr(ready[1]);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Signals are blocked (inherited): wait for SIGIO for up to 10 s.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    if (fcntl(a.get(), F_SETOWN, getpid()) != 0) _exit(2);
    if (fcntl(a.get(), F_SETFL, O_ASYNC) != 0) _exit(3);
    if (write(wr.get(), "r", 1) != 1) _exit(4);
    timespec ts{10, 0};
    _exit(sigtimedwait(&set, nullptr, &ts) == SIGIO ? 0 : 5);
  }
  char c;
  ASSERT_EQ(read(rd.get(), &c, 1), 1);
  ASSERT_EQ(write(b.get(), "x", 1), 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  sigs.ExpectNothing();
}

// sigio_perm(): the signal reaches the owner only if whoever set the owner
// could signal it by uid. A process of nobody that names root's process
// as its socket's owner signals nothing there; its own process it can.
TEST(SigioTest, OwnerOfAnotherUserIsNotSignalled) {
  Signals sigs;
  const pid_t parent = getpid();
  EXPECT_EXIT_CODE(RunAsNobody([parent] {
                     int sv[2];
                     if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
                     if (fcntl(sv[0], F_SETOWN, parent) != 0) return 2;
                     if (fcntl(sv[0], F_SETSIG, kSig) != 0) return 3;
                     if (fcntl(sv[0], F_SETFL, O_ASYNC) != 0) return 4;
                     if (write(sv[1], "x", 1) != 1) return 5;
                     // Its own process: signalled (kSig is blocked: inherited).
                     if (fcntl(sv[0], F_SETOWN, getpid()) != 0) return 6;
                     if (write(sv[1], "y", 1) != 1) return 7;
                     sigset_t set;
                     sigemptyset(&set);
                     sigaddset(&set, kSig);
                     timespec ts{5, 0};
                     if (sigtimedwait(&set, nullptr, &ts) != kSig) return 8;
                     return 0;
                   }),
                   0);
  sigs.ExpectNothing();
}

}  // namespace
}  // namespace syscall_test
