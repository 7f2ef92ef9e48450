// The ids a file's owner (F_SETOWN, F_SETOWN_EX: fown_struct's pid) and a
// terminal's foreground process group and session (tty->pgrp, ->session)
// keep are struct pid references, shown as pid_vnr() in the reader's
// namespace. An owner shows and is signalled while pid_task() finds what
// it names (f_getown(), send_sigio()): once reaped it reads 0 everywhere
// and a later holder of its id is never signalled. A terminal shows the
// number its group had, also once that group is gone (tiocgpgrp()).
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// F_GETOWN_EX's id, or -1.
int OwnerExId(int fd, int want_type) {
  f_owner_ex ex{};
  if (fcntl(fd, F_GETOWN_EX, &ex) != 0 || ex.type != want_type) return -1;
  return ex.pid;
}

bool Put(int fd) { return write(fd, "x", 1) == 1; }
bool Take(int fd) {
  char b;
  return read(fd, &b, 1) == 1;
}

// Waits up to 10 s for SIGIO, which the caller blocks.
bool GotSigio() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGIO);
  timespec ts{10, 0};
  return sigtimedwait(&set, nullptr, &ts) == SIGIO;
}

// Whether SIGIO, which the caller blocks, is pending.
bool SigioPending() {
  sigset_t set;
  return sigpending(&set) == 0 && sigismember(&set, SIGIO) == 1;
}

void BlockSigio() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGIO);
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

// A child in a pid namespace of its own owns two pipes as itself (id 1
// there), as a process and as its process group. We see our id for it,
// through F_GETOWN and F_GETOWN_EX, while it runs and as a zombie; once it
// is reaped, 0.
TEST(OwnerPidTest, AnOwnerBelowShowsAsOurIdUntilReaped) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int a[2], b[2], up[2], down[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(down), 0);
  const pid_t child = ForkWith(CLONE_NEWPID);
  ASSERT_GE(child, 0) << ErrnoName(errno);
  if (child == 0) {
    if (setpgid(0, 0) != 0) _exit(1);
    if (fcntl(a[0], F_SETOWN, getpid()) != 0 || fcntl(a[0], F_GETOWN) != 1) _exit(2);
    if (fcntl(b[0], F_SETOWN, -getpgrp()) != 0 || fcntl(b[0], F_GETOWN) != -1) _exit(3);
    if (!Put(up[1]) || !Take(down[0])) _exit(4);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  if (Take(up[0])) {  // else the child ended early: its code says why
    EXPECT_EQ(fcntl(a[0], F_GETOWN), child);
    EXPECT_EQ(OwnerExId(a[0], F_OWNER_PID), child);
    EXPECT_EQ(fcntl(b[0], F_GETOWN), -child);
    EXPECT_EQ(OwnerExId(b[0], F_OWNER_PGRP), child);
    EXPECT_TRUE(Put(down[1]));
    siginfo_t si{};
    ASSERT_EQ(waitid(P_PID, child, &si, WEXITED | WNOWAIT), 0);
    EXPECT_EQ(fcntl(a[0], F_GETOWN), child) << "a zombie";
    EXPECT_EQ(fcntl(b[0], F_GETOWN), -child) << "a zombie's group";
  }
  EXPECT_EQ(WaitCode(child), 0);
  EXPECT_EQ(fcntl(a[0], F_GETOWN), 0) << "reaped";
  EXPECT_EQ(OwnerExId(a[0], F_OWNER_PID), 0);
  EXPECT_EQ(fcntl(b[0], F_GETOWN), 0) << "its group gone";
  EXPECT_EQ(OwnerExId(b[0], F_OWNER_PGRP), 0);
  for (int fd : {a[0], a[1], b[0], b[1], up[0], down[1]}) close(fd);
}

