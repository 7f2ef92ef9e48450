// Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, /dev/pts and
// /dev/ptmx nodes, the line discipline (echo, canonical editing, raw mode,
// VMIN/VTIME), blocking and poll on both ends, hangup (EIO, SIGHUP),
// controlling terminals (^C to the foreground group, SIGWINCH, /dev/tty) and
// the pty ioctls.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// A pty pair: the master from posix_openpt and its replica, both O_NOCTTY
// so that the test process never gains a controlling terminal.
struct Pair {
  int master = -1, replica = -1;
  std::string name;
  Pair() {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return;
    if (grantpt(master) != 0 || unlockpt(master) != 0) return;
    name = ptsname(master);
    replica = open(name.c_str(), O_RDWR | O_NOCTTY);
  }
  ~Pair() {
    if (master >= 0) close(master);
    if (replica >= 0) close(replica);
  }
  int index() const { return atoi(name.c_str() + strlen("/dev/pts/")); }
};

std::string Err(int e) { return "<errno " + ErrnoName(e) + ">"; }

std::string ReadSome(int fd, size_t n = 256) {
  std::string s(n, '\0');
  ssize_t r = read(fd, s.data(), n);
  if (r < 0) return Err(errno);
  s.resize(r);
  return s;
}

// Linux hands pty data to the other end from a workqueue (flush_to_ldisc),
// so a reader may see it in pieces: reads until `n` bytes came (or 2 s).
std::string ReadExactly(int fd, size_t n) {
  std::string out;
  for (int i = 0; i < 200 && out.size() < n; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) < 0) return Err(errno);
    if (!(p.revents & POLLIN)) continue;
    std::string got = ReadSome(fd, n - out.size());
    if (got.rfind("<errno", 0) == 0) return got;
    out += got;
  }
  return out;
}

// Waits up to 2 s for `events` (for readiness the other end just caused).
short PollWait(int fd, short events) {
  pollfd p{fd, events, 0};
  if (poll(&p, 1, 2000) < 0) return -1;
  return p.revents;
}

