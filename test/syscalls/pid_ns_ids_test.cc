// Conformance tests for the ids that cross a pid namespace's boundary
// (pid_namespaces(7)): every pid a call takes is looked up in the caller's
// namespace (find_vpid()), and every pid it gives back is the caller's view
// of it (pid_vnr(): 0 for a process outside). File owners (F_SETOWN,
// F_GETOWN, F_GETOWN_EX), SO_PEERCRED and SCM_CREDENTIALS, pidfd_open,
// ptrace and its fork event's message, getpriority/prlimit/sched_*/CPU
// clocks by pid, timers aimed at a thread, a terminal's TIOCGSID/TIOCGPGRP/
// TIOCSPGRP, the SysV objects' last pids, and the TIDs in PI and robust
// futex words. Each test makes a new namespace (needs CAP_SYS_ADMIN); its
// init returns a distinct code per failed check.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Sends one byte on `fd`, with SCM_CREDENTIALS `c` if given.
bool SendByte(int fd, const ucred* c) {
  char b = 'x';
  iovec v{&b, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  if (c != nullptr) {
    m.msg_control = buf;
    m.msg_controllen = sizeof(buf);
    cmsghdr* h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_CREDENTIALS;
    h->cmsg_len = CMSG_LEN(sizeof(ucred));
    memcpy(CMSG_DATA(h), c, sizeof(ucred));
  }
  return sendmsg(fd, &m, 0) == 1;
}

// Receives one byte on `fd` and the sender's pid from its SCM_CREDENTIALS;
// -1 if either is missing.
pid_t RecvCredPid(int fd) {
  char b;
  iovec v{&b, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr m{};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  m.msg_control = buf;
  m.msg_controllen = sizeof(buf);
  if (recvmsg(fd, &m, 0) != 1) return -1;
  cmsghdr* h = CMSG_FIRSTHDR(&m);
  if (h == nullptr || h->cmsg_type != SCM_CREDENTIALS) return -1;
  ucred u;
  memcpy(&u, CMSG_DATA(h), sizeof(u));
  return u.pid;
}

// A grandchild (id 2 of the caller's new namespace) that waits to be
// killed, ready once `fn` has run in it.
pid_t Sleeper(int (*fn)()) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t c = fork();
  if (c == 0) {
    close(ready[0]);
    const char r = static_cast<char>(fn());
    if (write(ready[1], &r, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char r = 1;
  if (c < 0 || read(ready[0], &r, 1) != 1 || r != 0) {
    if (c > 0) kill(c, SIGKILL);
    close(ready[0]);
    return -1;
  }
  close(ready[0]);
  return c;
}

// Ends a Sleeper: true if it died of SIGKILL.
bool EndSleeper(pid_t c) { return kill(c, SIGKILL) == 0 && WaitCode(c) == 200 + SIGKILL; }

TEST(PidNsIdsTest, FileOwnerIsTheCallersView) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int a[2], up[2], down[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(down), 0);
  ASSERT_EQ(fcntl(a[0], F_SETOWN, getpid()), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    // The owner is outside: 0 here.
    if (fcntl(a[0], F_GETOWN) != 0) _exit(1);
    f_owner_ex ex{};
    if (fcntl(a[0], F_GETOWN_EX, &ex) != 0 || ex.type != F_OWNER_PID || ex.pid != 0) _exit(2);
    // Our id here names us: the SIGIO comes to us.
    if (fcntl(a[0], F_SETOWN, 1) != 0 || fcntl(a[0], F_GETOWN) != 1) _exit(3);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) _exit(4);
    if (fcntl(a[0], F_SETFL, O_ASYNC) != 0 || write(a[1], "x", 1) != 1) _exit(5);
    timespec ts{10, 0};
    if (sigtimedwait(&set, nullptr, &ts) != SIGIO) _exit(6);
    // An id this namespace does not have.
    if (fcntl(a[0], F_SETOWN, 2) != -1 || errno != ESRCH) _exit(7);
    if (write(up[1], "r", 1) != 1) _exit(8);
    char b;
    if (read(down[0], &b, 1) != 1) _exit(9);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  char b;
  if (read(up[0], &b, 1) == 1) {  // else the child ended early: its code says why
    // The child's own id as we see it.
    EXPECT_EQ(fcntl(a[0], F_GETOWN), pid);
    f_owner_ex ex{};
    EXPECT_EQ(fcntl(a[0], F_GETOWN_EX, &ex), 0);
    EXPECT_EQ(ex.pid, pid);
    EXPECT_EQ(write(down[1], "g", 1), 1);
  }
  EXPECT_EQ(WaitCode(pid), 0);
  for (int fd : {a[0], a[1], up[0], down[1]}) close(fd);
}

TEST(PidNsIdsTest, PeerCredAndScmCredentialsAreTheReadersView) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int on = 1;
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    // The pair's peer is its maker, the test: outside, pid 0 here.
    ucred pc{};
    socklen_t len = sizeof(pc);
    if (getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &pc, &len) != 0) _exit(1);
    if (pc.pid != 0 || pc.uid != getuid()) _exit(2);
    if (setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) _exit(3);
    // We name ourselves by our id here.
    const ucred mine{1, getuid(), getgid()};
    if (!SendByte(sv[1], &mine)) _exit(4);
    // The test's byte: its credentials say pid 0 here.
    if (RecvCredPid(sv[1]) != 0) _exit(5);
    _exit(0);
  }
  close(sv[1]);  // a child that ended early: EOF here, not a hang
  EXPECT_EQ(RecvCredPid(sv[0]), pid);
  EXPECT_TRUE(SendByte(sv[0], nullptr));
  EXPECT_EQ(WaitCode(pid), 0);
  close(sv[0]);
}

