// Ids in /proc files that are not a process's own, each shown in the pid
// namespace Linux picks for it:
// - /proc/loadavg's last field: the id the reader's own pid namespace
//   gave out last (loadavg_proc_show(): task_active_pid_ns(current));
// - /proc/sysvipc/{shm,msg}'s cpid/lpid and lspid/lrpid: the reader's
//   (sysvipc_proc_open()), 0 for a process outside it;
// - a pidfd's /proc/PID/fdinfo Pid: and NSpid: lines (pidfd_show_fdinfo()):
//   /proc's namespace (its mounter's), 0 for a process outside it, -1 once
//   no task holds its id (pid_has_task()): a process's (its leader's) once
//   it has been reaped, another thread's once it has exited;
// - /proc/sys/kernel/ns_last_pid: the reader's namespace's last id, and
//   where its next fork's id starts when written (pid_ns_ctl_handler()).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// /proc/loadavg's last field.
std::string LastPid() {
  std::istringstream in(ReadFile("/proc/loadavg"));
  std::string w, last;
  while (in >> w) last = w;
  return last;
}

// The Pid: and NSpid: lines of fd `fd`'s fdinfo, as "Pid:\tN\nNSpid:\t...".
std::string PidLines(int fd) {
  std::istringstream in(ReadFile("/proc/self/fdinfo/" + std::to_string(fd)));
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind("Pid:", 0) == 0 || line.rfind("NSpid:", 0) == 0) out += line + "\n";
  }
  return out;
}

int PidfdOpen(pid_t pid, unsigned flags = 0) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, flags));
}
constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD

// Waits until `fd` polls readable (its process or thread has exited).
bool AwaitReadable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 10000) == 1 && (p.revents & POLLIN);
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Waits until thread `tid` of process `pid` has exited: a zombie in /proc
// (or not there at all).
bool AwaitThreadExit(pid_t pid, pid_t tid) {
  const std::string stat =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat";
  for (int i = 0; i < 10000; ++i, usleep(1000)) {
    const std::string s = ReadFile(stat);
    const size_t paren = s.rfind(')');
    if (s.rfind("<error", 0) == 0) return true;
    if (paren != std::string::npos && s.compare(paren + 2, 1, "Z") == 0) return true;
  }
  return false;
}

std::string Lines(const std::string& pid, const std::string& nspid) {
  return "Pid:\t" + pid + "\nNSpid:\t" + nspid + "\n";
}

// The init of a new pid namespace sees 1 as the last id given out; its
// child makes it 2. (Other readers' values depend on the host.)
TEST(ProcPidNsIdsTest, LoadavgShowsTheLastIdOfTheReadersNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    if (LastPid() != "1") _exit(1);
    const pid_t c = fork();
    if (c == 0) _exit(0);
    if (c != 2 || WaitCode(c) != 0) _exit(2);
    if (LastPid() != "2") _exit(3);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(init), 0);
}