void WriteAll(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

short Poll(int fd, short events) {
  pollfd p{fd, events, 0};
  if (poll(&p, 1, 0) < 0) return -1;
  return p.revents;
}

void SetNonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void MakeRaw(int fd, cc_t vmin, cc_t vtime) {
  termios t;
  ASSERT_EQ(tcgetattr(fd, &t), 0);
  cfmakeraw(&t);
  t.c_cc[VMIN] = vmin;
  t.c_cc[VTIME] = vtime;
  ASSERT_EQ(tcsetattr(fd, TCSANOW, &t), 0);
}

TEST(Pty, OpenptyNamesAndNodes) {
  Pair p;
  ASSERT_GE(p.master, 0) << ErrnoName(errno);
  ASSERT_GE(p.replica, 0) << p.name << ": " << ErrnoName(errno);
  EXPECT_EQ(p.name.rfind("/dev/pts/", 0), 0u) << p.name;
  int n = -1;
  ASSERT_EQ(ioctl(p.master, TIOCGPTN, &n), 0);
  EXPECT_EQ(n, p.index());
  EXPECT_ERRNO(ENOTTY, ioctl(p.replica, TIOCGPTN, &n));

  EXPECT_TRUE(isatty(p.master));
  EXPECT_TRUE(isatty(p.replica));
  char buf[64];
  ASSERT_EQ(ttyname_r(p.replica, buf, sizeof(buf)), 0);
  EXPECT_EQ(std::string(buf), p.name);

  struct stat st, pst;
  ASSERT_EQ(fstat(p.replica, &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 136u);
  EXPECT_EQ(static_cast<int>(minor(st.st_rdev)), p.index());
  ASSERT_EQ(stat(p.name.c_str(), &pst), 0);
  EXPECT_EQ(st.st_ino, pst.st_ino);
  EXPECT_EQ(st.st_rdev, pst.st_rdev);
  ASSERT_EQ(stat("/dev/ptmx", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(5, 2));

  std::string link(256, '\0');
  std::string fdpath = "/proc/self/fd/" + std::to_string(p.replica);
  ssize_t len = readlink(fdpath.c_str(), link.data(), link.size());
  ASSERT_GT(len, 0);
  link.resize(len);
  EXPECT_EQ(link, p.name);

  bool listed = false;
  DIR* d = opendir("/dev/pts");
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    if (std::to_string(p.index()) == e->d_name) listed = true;
  }
  closedir(d);
  EXPECT_TRUE(listed);
}

TEST(Pty, LockedUntilUnlockpt) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(m, 0);
  int locked = 0;
  ASSERT_EQ(ioctl(m, TIOCGPTLCK, &locked), 0);
  EXPECT_EQ(locked, 1);
  std::string name = ptsname(m);
  EXPECT_ERRNO(EIO, open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_EQ(unlockpt(m), 0);
  ASSERT_EQ(ioctl(m, TIOCGPTLCK, &locked), 0);
  EXPECT_EQ(locked, 0);
  int r = open(name.c_str(), O_RDWR | O_NOCTTY);
  EXPECT_GE(r, 0);
  close(r);
  close(m);
}

TEST(Pty, CanonicalModeEchoesAndCooksLines) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  WriteAll(p.master, "hello\r");
  EXPECT_EQ(ReadSome(p.replica), "hello\n");
  EXPECT_EQ(ReadExactly(p.master, 7), "hello\r\n");  // the echo, through ONLCR
  WriteAll(p.replica, "out\n");
  EXPECT_EQ(ReadExactly(p.master, 5), "out\r\n");

  WriteAll(p.master, "abx\x7f" "c\n");  // VERASE
  EXPECT_EQ(ReadSome(p.replica), "abc\n");
  WriteAll(p.master, "junk\x15" "ok\n");  // VKILL
  EXPECT_EQ(ReadSome(p.replica), "ok\n");
  WriteAll(p.master, "\x04");  // VEOF at the start of a line: end of file
  EXPECT_EQ(ReadSome(p.replica), "");
  WriteAll(p.master, "two lines\nsecond\n");
  EXPECT_EQ(ReadSome(p.replica, 4), "two ");
  EXPECT_EQ(ReadSome(p.replica), "lines\n");
  EXPECT_EQ(ReadSome(p.replica), "second\n");
}

TEST(Pty, EchoOffAndEchonl) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  termios t;
  ASSERT_EQ(tcgetattr(p.replica, &t), 0);
  t.c_lflag &= ~ECHO;
  t.c_lflag |= ECHONL;
  ASSERT_EQ(tcsetattr(p.replica, TCSANOW, &t), 0);
  WriteAll(p.master, "secret\n");
  EXPECT_EQ(ReadSome(p.replica), "secret\n");
  EXPECT_EQ(ReadExactly(p.master, 2), "\r\n");  // only the newline
  // The master sees the replica's termios (tty_mode_ioctl() on the pair).
  termios mt;
  ASSERT_EQ(tcgetattr(p.master, &mt), 0);
  EXPECT_EQ(mt.c_lflag & (ECHO | ECHONL), static_cast<tcflag_t>(ECHONL));
}

TEST(Pty, RawModeAndVminVtime) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  MakeRaw(p.replica, 1, 0);
  WriteAll(p.master, "a\r\x03");
  EXPECT_EQ(ReadSome(p.replica), "a\r\x03");  // no ICRNL, no ISIG
  SetNonblock(p.master);
  EXPECT_EQ(ReadSome(p.master), Err(EAGAIN));  // no echo
  WriteAll(p.replica, "x\n");
  EXPECT_EQ(ReadExactly(p.master, 2), "x\n");  // no OPOST

  MakeRaw(p.replica, 0, 0);  // polling read: 0 at once
  EXPECT_EQ(ReadSome(p.replica), "");
  MakeRaw(p.replica, 0, 1);  // 0.1 s timeout
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  EXPECT_EQ(ReadSome(p.replica), "");
  clock_gettime(CLOCK_MONOTONIC, &b);
  double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  EXPECT_GE(secs, 0.05);
  WriteAll(p.master, "q");
  EXPECT_EQ(ReadSome(p.replica), "q");
}

