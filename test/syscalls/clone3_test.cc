// Conformance tests for clone3(2): struct clone_args and its size
// versioning, the argument checks (kernel/fork.c: copy_clone_args_from_user(),
// clone3_args_valid(), alloc_pid() for set_tid), CLONE_PIDFD, exit_signal
// and the child's stack, and glibc's pthread_create, which tries clone3
// first (glibc 2.34+).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr size_t kSizeVer0 = 64;  // CLONE_ARGS_SIZE_VER0
constexpr size_t kSizeVer2 = 88;  // CLONE_ARGS_SIZE_VER2 (cgroup)

long Clone3(clone_args* args, size_t size) { return syscall(SYS_clone3, args, size); }

// clone3 without CLONE_VM or a stack is fork(): the child returns 0 here and
// must leave with _exit().
pid_t ForkWith(clone_args args, size_t size = sizeof(clone_args)) {
  return static_cast<pid_t>(Clone3(&args, size));
}

TEST(Clone3Test, ForkLikeChildAndExitSignal) {
  clone_args a = {};
  a.exit_signal = SIGCHLD;
  pid_t pid = ForkWith(a);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(7);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 7);
}

// The oldest size (VER0, 64 bytes) works; a bigger struct works if its tail
// is zero and is E2BIG otherwise; smaller than VER0 or bigger than a page is
// EINVAL / E2BIG.
TEST(Clone3Test, SizeVersioning) {
  struct Big {
    clone_args args;
    uint64_t tail[4];
  } big = {};
  big.args.exit_signal = SIGCHLD;
  pid_t pid = static_cast<pid_t>(Clone3(&big.args, sizeof(big)));
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);

  big.tail[2] = 1;
  EXPECT_ERRNO(E2BIG, Clone3(&big.args, sizeof(big)));
  big.tail[2] = 0;

  clone_args a = {};
  a.exit_signal = SIGCHLD;
  pid = ForkWith(a, kSizeVer0);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);

  EXPECT_ERRNO(EINVAL, Clone3(&a, kSizeVer0 - 8));
  EXPECT_ERRNO(EINVAL, Clone3(&a, 0));
  std::vector<uint64_t> page(2 * 4096 / 8, 0);
  page[4] = SIGCHLD;
  EXPECT_ERRNO(E2BIG, Clone3(reinterpret_cast<clone_args*>(page.data()), 4096 + 8));
  EXPECT_ERRNO(EFAULT, Clone3(nullptr, sizeof(clone_args)));
}

// CLONE_PIDFD with a pidfd address that cannot be written: EFAULT, and no
// child (copy_process() stores the fd before the child is committed; LTP's
// clone302).
TEST(Clone3Test, UnwritablePidfdAddressIsEfaultWithoutChild) {
  clone_args a = {};
  a.flags = CLONE_PIDFD;
  a.exit_signal = SIGCHLD;
  a.pidfd = 8;  // the unmapped first page
  pid_t pid = static_cast<pid_t>(Clone3(&a, sizeof(a)));
  if (pid == 0) _exit(0);
  EXPECT_EQ(pid, -1);
  EXPECT_EQ(errno, EFAULT) << ErrnoName(errno);
  usleep(50 * 1000);
  EXPECT_LE(waitpid(-1, nullptr, WNOHANG), 0);  // no child came to be
}

TEST(Clone3Test, InvalidCombinations) {
  clone_args a = {};
  // CSIGNAL bits belong in exit_signal, not flags; CLONE_DETACHED is gone.
  a.flags = SIGCHLD;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.flags = CLONE_DETACHED;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  // Flags above the 32 legacy ones that clone3 does not know.
  a.flags = 1ULL << 40;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.flags = 0;
  // exit_signal beyond CSIGNAL or not a signal.
  a.exit_signal = 0x100;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.exit_signal = 65;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.exit_signal = 0;
  // CLONE_SIGHAND with CLONE_CLEAR_SIGHAND.
  a.flags = CLONE_VM | CLONE_SIGHAND | CLONE_CLEAR_SIGHAND;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  // A thread (or CLONE_PARENT) gets no exit signal.
  a.flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
  a.exit_signal = SIGCHLD;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.flags = CLONE_PARENT;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  // A stack needs a size and a size needs a stack.
  a = {};
  a.exit_signal = SIGCHLD;
  a.stack_size = 4096;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  static char stack[4096];
  a.stack = reinterpret_cast<uint64_t>(stack);
  a.stack_size = 0;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  // The legacy rules still hold: CLONE_THREAD needs CLONE_SIGHAND, which
  // needs CLONE_VM.
  a = {};
  a.flags = CLONE_THREAD;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  a.flags = CLONE_SIGHAND;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  // CLONE_INTO_CGROUP needs the VER2 size.
  a = {};
  a.exit_signal = SIGCHLD;
  a.flags = CLONE_INTO_CGROUP;
  EXPECT_ERRNO(EINVAL, Clone3(&a, kSizeVer0));
  a.cgroup = 1ULL << 32;
  EXPECT_ERRNO(EINVAL, Clone3(&a, kSizeVer2));
}