// A thread that owns a pipe as itself (F_OWNER_TID: its task's struct
// pid) shows as its tid while it runs and 0 once it is gone (a thread other
// than the leader is released as it exits), not its old tid.
TEST(OwnerPidTest, AThreadOwnerShowsUntilItExits) {
  int a[2];
  ASSERT_EQ(pipe(a), 0);
  pid_t tid = 0;
  int seen = -1;
  std::thread th([&] {
    tid = gettid();
    f_owner_ex ex{F_OWNER_TID, tid};
    if (fcntl(a[0], F_SETOWN_EX, &ex) == 0) seen = OwnerExId(a[0], F_OWNER_TID);
  });
  th.join();
  ASSERT_NE(tid, getpid());
  EXPECT_EQ(seen, tid);
  // join() returns once the thread cleared its tid (mm_release()), which
  // may be before it is released: wait for that, up to 10 s.
  int now = OwnerExId(a[0], F_OWNER_TID);
  for (int i = 0; i < 1000 && now != 0; i++) {
    usleep(10 * 1000);
    now = OwnerExId(a[0], F_OWNER_TID);
  }
  EXPECT_EQ(now, 0) << "the exited thread " << tid;
  EXPECT_EQ(fcntl(a[0], F_GETOWN), 0);
  close(a[0]);
  close(a[1]);
}

// In the init of a namespace of the test's own: a process (id 2, its own
// group 2) owns pipe `a` as a process and `b` as its group, gets SIGIO
// for each, and is reaped; then a process made at id 2, its own group 2
// again, gets no SIGIO from either and both owners read 0. Returns 0 or
// what differed.
int ReusedOwnerIdInNamespace(const int a[2], const int b[2]) {
  int up[2], up2[2], go[2];  // each child's own `up`: an early exit is EOF
  if (pipe(up) != 0 || pipe(up2) != 0 || pipe(go) != 0) return 1;
  const pid_t owner = fork();
  if (owner == 0) {
    BlockSigio();
    if (setpgid(0, 0) != 0) _exit(1);
    if (fcntl(a[0], F_SETOWN, getpid()) != 0 || fcntl(b[0], F_SETOWN, -getpid()) != 0) _exit(2);
    if (fcntl(a[0], F_SETFL, O_ASYNC) != 0 || fcntl(b[0], F_SETFL, O_ASYNC) != 0) _exit(3);
    if (!Put(up[1]) || !GotSigio()) _exit(4);  // from a
    if (!Put(up[1]) || !GotSigio()) _exit(5);  // from b
    _exit(0);
  }
  close(up[1]);
  if (owner != 2) return 2;
  if (!Take(up[0]) || !Put(a[1]) || !Take(up[0]) || !Put(b[1])) return 3;
  if (int r = WaitCode(owner); r != 0) return 10 + r;
  if (!Take(a[0]) || !Take(b[0])) return 4;
  if (fcntl(a[0], F_GETOWN) != 0) return 5;  // reaped
  if (fcntl(b[0], F_GETOWN) != 0) return 6;
  const pid_t other = ForkAt(2);
  if (other == 0) {
    BlockSigio();
    close(go[1]);
    if (setpgid(0, 0) != 0) _exit(1);
    if (!Put(up2[1]) || !Take(go[0])) _exit(2);
    _exit(SigioPending() ? 3 : 0);
  }
  close(up2[1]);
  if (other != 2) return 7;
  if (!Take(up2[0])) return 8;
  const int owner_a = fcntl(a[0], F_GETOWN), owner_b = fcntl(b[0], F_GETOWN);
  const bool wrote = Put(a[1]) && Put(b[1]) && Put(go[1]);
  const int other_code = WaitCode(other);
  if (!wrote) return 9;
  if (owner_a != 0) return 40 + owner_a;
  if (owner_b != 0) return 50 - owner_b;
  if (other_code != 0) return 60 + other_code;
  return 0;
}

TEST(OwnerPidTest, AReapedOwnerIsNotSignalledOnceItsIdIsReused) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) _exit(ReusedOwnerIdInNamespace(a, b));
  // 1x: setup; 1x (x >= 10): the owner's exit code; 4y, 5y: F_GETOWN read
  // y (negated for b) with the id reused; 6x: the id's new holder got SIGIO.
  EXPECT_EQ(WaitCode(init), 0);
  // The owner was reaped: 0 here too, not its old id.
  EXPECT_EQ(fcntl(a[0], F_GETOWN), 0);
  EXPECT_EQ(fcntl(b[0], F_GETOWN), 0);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