// A segment and a queue made by the init of a new pid namespace: it sees
// itself as their creator and sender (1); the test, outside, sees the
// init's id there; the init's child in a namespace further down sees 0.
TEST(ProcPidNsIdsTest, SysvipcPidsAreTheReadersNamespaces) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ASSERT_GE(shm, 0) << ErrnoName(errno);
  const int msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  ASSERT_GE(msq, 0) << ErrnoName(errno);
  const std::string shm_id = std::to_string(shm), msq_id = std::to_string(msq);
  int up[2];
  ASSERT_EQ(pipe(up), 0);
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    close(up[0]);
    // It attaches (lpid) and sends (lspid).
    void* at = shmat(shm, nullptr, 0);
    if (at == reinterpret_cast<void*>(-1) || shmdt(at) != 0) _exit(1);
    struct {
      long type;
      char text[1];
    } m = {1, {'x'}};
    if (msgsnd(msq, &m, 1, 0) != 0) _exit(2);
    std::vector<std::string> s = LineWith("/proc/sysvipc/shm", 1, shm_id);
    if (s.size() < 6 || s[5] != "1") _exit(3);  // lpid
    std::vector<std::string> q = LineWith("/proc/sysvipc/msg", 1, msq_id);
    if (q.size() < 7 || q[5] != "1" || q[6] != "0") _exit(4);  // lspid, lrpid
    const pid_t below = ForkWith(CLONE_NEWPID);
    if (below == 0) {
      s = LineWith("/proc/sysvipc/shm", 1, shm_id);
      q = LineWith("/proc/sysvipc/msg", 1, msq_id);
      _exit(s.size() >= 6 && s[5] == "0" && q.size() >= 7 && q[5] == "0" ? 0 : 1);
    }
    if (WaitCode(below) != 0) _exit(5);
    if (write(up[1], "x", 1) != 1) _exit(6);
    pause();  // until killed: its ids stay live while the test reads them
    _exit(7);
  }
  close(up[1]);
  char b;
  const bool ready = read(up[0], &b, 1) == 1;
  close(up[0]);
  std::vector<std::string> s = LineWith("/proc/sysvipc/shm", 1, shm_id);
  std::vector<std::string> q = LineWith("/proc/sysvipc/msg", 1, msq_id);
  kill(init, SIGKILL);
  const int code = WaitCode(init);
  shmctl(shm, IPC_RMID, nullptr);
  msgctl(msq, IPC_RMID, nullptr);
  ASSERT_TRUE(ready) << "the init failed: exit " << code;
  ASSERT_GE(s.size(), 6u);
  EXPECT_EQ(s[4], std::to_string(getpid()));  // cpid: the test made it
  EXPECT_EQ(s[5], std::to_string(init));      // lpid
  ASSERT_GE(q.size(), 7u);
  EXPECT_EQ(q[5], std::to_string(init));  // lspid
}