// set_tid: at most one id per pid namespace level (one here), each in
// [1, pid_max); EEXIST for an id in use.
TEST(Clone3Test, SetTid) {
  clone_args a = {};
  a.exit_signal = SIGCHLD;
  pid_t tids[2] = {getpid(), getpid()};
  a.set_tid = reinterpret_cast<uint64_t>(tids);
  a.set_tid_size = 0;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));  // set_tid without a size
  a.set_tid = 0;
  a.set_tid_size = 1;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));  // a size without set_tid
  a.set_tid = reinterpret_cast<uint64_t>(tids);
  a.set_tid_size = 33;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));  // > MAX_PID_NS_LEVEL
  a.set_tid_size = 2;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));  // deeper than our namespace
  a.set_tid_size = 1;
  tids[0] = 0;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));
  tids[0] = 0x7fffffff;
  EXPECT_ERRNO(EINVAL, Clone3(&a, sizeof(a)));  // >= pid_max
  tids[0] = getpid();
  int status = RunInChild([] { return 0; });  // nothing is left behind
  EXPECT_EXIT_CODE(status, 0);
}

TEST(Clone3Test, SetTidNeedsCapability) {
  // Without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE: EPERM.
  int status = RunInChild([] {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    if (syscall(SYS_capset, &hdr, d) != 0) return 1;
    clone_args a = {};
    a.exit_signal = SIGCHLD;
    pid_t tid = 30000;
    a.set_tid = reinterpret_cast<uint64_t>(&tid);
    a.set_tid_size = 1;
    if (Clone3(&a, sizeof(a)) != -1 || errno != EPERM) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// With the capability, the child gets the id asked for, unless it is taken.
TEST(Clone3Test, SetTidChoosesPid) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2];
  ASSERT_OK(syscall(SYS_capget, &hdr, d));
  if (!(d[0].effective & (1u << CAP_SYS_ADMIN))) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
  clone_args a = {};
  a.exit_signal = SIGCHLD;
  pid_t tid = getpid();
  a.set_tid = reinterpret_cast<uint64_t>(&tid);
  a.set_tid_size = 1;
  EXPECT_ERRNO(EEXIST, Clone3(&a, sizeof(a)));
  // A free id: a child's, once it is reaped.
  pid_t free_id = fork();
  ASSERT_GE(free_id, 0);
  if (free_id == 0) _exit(0);
  ASSERT_EQ(waitpid(free_id, nullptr, 0), free_id);
  tid = free_id;
  pid_t pid = ForkWith(a);
  if (pid == -1 && errno == EEXIST) GTEST_SKIP() << "the id was taken again";
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(getpid() == free_id ? 0 : 1);
  EXPECT_EQ(pid, free_id);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(Clone3Test, Pidfd) {
  clone_args a = {};
  int pidfd = -1;
  pid_t parent_tid = 0;
  a.flags = CLONE_PIDFD | CLONE_PARENT_SETTID;
  a.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  a.parent_tid = reinterpret_cast<uint64_t>(&parent_tid);
  a.exit_signal = SIGCHLD;
  pid_t pid = ForkWith(a);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(3);
  EXPECT_EQ(parent_tid, pid);
  ASSERT_GE(pidfd, 0);
  EXPECT_EQ(fcntl(pidfd, F_GETFD), FD_CLOEXEC);
  pollfd p = {pidfd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  siginfo_t si = {};
  ASSERT_OK(waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED));
  EXPECT_EQ(si.si_pid, pid);
  EXPECT_EQ(si.si_status, 3);
  close(pidfd);
}

std::atomic<int> g_sigusr1{0};

// exit_signal picks the signal the parent gets; 0 sends none, and such a
// child is a "clone" child that only __WALL or __WCLONE waits for.
TEST(Clone3Test, ExitSignalChoice) {
  struct sigaction sa = {}, old;
  sa.sa_handler = [](int) { g_sigusr1.fetch_add(1); };
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  g_sigusr1 = 0;
  clone_args a = {};
  a.exit_signal = SIGUSR1;
  pid_t pid = ForkWith(a);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
  for (int i = 0; i < 1000 && g_sigusr1.load() == 0; ++i) usleep(1000);
  EXPECT_EQ(g_sigusr1.load(), 1);

  a.exit_signal = 0;
  pid = ForkWith(a);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(5);
  EXPECT_ERRNO(ECHILD, waitpid(pid, &status, WNOHANG));  // not a SIGCHLD child
  ASSERT_EQ(waitpid(pid, &status, __WCLONE), pid);
  EXPECT_EXIT_CODE(status, 5);
  sigaction(SIGUSR1, &old, nullptr);
}

// The child starts with its stack pointer at stack + stack_size (the stack
// grows down on x86-64).
TEST(Clone3Test, ChildStackPointer) {
  size_t size = 64 * 1024;
  char* stack = static_cast<char*>(
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(stack, MAP_FAILED);
  clone_args a = {};
  a.exit_signal = SIGCHLD;
  a.stack = reinterpret_cast<uint64_t>(stack);
  a.stack_size = size;
  uint64_t want = reinterpret_cast<uint64_t>(stack) + size;
  long ret;
  // The child touches nothing of ours: it compares %rsp and exits.
  register uint64_t r12 asm("r12") = want;
  asm volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "xor %%edi, %%edi\n"
      "cmp %%r12, %%rsp\n"
      "setne %%dil\n"
      "mov $231, %%eax\n"  // exit_group
      "syscall\n"
      "1:\n"
      : "=a"(ret)
      : "a"(SYS_clone3), "D"(&a), "S"(sizeof(a)), "r"(r12)
      : "rcx", "r11", "memory");
  ASSERT_GT(ret, 0) << ErrnoName(static_cast<int>(-ret));
  int status;
  ASSERT_EQ(waitpid(static_cast<pid_t>(ret), &status, 0), ret);
  EXPECT_EXIT_CODE(status, 0);
  munmap(stack, size);
}

// CLONE_CLEAR_SIGHAND: the child's handlers are reset to SIG_DFL; ignored
// signals stay ignored (flush_signal_handlers(p, 0)).
TEST(Clone3Test, ClearSighand) {
  struct sigaction sa = {}, old_usr1, old_usr2;
  sa.sa_handler = [](int) {};
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old_usr1));
  sa.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGUSR2, &sa, &old_usr2));
  clone_args a = {};
  a.flags = CLONE_CLEAR_SIGHAND;
  a.exit_signal = SIGCHLD;
  pid_t pid = ForkWith(a);
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    struct sigaction cur;
    sigaction(SIGUSR1, nullptr, &cur);
    if (cur.sa_handler != SIG_DFL) _exit(1);
    sigaction(SIGUSR2, nullptr, &cur);
    if (cur.sa_handler != SIG_IGN) _exit(2);
    _exit(0);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
  sigaction(SIGUSR1, &old_usr1, nullptr);
  sigaction(SIGUSR2, &old_usr2, nullptr);
}

// glibc's pthread_create uses clone3 where it works (and clone where it is
// ENOSYS): threads start, share memory and have their own tids either way.
TEST(Clone3Test, PthreadCreate) {
  std::atomic<int> sum{0};
  std::vector<pthread_t> th(8);
  std::vector<pid_t> tids(th.size());
  struct Arg {
    std::atomic<int>* sum;
    pid_t* tid;
  };
  std::vector<Arg> args(th.size());
  for (size_t i = 0; i < th.size(); ++i) {
    args[i] = {&sum, &tids[i]};
    ASSERT_EQ(pthread_create(&th[i], nullptr, [](void* p) -> void* {
      auto* a = static_cast<Arg*>(p);
      *a->tid = static_cast<pid_t>(syscall(SYS_gettid));
      a->sum->fetch_add(1);
      return nullptr;
    }, &args[i]), 0);
  }
  for (auto& t : th) pthread_join(t, nullptr);
  EXPECT_EQ(sum.load(), 8);
  for (size_t i = 0; i < tids.size(); ++i) {
    EXPECT_NE(tids[i], getpid());
    for (size_t j = 0; j < i; ++j) EXPECT_NE(tids[i], tids[j]);
  }
}

}  // namespace
}  // namespace syscall_test
