// /proc per pid namespace (proc(5), pid_namespaces(7) "/proc and PID
// namespaces"): a procfs shows the processes of the pid namespace its
// mounter was in, by their ids there, whoever reads it; /proc/self is the
// reader's id in that namespace (ENOENT for a reader outside it); status
// shows Pid, PPid (0 for a parent outside) and NSpid/NStgid from that
// namespace down to the task's own. Each case mounts proc in a mount
// namespace of a child of its own.
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The numeric entries of directory `path` (a /proc or a /proc/PID/task).
std::set<std::string> Ids(const std::string& path) {
  std::set<std::string> out;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return {"<errno " + std::to_string(errno) + ">"};
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.insert(e->d_name);
  }
  closedir(d);
  return out;
}

// The target of symlink `path`, or "<errno N>".
std::string Link(const std::string& path) {
  char buf[64] = {};
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return "<errno " + std::to_string(errno) + ">";
  return std::string(buf, static_cast<size_t>(n));
}

std::string NoEnt() { return "<errno " + std::to_string(ENOENT) + ">"; }

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

// The pid, ppid, pgrp and session fields of /proc/`who`/stat, "" on error.
std::string StatIds(const std::string& who) {
  const std::string st = ReadFile("/proc/" + who + "/stat");
  const size_t paren = st.rfind(')');
  int pid, ppid, pgrp, sid;
  char state;
  if (paren == std::string::npos ||
      sscanf(st.c_str(), "%d", &pid) != 1 ||
      sscanf(st.c_str() + paren + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4) {
    return "";
  }
  return std::to_string(pid) + " " + std::to_string(ppid) + " " + std::to_string(pgrp) + " " +
         std::to_string(sid);
}

// The init of a new pid namespace mounts proc: it sees itself as 1 and a
// child of its own (the init of a namespace one level further down) as
// 2, with that child's ids from its namespace down; nothing outside.
TEST(ProcPidNsTest, ProcOfANewNamespaceShowsItsProcesses) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  // Processes outside, whose ids must not show (the test may be pid 1,
  // which names the new namespace's init there, and the first of them 2).
  pid_t outside[2];
  for (pid_t& o : outside) {
    o = fork();
    ASSERT_GE(o, 0);
    if (o == 0) {
      for (;;) pause();
    }
  }
  const pid_t pid = ForkWith(CLONE_NEWPID | CLONE_NEWNS);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(1);
    if (mount("proc", "/proc", "proc", 0, nullptr) != 0) _exit(2);
    if (Link("/proc/self") != "1") _exit(3);
    if (Link("/proc/thread-self") != "1/task/1") _exit(4);
    // Its child, the init of a namespace below: 2 here, 1 in its own.
    int release = -1;
    const pid_t c = WaitingInit(&release);
    if (c < 0) _exit(5);
    if (c != 2) _exit(6);
    if (Ids("/proc") != std::set<std::string>{"1", "2"}) _exit(7);
    if (Ids("/proc/1/task") != std::set<std::string>{"1"}) _exit(8);
    const std::string own = ReadFile("/proc/1/status");
    // Its parent is outside: 0.
    if (!Has(own, "Tgid:\t1") || !Has(own, "Pid:\t1") || !Has(own, "PPid:\t0")) _exit(9);
    if (!Has(own, "NStgid:\t1") || !Has(own, "NSpid:\t1")) _exit(10);
    const std::string child = ReadFile("/proc/2/status");
    if (!Has(child, "Pid:\t2") || !Has(child, "PPid:\t1")) _exit(11);
    if (!Has(child, "NStgid:\t2\t1") || !Has(child, "NSpid:\t2\t1")) _exit(12);
    // Its group and session are ours, whose leader (the parent of this
    // namespace's init) is outside: 0.
    if (!Has(child, "NSpgid:\t0\t0") || !Has(child, "NSsid:\t0\t0")) _exit(13);
    if (StatIds("2") != "2 1 0 0") _exit(14);
    if (access(("/proc/" + std::to_string(outside[1])).c_str(), F_OK) == 0) _exit(15);
    if (close(release) != 0 || WaitCode(c) != 0) _exit(16);
    if (Ids("/proc") != std::set<std::string>{"1"}) _exit(17);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(pid), 0);
  ASSERT_GT(outside[1], 2);
  for (pid_t o : outside) {
    kill(o, SIGKILL);
    EXPECT_EQ(WaitCode(o), 200 + SIGKILL);
  }
}

// unshare(CLONE_NEWPID) + fork: the child, the namespace's init, mounts
// proc in the mount namespace it shares with its parent. The parent, in
// the namespace above, reads that proc: it lists the child only, as 1,
// and the parent's own /proc/self does not resolve there.
TEST(ProcPidNsTest, ProcShowsItsMountersNamespaceToEveryReader) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) _exit(1);
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(2);
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) _exit(3);
    const pid_t init = fork();
    if (init < 0) _exit(4);
    if (init == 0) {
      close(down[1]);
      if (getpid() != 1) _exit(1);
      if (mount("proc", "/proc", "proc", 0, nullptr) != 0) _exit(2);
      if (Link("/proc/self") != "1") _exit(3);
      if (write(up[1], "m", 1) != 1) _exit(4);
      char b;
      (void)!read(down[0], &b, 1);
      _exit(0);
    }
    close(up[1]);  // an init that failed before writing: EOF
    char b;
    if (read(up[0], &b, 1) != 1) _exit(5);
    int code = 0;
    // The reader is outside the namespace that proc shows.
    if (Link("/proc/self") != NoEnt()) code = 6;
    if (code == 0 && Link("/proc/thread-self") != NoEnt()) code = 7;
    if (code == 0 && Ids("/proc") != std::set<std::string>{"1"}) code = 8;
    const std::string st = ReadFile("/proc/1/status");
    if (code == 0 && (!Has(st, "PPid:\t0") || !Has(st, "NSpid:\t1"))) code = 9;
    // Its own id names nothing there (the helper is not 1).
    if (code == 0 && access(("/proc/" + std::to_string(getpid())).c_str(), F_OK) == 0) code = 10;
    close(down[1]);
    if (WaitCode(init) != 0 && code == 0) code = 11;
    _exit(code);
  }
  EXPECT_EQ(WaitCode(helper), 0);
}

}  // namespace
}  // namespace syscall_test