TEST(PidNsIdsTest, PidfdOpenTakesTheCallersId) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    const pid_t c = fork();
    if (c == 0) _exit(42);
    if (c != 2) _exit(1);
    const int fd = static_cast<int>(syscall(SYS_pidfd_open, 2, 0));
    if (fd < 0) _exit(2);
    siginfo_t si{};
    if (waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED) != 0) _exit(3);
    if (si.si_pid != 2 || si.si_status != 42) _exit(4);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

int NiceLimitsPolicy() {
  sched_param sp{};
  const rlimit r{100, 200};
  if (setpriority(PRIO_PROCESS, 0, 7) != 0 || setrlimit(RLIMIT_NOFILE, &r) != 0 ||
      sched_setscheduler(0, SCHED_BATCH, &sp) != 0) {
    return 1;
  }
  return 0;
}

TEST(PidNsIdsTest, SchedulingLimitsAndClocksByTheCallersId) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    const pid_t c = Sleeper(NiceLimitsPolicy);
    if (c != 2) _exit(1);
    errno = 0;
    if (getpriority(PRIO_PROCESS, 2) != 7 || errno != 0) _exit(2);
    rlimit r{};
    if (prlimit(2, RLIMIT_NOFILE, nullptr, &r) != 0 || r.rlim_cur != 100) _exit(3);
    if (sched_getscheduler(2) != SCHED_BATCH) _exit(4);
    sched_param sp{};
    if (sched_getparam(2, &sp) != 0) _exit(5);
    cpu_set_t cs;
    if (sched_getaffinity(2, sizeof(cs), &cs) != 0) _exit(6);
    clockid_t cid;
    timespec ts;
    if (clock_getcpuclockid(2, &cid) != 0 || clock_gettime(cid, &ts) != 0) _exit(7);
    // Ids this namespace does not have.
    if (getpriority(PRIO_PROCESS, 3) != -1 || errno != ESRCH) _exit(8);
    if (sched_getscheduler(3) != -1 || errno != ESRCH) _exit(9);
    if (prlimit(3, RLIMIT_NOFILE, nullptr, &r) != -1 || errno != ESRCH) _exit(10);
    if (!EndSleeper(c)) _exit(11);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsIdsTest, TimerForAThreadByItsId) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) _exit(1);
    sigevent ev{};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
    int timer = -1;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &timer) != 0) _exit(2);
    const itimerspec its{{0, 0}, {0, 1000000}};
    if (syscall(SYS_timer_settime, timer, 0, &its, nullptr) != 0) _exit(3);
    timespec ts{10, 0};
    if (sigtimedwait(&set, nullptr, &ts) != SIGUSR1) _exit(4);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsIdsTest, PtraceByTheCallersId) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    const pid_t c = Sleeper([] { return 0; });
    if (c != 2) _exit(1);
    if (ptrace(PTRACE_SEIZE, 2, 0, 0) != 0) _exit(2);
    if (ptrace(PTRACE_INTERRUPT, 2, 0, 0) != 0) _exit(3);
    int st;
    if (waitpid(2, &st, __WALL) != 2 || !WIFSTOPPED(st)) _exit(4);
    if (ptrace(PTRACE_DETACH, 2, 0, 0) != 0) _exit(5);
    if (!EndSleeper(c)) _exit(6);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