TEST(Pty, NonblockingAndPoll) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  SetNonblock(p.replica);
  SetNonblock(p.master);
  EXPECT_EQ(ReadSome(p.replica), Err(EAGAIN));
  EXPECT_EQ(ReadSome(p.master), Err(EAGAIN));
  EXPECT_EQ(Poll(p.replica, POLLIN | POLLOUT), POLLOUT);
  EXPECT_EQ(Poll(p.master, POLLIN | POLLOUT), POLLOUT);
  WriteAll(p.master, "partial");
  EXPECT_EQ(Poll(p.replica, POLLIN), 0);  // no complete line yet
  WriteAll(p.master, "\n");
  EXPECT_EQ(PollWait(p.replica, POLLIN), POLLIN);
  EXPECT_EQ(PollWait(p.master, POLLIN), POLLIN);  // the echo
  int n = 0;
  ASSERT_EQ(ioctl(p.replica, FIONREAD, &n), 0);
  EXPECT_EQ(n, 8);
  EXPECT_EQ(ReadSome(p.replica), "partial\n");
  EXPECT_EQ(ReadExactly(p.master, 9), "partial\r\n");

  // Fill what the replica can write ahead of the master, until it stays
  // unwritable (Linux may free room once more as it moves queued bytes to
  // the master's side: a single EAGAIN does not mean POLLOUT stays clear).
  std::string chunk(1024, 'z');
  size_t total = 0;
  for (;;) {
    ssize_t r = write(p.replica, chunk.data(), chunk.size());
    if (r < 0) {
      ASSERT_EQ(errno, EAGAIN);
      pollfd w{p.replica, POLLOUT, 0};
      if (poll(&w, 1, 100) == 0) break;  // full
      continue;
    }
    total += r;
    ASSERT_LT(total, 10u << 20) << "replica writes never block";
  }
  EXPECT_GT(total, 1000u);
  std::string buf(1 << 16, '\0');
  while (read(p.master, buf.data(), buf.size()) > 0) {
  }
  EXPECT_EQ(PollWait(p.replica, POLLOUT), POLLOUT);
}

TEST(Pty, BlockingReadWokenByWrite) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100 * 1000);
    _exit(write(p.master, "late\n", 5) == 5 ? 0 : 1);
  }
  pollfd pf{p.replica, POLLIN, 0};
  EXPECT_EQ(poll(&pf, 1, 5000), 1);
  EXPECT_EQ(ReadSome(p.replica), "late\n");
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(Pty, MasterReadsEioAfterReplicaCloses) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  WriteAll(p.replica, "bye\n");
  close(p.replica);
  p.replica = -1;
  EXPECT_TRUE(Poll(p.master, POLLIN) & POLLIN);
  EXPECT_EQ(ReadExactly(p.master, 5), "bye\r\n");  // what was written comes first
  EXPECT_EQ(ReadSome(p.master), Err(EIO));
}

TEST(Pty, ReplicaHangsUpWhenMasterCloses) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  close(p.master);
  p.master = -1;
  EXPECT_TRUE(Poll(p.replica, POLLIN) & POLLHUP);
  EXPECT_EQ(ReadSome(p.replica), "");
  EXPECT_ERRNO(EIO, write(p.replica, "x", 1));
  termios t;
  EXPECT_ERRNO(EIO, tcgetattr(p.replica, &t));
}

