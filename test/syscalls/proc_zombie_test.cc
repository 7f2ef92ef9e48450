// A process that has exited but is not yet reaped stays in /proc as a
// zombie until its parent waits (proc(5); Linux keeps the leader's
// task_struct until release_task()): /proc/PID/stat's state is Z, status
// says "Z (zombie)", /proc lists it; what needed its memory, files or
// working directory is empty or gone. A leader thread that ended before
// its process's other threads is such a zombie too (delay_group_leader()).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

std::string ProcPath(pid_t pid, const std::string& name) {
  return "/proc/" + std::to_string(pid) + "/" + name;
}

// Field 3 of /proc/PID/stat (after the comm's closing parenthesis), or
// '?' if it cannot be read.
char StatState(pid_t pid) {
  const std::string s = ReadFile(ProcPath(pid, "stat"));
  const size_t paren = s.rfind(')');
  if (s.rfind("<error", 0) == 0 || paren == std::string::npos || paren + 2 >= s.size()) return '?';
  return s[paren + 2];
}

// The value of the "key:" line of /proc/PID/status ("" if none).
std::string StatusField(pid_t pid, const std::string& key) {
  const std::string s = ReadFile(ProcPath(pid, "status"));
  const std::string want = "\n" + key + ":\t";
  size_t at = ("\n" + s).find(want);
  if (at == std::string::npos) return "";
  at += want.size() - 1;
  return s.substr(at, s.find('\n', at) - at);
}

// The names in directory `path` (none if it cannot be read).
std::set<std::string> List(const std::string& path) {
  std::set<std::string> out;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

// Waits (up to a minute, polling) until /proc/PID/stat shows state `want`.
bool AwaitState(pid_t pid, char want) {
  for (const int64_t until = NowMs() + 60000; NowMs() < until; usleep(2000)) {
    if (StatState(pid) == want) return true;
  }
  return false;
}

TEST(ProcZombieTest, ExitedChildShowsUntilReaped) {
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) _exit(7);
  // WNOWAIT: it has exited and is still there to be waited for.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, c, &info, WEXITED | WNOWAIT), 0) << ErrnoName(errno);
  const std::string pid = std::to_string(c);

  EXPECT_EQ(StatState(c), 'Z');
  EXPECT_EQ(StatusField(c, "State"), "Z (zombie)");
  EXPECT_EQ(StatusField(c, "PPid"), std::to_string(getpid()));
  EXPECT_EQ(StatusField(c, "Threads"), "1");
  EXPECT_EQ(StatusField(c, "VmSize"), "") << "a zombie has no memory";
  EXPECT_EQ(List("/proc").count(pid), 1u) << "a zombie is listed in /proc";
  EXPECT_EQ(List(ProcPath(c, "task")).count(pid), 1u);
  char buf[256];
  EXPECT_ERRNO(ENOENT, readlink(ProcPath(c, "exe").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(ENOENT, readlink(ProcPath(c, "cwd").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(ENOENT, readlink(ProcPath(c, "root").c_str(), buf, sizeof(buf)));
  EXPECT_EQ(ReadFile(ProcPath(c, "maps")), "");
  EXPECT_EQ(ReadFile(ProcPath(c, "cmdline")), "");
  std::set<std::string> fds = List(ProcPath(c, "fd"));
  fds.erase(".");
  fds.erase("..");
  EXPECT_TRUE(fds.empty()) << "a zombie has no open files";

  int status = 0;
  ASSERT_EQ(waitpid(c, &status, 0), c);
  EXPECT_EXIT_CODE(status, 7);
  // Reaped: gone.
  EXPECT_ERRNO(ENOENT, open(ProcPath(c, "stat").c_str(), O_RDONLY));
  EXPECT_EQ(List("/proc").count(pid), 0u);
}

// A leader thread that exits (exit(2), not exit_group) while another
// thread of its process runs: /proc/PID stays, its state Z, and counts
// both threads; the process ends with its last thread.
TEST(ProcZombieTest, ExitedLeaderOfALiveProcess) {
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    close(go[1]);
    std::thread waiter([fd = go[0]] {
      char byte;
      (void)!read(fd, &byte, 1);  // until the parent closes its end
      syscall(SYS_exit_group, 0);
    });
    waiter.detach();
    syscall(SYS_exit, 0);  // this thread only
    _exit(1);
  }
  close(go[0]);
  ASSERT_TRUE(AwaitState(c, 'Z')) << "state " << StatState(c);
  EXPECT_EQ(StatusField(c, "State"), "Z (zombie)");
  EXPECT_EQ(StatusField(c, "Threads"), "2");
  std::set<std::string> tasks = List(ProcPath(c, "task"));
  EXPECT_EQ(tasks.count(std::to_string(c)), 1u) << "the exited leader is listed";
  EXPECT_EQ(tasks.size(), 4u) << "., .., the leader and the live thread";
  EXPECT_EQ(List("/proc").count(std::to_string(c)), 1u);
  // The process is not a zombie: waitpid does not see it ended.
  int status = 0;
  EXPECT_EQ(waitpid(c, &status, WNOHANG), 0);
  close(go[1]);
  ASSERT_EQ(waitpid(c, &status, 0), c);
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_ERRNO(ENOENT, open(ProcPath(c, "stat").c_str(), O_RDONLY));
}

// With SIGCHLD ignored a child leaves no zombie: it is gone from /proc
// once it has exited.
TEST(ProcZombieTest, AutoreapedChildLeavesNothing) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGCHLD, &ign, &old), 0);
  const pid_t c = fork();
  if (c == 0) _exit(0);
  ASSERT_GE(c, 0) << ErrnoName(errno);
  // wait(2) with SIGCHLD ignored blocks until the child is gone, then ECHILD.
  EXPECT_ERRNO(ECHILD, waitpid(c, nullptr, 0));
  sigaction(SIGCHLD, &old, nullptr);
  EXPECT_ERRNO(ENOENT, open(ProcPath(c, "stat").c_str(), O_RDONLY));
}

}  // namespace
}  // namespace syscall_test