// A tracer outside: PTRACE_EVENT_FORK's message is the new child's id in
// the tracer's namespace, not the tracee's.
TEST(PidNsIdsTest, ForkEventMessageIsTheTracersView) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    close(go[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(1);
    const pid_t c = fork();
    if (c == 0) _exit(0);
    _exit(c == 2 && WaitCode(c) == 0 ? 0 : 2);
  }
  close(go[0]);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEFORK), 0) << ErrnoName(errno);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  close(go[1]);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSTOPPED(st));
  EXPECT_EQ(st >> 8, SIGTRAP | (PTRACE_EVENT_FORK << 8));
  unsigned long msg = 0;
  EXPECT_EQ(ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg), 0);
  const std::string status = ReadFile("/proc/" + std::to_string(msg) + "/status");
  const bool ok = status.find("\nNSpid:\t" + std::to_string(msg) + "\t2\n") != std::string::npos;
  EXPECT_TRUE(ok) << "message " << msg << ": " << status;
  if (ok) {
    // The new child starts traced and stopped: let both go.
    const pid_t gc = static_cast<pid_t>(msg);
    EXPECT_EQ(waitpid(gc, &st, __WALL), gc);
    EXPECT_EQ(ptrace(PTRACE_DETACH, gc, 0, 0), 0);
    EXPECT_EQ(ptrace(PTRACE_DETACH, pid, 0, 0), 0);
    EXPECT_EQ(WaitCode(pid), 0);
  } else {
    // Whatever the message named, not the new child: end the namespace
    // (its init's end kills the stopped child too).
    kill(pid, SIGKILL);
    EXPECT_EQ(WaitCode(pid), 200 + SIGKILL);
  }
}

TEST(PidNsIdsTest, TerminalSessionAndGroupsAreTheCallersView) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    if (setsid() != 1) _exit(1);
    const int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) _exit(2);
    const int s = open(ptsname(m), O_RDWR);  // the session's controlling tty
    if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0) _exit(3);
    pid_t v = -1;
    if (ioctl(s, TIOCGSID, &v) != 0 || v != 1) _exit(4);
    if (ioctl(m, TIOCGPGRP, &v) != 0 || v != 1) _exit(5);
    // An id this namespace does not have.
    const pid_t none = 9;
    if (ioctl(s, TIOCSPGRP, &none) != -1 || errno != ESRCH) _exit(6);
    const pid_t c = Sleeper([] { return setpgid(0, 0); });
    if (c != 2) _exit(7);
    if (ioctl(s, TIOCSPGRP, &c) != 0) _exit(8);
    if (ioctl(m, TIOCGPGRP, &v) != 0 || v != 2) _exit(9);
    if (!EndSleeper(c)) _exit(10);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