// Runs `child` in a new session whose controlling terminal is `p`'s replica;
// `ready` is written once it is set up. Returns the child's pid.
template <typename F>
pid_t SessionChild(Pair& p, int ready, F child) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setsid() < 0) _exit(90);
    if (ioctl(p.replica, TIOCSCTTY, 0) != 0) _exit(91);
    close(p.master);
    if (write(ready, "r", 1) != 1) _exit(92);
    _exit(child());
  }
  return pid;
}

void WaitReady(int fd) {
  char c;
  ASSERT_EQ(read(fd, &c, 1), 1);
}

TEST(Pty, InterruptCharacterSignalsForegroundGroup) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid_t pid = SessionChild(p, pfd[1], [] {
    for (;;) pause();
    return 0;
  });
  WaitReady(pfd[0]);
  int v = 0;
  ASSERT_EQ(ioctl(p.master, TIOCGPGRP, &v), 0);
  EXPECT_EQ(v, pid);
  ASSERT_EQ(ioctl(p.master, TIOCGSID, &v), 0);
  EXPECT_EQ(v, pid);
  WriteAll(p.master, "\x03");
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(st)) << st;
  EXPECT_EQ(WIFSIGNALED(st) ? WTERMSIG(st) : 0, SIGINT);
  EXPECT_EQ(ReadExactly(p.master, 2), "^C");
  close(pfd[0]);
  close(pfd[1]);
}

// disassociate_ctty(1): a session leader's exit takes the terminal from its
// session. The foreground group gets SIGHUP, the terminal has no session
// or foreground group any more (TIOCGSID: ENOTTY, TIOCGPGRP: 0) and the
// session's other processes have no /dev/tty.
TEST(Pty, ASessionLeadersExitTakesTheTerminalFromItsSession) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int ready[2], result[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(result), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t leader = SessionChild(p, ready[1], [&] {
    sigset_t set;  // the member's from its start: the SIGHUP stays pending
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    const pid_t member = fork();  // in the leader's group, the foreground one
    if (member == 0) {
      close(go[1]);
      char c = 0;
      if (write(ready[1], "m", 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
      if (sigpending(&set) != 0 || sigismember(&set, SIGHUP) != 1) c = 'h';
      const int tty = open("/dev/tty", O_RDWR);
      if (tty >= 0 || errno != ENXIO) c = 't';
      (void)!write(result[1], &c, 1);
      _exit(0);
    }
    return member > 0 ? 0 : 1;
  });
  for (int fd : {ready[1], result[1], go[0]}) close(fd);  // theirs: an early exit is EOF
  WaitReady(ready[0]);  // the leader
  WaitReady(ready[0]);  // its member
  int st;
  ASSERT_EQ(waitpid(leader, &st, 0), leader);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  int v = -1;
  EXPECT_ERRNO(ENOTTY, ioctl(p.master, TIOCGSID, &v));
  ASSERT_EQ(ioctl(p.master, TIOCGPGRP, &v), 0);
  EXPECT_EQ(v, 0);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  char c = 0;
  ASSERT_EQ(read(result[0], &c, 1), 1);
  // 'h': the member got no SIGHUP; 't': it still opened /dev/tty.
  EXPECT_EQ(c, 'g');
  for (int fd : {ready[0], result[0], go[1]}) close(fd);
}

volatile sig_atomic_t g_winch = 0;

TEST(Pty, TerminalIsFreeAgainWhenItsSessionEnds) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid_t first = SessionChild(p, pfd[1], [] { return 0; });
  WaitReady(pfd[0]);
  int st;
  ASSERT_EQ(waitpid(first, &st, 0), first);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  pid_t second = SessionChild(p, pfd[1], [] {
    for (;;) pause();
    return 0;
  });
  WaitReady(pfd[0]);
  WriteAll(p.master, "\x1c");  // VQUIT
  ASSERT_EQ(waitpid(second, &st, 0), second);
  EXPECT_EQ(WIFSIGNALED(st) ? WTERMSIG(st) : st, SIGQUIT);
  close(pfd[0]);
  close(pfd[1]);
}

TEST(Pty, WindowSizeAndSigwinch) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &old);  // the child inherits it blocked
  int replica = p.replica;
  pid_t pid = SessionChild(p, pfd[1], [replica] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGWINCH);
    int sig = 0;
    if (sigwait(&s, &sig) != 0 || sig != SIGWINCH) return 1;
    winsize ws{};
    if (ioctl(replica, TIOCGWINSZ, &ws) != 0) return 2;
    return ws.ws_row == 40 && ws.ws_col == 100 ? 0 : 3;
  });
  sigprocmask(SIG_SETMASK, &old, nullptr);
  WaitReady(pfd[0]);
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 100;
  ASSERT_EQ(ioctl(p.master, TIOCSWINSZ, &ws), 0);
  winsize got{};
  ASSERT_EQ(ioctl(p.replica, TIOCGWINSZ, &got), 0);
  EXPECT_EQ(got.ws_col, 100);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  close(pfd[0]);
  close(pfd[1]);
}