// TIOCGPGRP and TIOCGSID of `fd`, or -1 each.
struct TtyIds {
  int pgrp = -1, sid = -1;
};
TtyIds IdsOf(int fd) {
  TtyIds ids;
  if (ioctl(fd, TIOCGPGRP, &ids.pgrp) != 0) ids.pgrp = -1;
  if (ioctl(fd, TIOCGSID, &ids.sid) != 0) ids.sid = -1;
  return ids;
}

// In the init of a namespace of the test's own, with pty master `m`: a
// session leader S (id 2 here) in a namespace below (id 1 there) makes
// the pty its controlling terminal and process G (id 3 here, 2 there),
// in a group of its own, the terminal's foreground group. We read 3 and 2
// through the master, S reads 2 and 1 through its terminal, also once G
// is reaped (the terminal keeps its group's numbers). 0 or what differed.
int TtyIdsInNamespace(int m) {
  int up[2], go[2];
  if (pipe(up) != 0 || pipe(go) != 0) return 1;
  const char* name = ptsname(m);
  if (name == nullptr) return 2;
  const pid_t s = ForkWith(CLONE_NEWPID);
  if (s == 0) {
    close(go[1]);
    close(up[0]);
    if (setsid() != 1) _exit(1);
    const int r = open(name, O_RDWR);  // the session's controlling terminal
    if (r < 0) _exit(2);
    const pid_t g = fork();
    if (g == 0) {
      (void)!Take(go[0]);
      _exit(0);
    }
    signal(SIGTTOU, SIG_IGN);
    if (g != 2 || setpgid(g, g) != 0 || tcsetpgrp(r, g) != 0) _exit(3);
    TtyIds live = IdsOf(r);
    if (live.pgrp != 2 || live.sid != 1) _exit(4);
    if (!Put(up[1]) || WaitCode(g) != 0) _exit(5);
    TtyIds reaped = IdsOf(r);
    if (reaped.pgrp != 2) _exit(10 + reaped.pgrp);
    if (reaped.sid != 1) _exit(20 + reaped.sid);
    if (!Put(up[1])) _exit(6);
    (void)!Take(go[0]);
    _exit(0);
  }
  close(go[0]);
  close(up[1]);  // S's and G's: an early exit is EOF
  if (s != 2) return 3;
  if (!Take(up[0])) return 100 + WaitCode(s);
  TtyIds live = IdsOf(m);
  if (!Put(go[1]) || !Take(up[0])) return 100 + WaitCode(s);
  TtyIds reaped = IdsOf(m);
  close(go[1]);
  if (int r = WaitCode(s); r != 0) return 100 + r;
  if (live.pgrp != 3) return 50 + live.pgrp;
  if (live.sid != 2) return 60 + live.sid;
  if (reaped.pgrp != 3) return 70 + reaped.pgrp;
  if (reaped.sid != 2) return 80 + reaped.sid;
  return 0;
}

TEST(OwnerPidTest, ATerminalShowsItsGroupAndSessionInTheReadersNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const int m = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(m, 0) << ErrnoName(errno);
  ASSERT_EQ(grantpt(m), 0);
  ASSERT_EQ(unlockpt(m), 0);
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) _exit(TtyIdsInNamespace(m));
  // 1-3: setup; 5y, 6y: the init read TIOCGPGRP, TIOCGSID y through the
  // master while the foreground group lived, 7y, 8y once it was reaped;
  // 100 + x: the session leader's exit code x (1y, 2y: it read TIOCGPGRP
  // y - 10, TIOCGSID y - 20 through its terminal once the group was reaped).
  EXPECT_EQ(WaitCode(init), 0);
  close(m);
}

}  // namespace
}  // namespace syscall_test