// A child of the caller that makes a new group (setpgid) or session
// (setsid) of its own, forks a member that waits to be killed, and exits:
// the member's id, once the member runs, with its leader reaped (by the
// caller, which must be its namespace's init to inherit the member); -1 on
// failure.
pid_t MemberOfAGroupWithoutLeader(bool session) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t leader = fork();
  if (leader == 0) {
    close(ready[0]);
    if (session ? setsid() < 0 : setpgid(0, 0) != 0) _exit(1);
    const pid_t member = fork();
    if (member == 0) {
      const pid_t me = getpid();
      if (write(ready[1], &me, sizeof(me)) != sizeof(me)) _exit(1);
      for (;;) pause();
    }
    _exit(member > 0 ? 0 : 1);
  }
  close(ready[1]);
  pid_t member = -1;
  const bool ok = leader > 0 && read(ready[0], &member, sizeof(member)) == sizeof(member);
  close(ready[0]);
  if (leader > 0 && WaitCode(leader) != 0) return -1;
  return ok ? member : -1;
}

// A process group or session whose leader has been reaped lives on while a
// member does, with its id (the leader's struct pid stays attached to the
// members, PIDTYPE_PGID/PIDTYPE_SID): getpgid/getsid show it and
// kill(-pgrp) finds the group, also inside a pid namespace; once its last
// member is reaped the group is gone (ESRCH).
TEST(PidNsIdsTest, GroupAndSessionIdsOutliveTheirReapedLeader) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    if (setsid() != 1) _exit(13);
    // Group 2 (and session 2) with leader 2 reaped, member 3.
    const pid_t in_session = MemberOfAGroupWithoutLeader(true);
    if (in_session != 3) _exit(1);
    if (getpgid(in_session) != 2) _exit(2);
    if (getsid(in_session) != 2) _exit(3);
    if (kill(-2, 0) != 0) _exit(4);
    // Group 4 of the init's session, leader 4 reaped, member 5.
    const pid_t in_group = MemberOfAGroupWithoutLeader(false);
    if (in_group != 5) _exit(5);
    if (getpgid(in_group) != 4 || getsid(in_group) != 1) _exit(6);
    // The group can still be joined (setpgid looks for it in the session).
    const pid_t joiner = fork();
    if (joiner == 0) _exit(setpgid(0, 4) == 0 && getpgrp() == 4 ? 0 : 1);
    if (WaitCode(joiner) != 0) _exit(7);
    if (kill(-4, SIGKILL) != 0) _exit(8);
    if (WaitCode(in_group) != 200 + SIGKILL) _exit(9);
    if (kill(-4, 0) != -1 || errno != ESRCH) _exit(10);
    if (kill(in_session, SIGKILL) != 0 || WaitCode(in_session) != 200 + SIGKILL) _exit(11);
    if (kill(-2, 0) != -1 || errno != ESRCH) _exit(12);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsIdsTest, SysVLastPidsAreTheCallersView) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const int sem = semget(IPC_PRIVATE, 1, 0600);
  const int shm = shmget(IPC_PRIVATE, 4096, 0600);
  const int msq = msgget(IPC_PRIVATE, 0600);
  ASSERT_GE(sem, 0);
  ASSERT_GE(shm, 0);
  ASSERT_GE(msq, 0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    sembuf op{0, 1, 0};
    if (semop(sem, &op, 1) != 0 || semctl(sem, 0, GETPID) != 1) _exit(1);
    void* p = shmat(shm, nullptr, 0);
    if (p == reinterpret_cast<void*>(-1)) _exit(2);
    shmid_ds sd{};
    // The test made it (outside: 0); we attached it last.
    if (shmctl(shm, IPC_STAT, &sd) != 0 || sd.shm_cpid != 0 || sd.shm_lpid != 1) _exit(3);
    if (shmdt(p) != 0) _exit(4);
    struct {
      long type;
      char text[1];
    } msg{1, {'x'}};
    if (msgsnd(msq, &msg, 1, 0) != 0) _exit(5);
    msqid_ds md{};
    if (msgctl(msq, IPC_STAT, &md) != 0 || md.msg_lspid != 1 || md.msg_lrpid != 0) _exit(6);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
  EXPECT_EQ(semctl(sem, 0, GETPID), pid);
  shmid_ds sd{};
  ASSERT_EQ(shmctl(shm, IPC_STAT, &sd), 0);
  EXPECT_EQ(sd.shm_cpid, getpid());
  EXPECT_EQ(sd.shm_lpid, pid);
  msqid_ds md{};
  ASSERT_EQ(msgctl(msq, IPC_STAT, &md), 0);
  EXPECT_EQ(md.msg_lspid, pid);
  semctl(sem, 0, IPC_RMID);
  shmctl(shm, IPC_RMID, nullptr);
  msgctl(msq, IPC_RMID, nullptr);
}