TEST(Pty, SessionLeaderGetsSighupWhenMasterCloses) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid_t pid = SessionChild(p, pfd[1], [] {
    for (;;) pause();
    return 0;
  });
  WaitReady(pfd[0]);
  close(p.master);
  p.master = -1;
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(st)) << st;
  EXPECT_EQ(WIFSIGNALED(st) ? WTERMSIG(st) : 0, SIGHUP);
  close(pfd[0]);
  close(pfd[1]);
}

TEST(Pty, DevTtyIsTheControllingPty) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid_t pid = SessionChild(p, pfd[1], [] {
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0) return 1;
    if (write(fd, "via tty\n", 8) != 8) return 2;
    int sid = 0;
    if (ioctl(fd, TIOCGSID, &sid) != 0 || sid != getpid()) return 3;
    return 0;
  });
  WaitReady(pfd[0]);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(ReadExactly(p.master, 9), "via tty\r\n");
  close(pfd[0]);
  close(pfd[1]);
}

TEST(Pty, JobControlIoctlsNeedTheControllingTerminal) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int v;
  // Not our controlling terminal.
  EXPECT_ERRNO(ENOTTY, ioctl(p.replica, TIOCGPGRP, &v));
  v = getpgrp();
  EXPECT_ERRNO(ENOTTY, ioctl(p.replica, TIOCSPGRP, &v));
  EXPECT_ERRNO(ENOTTY, ioctl(p.master, TIOCGSID, &v));  // no session yet
  EXPECT_ERRNO(ENOTTY, ioctl(p.replica, TIOCNOTTY));
}

TEST(Pty, PeerFlushAndUnknownIoctls) {
  Pair p;
  ASSERT_GE(p.replica, 0);
  int peer = ioctl(p.master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  ASSERT_GE(peer, 0) << ErrnoName(errno);
  EXPECT_TRUE(isatty(peer));
  WriteAll(peer, "peer\n");
  EXPECT_EQ(ReadExactly(p.master, 6), "peer\r\n");
  close(peer);

  WriteAll(p.master, "flushed\n");
  EXPECT_EQ(ReadExactly(p.master, 9), "flushed\r\n");
  ASSERT_EQ(tcflush(p.replica, TCIFLUSH), 0);
  SetNonblock(p.replica);
  EXPECT_EQ(ReadSome(p.replica), Err(EAGAIN));
  EXPECT_ERRNO(EINVAL, ioctl(p.replica, TCFLSH, 7));
  EXPECT_EQ(tcflow(p.replica, TCOON), 0);
  EXPECT_EQ(tcdrain(p.replica), 0);
  int q = -1;
  ASSERT_EQ(ioctl(p.replica, TIOCOUTQ, &q), 0);
  EXPECT_EQ(q, 0);
  EXPECT_ERRNO(ENOTTY, ioctl(p.replica, _IO('T', 0x7e)));
}

}  // namespace
}  // namespace syscall_test
