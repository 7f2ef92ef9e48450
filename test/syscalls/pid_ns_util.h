// Helpers of the pid namespace tests (pid_ns_test.cc, pid_ns_ids_test.cc,
// and what keeps a reaped process's ids: sysv_pid_test.cc,
// socket_pid_test.cc, owner_pid_test.cc): a fork with extra clone flags
// (CLONE_NEWPID: the child is pid 1 of a new namespace), a fork at a chosen
// id (to give a reaped process's id to another, in a namespace of the
// test's own where nothing else takes ids) and its exit code.
//
//   const pid_t pid = ForkWith(CLONE_NEWPID);
//   if (pid == 0) _exit(getpid() == 1 ? 0 : 1);
//   EXPECT_EQ(WaitCode(pid), 0);
//
// The child of a raw clone shares glibc's idea of its thread id with the
// parent: it may use syscalls and fork(), not glibc's robust or PI mutexes.
#ifndef SEEDVISOR_TEST_SYSCALLS_PID_NS_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_PID_NS_UTIL_H_

#include <linux/capability.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {

// fork(2) with extra clone flags; 0 in the child.
inline pid_t ForkWith(unsigned long flags) {
  return static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
}

// clone3(2) with set_tid: a child that gets id `want` in our pid
// namespace (needs CAP_SYS_ADMIN there); 0 in the child.
inline pid_t ForkAt(pid_t want) {
  struct clone_args a = {};
  a.exit_signal = SIGCHLD;
  a.set_tid = reinterpret_cast<uintptr_t>(&want);
  a.set_tid_size = 1;
  return static_cast<pid_t>(syscall(SYS_clone3, &a, sizeof(a)));
}

// The exit code of `pid`, or 200 + signal, or -1.
inline int WaitCode(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 200 + WTERMSIG(st);
  return -1;
}

// A child that is pid 1 of a new pid namespace and exits 0 once `*release`
// (the write end of a pipe it reads; set here) is closed. -1 on failure.
inline pid_t WaitingInit(int* release) {
  int go[2];
  if (pipe(go) != 0) return -1;
  const pid_t init = ForkWith(CLONE_NEWPID);
  if (init == 0) {
    close(go[1]);
    char b;
    (void)!read(go[0], &b, 1);
    _exit(0);
  }
  close(go[0]);
  *release = go[1];
  if (init < 0) close(go[1]);
  return init;
}

}  // namespace syscall_test

#define SKIP_WITHOUT_CAP_SYS_ADMIN() \
  if (!::syscall_test::HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN"

#endif  // SEEDVISOR_TEST_SYSCALLS_PID_NS_UTIL_H_