// /proc is the outer namespace's: its stat shows that namespace's ids for
// the parent, group and session, read from inside as from outside.
TEST(PidNsIdsTest, ProcStatFromInsideShowsProcsNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const int parent = getpid(), pgrp = getpgrp(), sid = getsid(0);
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    const std::string st = ReadFile("/proc/self/stat");
    const size_t paren = st.rfind(')');
    if (paren == std::string::npos) _exit(1);
    char state;
    int ppid, pg, sess;
    if (sscanf(st.c_str() + paren + 1, " %c %d %d %d", &state, &ppid, &pg, &sess) != 4) _exit(2);
    if (ppid != parent) _exit(3);
    if (pg != pgrp) _exit(4);
    if (sess != sid) _exit(5);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

TEST(PidNsIdsTest, PiFutexWordHoldsTheCallersTid) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    uint32_t word = 0;
    if (syscall(SYS_futex, &word, FUTEX_LOCK_PI, 0, nullptr, nullptr, 0) != 0) _exit(1);
    if (word != static_cast<uint32_t>(syscall(SYS_gettid)) || word != 1) _exit(2);
    if (syscall(SYS_futex, &word, FUTEX_UNLOCK_PI, 0, nullptr, nullptr, 0) != 0 || word != 0) {
      _exit(3);
    }
    // A word naming id 2 of this namespace: held by that live task.
    const pid_t c = Sleeper([] { return 0; });
    if (c != 2) _exit(4);
    word = 2;
    if (syscall(SYS_futex, &word, FUTEX_TRYLOCK_PI, 0, nullptr, nullptr, 0) != -1 ||
        errno != EAGAIN) {
      _exit(5);
    }
    // An id this namespace does not have.
    uint32_t other = 3;
    if (syscall(SYS_futex, &other, FUTEX_TRYLOCK_PI, 0, nullptr, nullptr, 0) != -1 ||
        errno != ESRCH) {
      _exit(6);
    }
    if (!EndSleeper(c)) _exit(7);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

// A robust mutex's owner dies inside the namespace: the word holds its id
// there, and its exit marks the owner dead for the next locker.
TEST(PidNsIdsTest, RobustMutexOfATaskThatDiedInside) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t pid = ForkWith(CLONE_NEWPID);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    void* mem = mmap(nullptr, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) _exit(1);
    auto* mu = static_cast<pthread_mutex_t*>(mem);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(mu, &attr) != 0) _exit(2);
    // fork()ed children (glibc's idea of their tid right) lock it.
    pid_t c = fork();
    if (c == 0) _exit(pthread_mutex_lock(mu) == 0 ? 0 : 1);  // dies holding it
    if (WaitCode(c) != 0) _exit(3);
    c = fork();
    if (c == 0) {
      timespec deadline;
      clock_gettime(CLOCK_REALTIME, &deadline);
      deadline.tv_sec += 10;
      const int r = pthread_mutex_timedlock(mu, &deadline);
      _exit(r == EOWNERDEAD ? 0 : r == ETIMEDOUT ? 1 : 2);
    }
    const int code = WaitCode(c);
    _exit(code == 0 ? 0 : 10 + code);
  }
  EXPECT_EQ(WaitCode(pid), 0);
}

}  // namespace
}  // namespace syscall_test