// A pidfd's fdinfo: its process by id, in /proc's namespace and those
// below down to the process's own; -1 once reaped (a zombie still shows).
TEST(ProcPidNsIdsTest, PidfdFdinfoShowsTheProcessInProcsNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  // A child in a namespace of its own: its id here and 1 there.
  int release;
  const pid_t init = WaitingInit(&release);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  const int fd = PidfdOpen(init);
  ASSERT_GE(fd, 0) << ErrnoName(errno);
  const std::string here = std::to_string(init);
  EXPECT_EQ(PidLines(fd), Lines(here, here + "\t1"));
  close(release);
  // A zombie still has its id; a reaped process has none.
  siginfo_t info;
  ASSERT_EQ(waitid(P_PID, init, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(PidLines(fd), Lines(here, here + "\t1"));
  EXPECT_EQ(WaitCode(init), 0);
  EXPECT_EQ(PidLines(fd), Lines("-1", "-1"));
  close(fd);

  // The init of a new namespace with a proc of its own: a pidfd of the
  // test (outside) shows 0, one of its own child its id there.
  const int outer = PidfdOpen(getpid());
  ASSERT_GE(outer, 0) << ErrnoName(errno);
  const pid_t inner = ForkWith(CLONE_NEWPID | CLONE_NEWNS);
  ASSERT_GE(inner, 0) << ErrnoName(errno);
  if (inner == 0) {
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(1);
    if (mount("proc", "/proc", "proc", 0, nullptr) != 0) _exit(2);
    if (PidLines(outer) != Lines("0", "0")) _exit(3);
    const pid_t c = fork();
    if (c == 0) {
      pause();
      _exit(0);
    }
    const int cfd = PidfdOpen(c);
    if (c != 2 || cfd < 0) _exit(4);
    const int self = PidfdOpen(1);
    if (self < 0 || PidLines(self) != Lines("1", "1")) _exit(5);
    if (PidLines(cfd) != Lines("2", "2")) _exit(6);
    kill(c, SIGKILL);
    WaitCode(c);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(inner), 0);
  close(outer);
}

// A leader that exits before its other threads keeps its id until the
// process is reaped (a zombie: delay_group_leader()), so a pidfd of it, a
// thread pidfd too, shows its id; another thread lets go of its id as it
// exits (released at once), so its thread pidfd shows -1 from then on. The
// leader's thread pidfd polls readable only once the whole process has
// exited (this host's Linux, 6.18), as the process's pidfd does.
TEST(ProcPidNsIdsTest, PidfdFdinfoOfALeaderThatExitedBeforeItsThread) {
  int tids[2], leader_go[2], thread_go[2];
  ASSERT_EQ(pipe(tids), 0);
  ASSERT_EQ(pipe(leader_go), 0);
  ASSERT_EQ(pipe(thread_go), 0);
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    close(tids[0]);
    close(leader_go[1]);
    close(thread_go[1]);
    std::thread([&] {
      const pid_t t = gettid();
      if (write(tids[1], &t, sizeof(t)) != sizeof(t)) _exit(1);
      char b;
      (void)!read(thread_go[0], &b, 1);
      syscall(SYS_exit, 0);  // the last thread: the process exits 0
    }).detach();
    char b;
    (void)!read(leader_go[0], &b, 1);
    syscall(SYS_exit, 0);  // the leader only
  }
  close(tids[1]);
  close(leader_go[0]);
  close(thread_go[0]);
  pid_t t = 0;
  ASSERT_EQ(read(tids[0], &t, sizeof(t)), static_cast<ssize_t>(sizeof(t)));
  close(tids[0]);
  const int leader = PidfdOpen(c, kPidfdThread);
  const int thread = PidfdOpen(t, kPidfdThread);
  const int process = PidfdOpen(c);
  ASSERT_GE(leader, 0) << ErrnoName(errno);
  ASSERT_GE(thread, 0) << ErrnoName(errno);
  ASSERT_GE(process, 0) << ErrnoName(errno);
  const std::string cs = std::to_string(c), ts = std::to_string(t);

  close(leader_go[1]);
  ASSERT_TRUE(AwaitThreadExit(c, c));
  EXPECT_FALSE(Readable(leader)) << "the leader has exited, its thread runs";
  EXPECT_FALSE(Readable(process));
  EXPECT_EQ(PidLines(leader), Lines(cs, cs)) << "the leader has exited, its thread runs";
  EXPECT_EQ(PidLines(process), Lines(cs, cs));
  EXPECT_EQ(PidLines(thread), Lines(ts, ts));

  close(thread_go[1]);
  ASSERT_TRUE(AwaitReadable(process));
  EXPECT_TRUE(Readable(leader));
  EXPECT_TRUE(Readable(thread));
  EXPECT_EQ(PidLines(thread), Lines("-1", "-1")) << "the last thread has exited";
  EXPECT_EQ(PidLines(leader), Lines(cs, cs)) << "a zombie";
  EXPECT_EQ(PidLines(process), Lines(cs, cs));

  EXPECT_EQ(WaitCode(c), 0);
  EXPECT_EQ(PidLines(leader), Lines("-1", "-1")) << "reaped";
  EXPECT_EQ(PidLines(process), Lines("-1", "-1"));
  close(leader);
  close(thread);
  close(process);
}

// In a pid namespace of its own (nothing else takes ids there): the init
// is the last id given, and a write makes the next fork take the id after
// the one written (LTP's pidfd_send_signal03 reuses a pid this way).
TEST(ProcPidNsIdsTest, NsLastPidReadAndWrite) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    const char* path = "/proc/sys/kernel/ns_last_pid";
    if (ReadFile(path) != "1\n") _exit(1);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, "100\n", 4) != 4) _exit(2);
    if (ReadFile(path) != "100\n") _exit(3);
    const pid_t c = fork();
    if (c == 0) _exit(0);
    if (c != 101) _exit(4);
    if (waitpid(c, nullptr, 0) != c) _exit(5);
    if (ReadFile(path) != "101\n") _exit(6);
    // Not a number, or below 0: EINVAL, nothing changes.
    errno = 0;
    if (lseek(fd, 0, SEEK_SET) != 0) _exit(7);
    if (write(fd, "abc", 3) != -1 || errno != EINVAL) _exit(8);
    if (lseek(fd, 0, SEEK_SET) != 0) _exit(7);
    if (write(fd, "-5", 2) != -1 || errno != EINVAL) _exit(9);
    close(fd);
    if (ReadFile(path) != "101\n") _exit(10);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(init), 0);
}

}  // namespace
}  // namespace syscall_test
