// fork/vfork/execve/wait*, ids, sessions and process groups, threads,
// rlimits, and the small informational syscalls (uname, sysinfo, getrandom,
// times, getrusage, sched_yield, getcpu, arch_prctl).
#include <asm/prctl.h>
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// ------------------------------------------------- re-exec helper modes
//
// ExecSelf() runs this binary again with --exec_helper=MODE; the helper runs
// before main() (so before gtest) and _exit()s with a code the test checks.
// glibc passes argc/argv/envp to ELF constructors, also in static binaries.

constexpr char kHelperFlag[] = "--exec_helper=";

int RunHelper(const std::string& mode, int argc, char** argv) {
  if (mode.rfind("exit:", 0) == 0) return atoi(mode.c_str() + 5);
  if (mode == "args_env") {
    const char* v = getenv("SYSCALL_TEST_VAR");
    if (v == nullptr || strcmp(v, "value") != 0) return 10;
    if (argc != 3 || strcmp(argv[2], "second arg") != 0) return 11;
    return 0;
  }
  if (mode.rfind("fds:", 0) == 0) {
    // fds:CLOSED:OPEN: the O_CLOEXEC fd is gone, the other one survived.
    int closed_fd = -1, open_fd = -1;
    if (sscanf(mode.c_str(), "fds:%d:%d", &closed_fd, &open_fd) != 2) return 20;
    if (fcntl(closed_fd, F_GETFD) != -1 || errno != EBADF) return 21;
    if (fcntl(open_fd, F_GETFD) != 0) return 22;
    return 0;
  }
  if (mode == "signals") {
    // Ignored stays ignored, caught becomes default, the mask is kept.
    struct sigaction sa;
    sigaction(SIGUSR1, nullptr, &sa);
    if (sa.sa_handler != SIG_IGN) return 30;
    sigaction(SIGUSR2, nullptr, &sa);
    if (sa.sa_handler != SIG_DFL) return 31;
    sigset_t mask;
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    if (!sigismember(&mask, SIGINT)) return 32;
    return 0;
  }
  if (mode.rfind("pid:", 0) == 0) {
    return getpid() == atoi(mode.c_str() + 4) ? 0 : 40;
  }
  return 99;
}

__attribute__((constructor)) void MaybeRunExecHelper(int argc, char** argv,
                                                     char**) {
  // ExecveTest.EmptyArgvGetsEmptyArgv0: argv {NULL} arrives as {""}.
  if (getenv("SYSCALL_TEST_ARGC0") != nullptr) {
    _exit(argc == 1 && argv[0] != nullptr && argv[0][0] == '\0' && argv[1] == nullptr ? 0
                                                                                     : 50 + argc);
  }
  if (argc >= 2 && strncmp(argv[1], kHelperFlag, strlen(kHelperFlag)) == 0) {
    _exit(RunHelper(argv[1] + strlen(kHelperFlag), argc, argv));
  }
}

// Runs this binary with --exec_helper=mode in a forked child (after `setup`
// ran there); returns the wait status.
int ExecSelf(
    const std::string& mode, const std::function<void()>& setup = [] {},
    std::vector<std::string> extra_args = {},
    std::vector<std::string> env = {}) {
  std::string self = SelfExe();
  return RunInChild([&] {
    setup();
    std::string flag = kHelperFlag + mode;
    std::vector<char*> argv = {self.data(), flag.data()};
    for (auto& a : extra_args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(self.c_str(), argv.data(), envp.data());
    return 127;
  });
}

// execve(2) with an empty argv: the new program gets argc 1 and argv[0] ""
// (Linux 5.18, do_execveat_common()), never argc 0.
TEST(ExecveTest, EmptyArgvGetsEmptyArgv0) {
  std::string self = SelfExe();
  int status = RunInChild([&] {
    char env[] = "SYSCALL_TEST_ARGC0=1";
    char* argv[] = {nullptr};
    char* envp[] = {env, nullptr};
    execve(self.c_str(), argv, envp);
    return 127;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ---------------------------------------------------------------- fork/wait

TEST(ForkTest, ChildExitCodeReachesWait4) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(42);
  int status = 0;
  struct rusage ru;
  ASSERT_EQ(wait4(pid, &status, 0, &ru), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 42);
  EXPECT_FALSE(WIFSIGNALED(status));
}

TEST(ForkTest, ExitCodeIsLow8Bits) {
  EXPECT_EXIT_CODE(RunInChild([] { return 256 + 3; }), 3);
}

TEST(ForkTest, ChildHasNewPidAndParentIsUs) {
  pid_t parent = getpid();
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    pid_t ids[2] = {getpid(), getppid()};
    _exit(write(p[1], ids, sizeof(ids)) == sizeof(ids) && ids[1] == parent ? 0
                                                                           : 1);
  }
  close(p[1]);
  pid_t ids[2] = {};
  EXPECT_EQ(read(p[0], ids, sizeof(ids)), static_cast<ssize_t>(sizeof(ids)));
  close(p[0]);
  EXPECT_EQ(ids[0], pid);
  EXPECT_EQ(ids[1], parent);
  EXPECT_NE(pid, parent);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(ForkTest, ChildGetsCopyOfMemory) {
  static int value = 1;
  value = 5;
  EXPECT_EXIT_CODE(RunInChild([] {
                     int seen = value;
                     value = 9;
                     return seen;
                   }),
                   5);
  EXPECT_EQ(value, 5);
}

TEST(WaitTest, NoChildrenIsECHILD) {
  int status;
  EXPECT_ERRNO(ECHILD, wait4(-1, &status, 0, nullptr));
  EXPECT_ERRNO(ECHILD, waitpid(getpid(), &status, 0));
}

TEST(WaitTest, WnohangWithRunningChildReturnsZero) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    close(p[1]);
    _exit(read(p[0], &c, 1) == 0 ? 0 : 1);  // Until the parent closes.
  }
  close(p[0]);
  int status;
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0);
  close(p[1]);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(WaitTest, WaitAnyChildAndByPid) {
  pid_t a = fork();
  ASSERT_GE(a, 0);
  if (a == 0) _exit(1);
  pid_t b = fork();
  ASSERT_GE(b, 0);
  if (b == 0) _exit(2);
  int status;
  ASSERT_EQ(waitpid(b, &status, 0), b);
  EXPECT_EXIT_CODE(status, 2);
  ASSERT_EQ(wait(&status), a);
  EXPECT_EXIT_CODE(status, 1);
  EXPECT_ERRNO(ECHILD, wait(&status));
}

TEST(WaitTest, BadOptionsIsEINVAL) {
  int status;
  EXPECT_ERRNO(EINVAL, wait4(-1, &status, 0x10000000, nullptr));
}

TEST(WaitTest, Waitid) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(7);
  siginfo_t info = {};
  ASSERT_OK(waitid(P_PID, pid, &info, WEXITED));
  EXPECT_EQ(info.si_signo, SIGCHLD);
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 7);
  EXPECT_EQ(info.si_uid, getuid());
}

TEST(WaitTest, WaitidKilledChild) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (;;) pause();
  }
  ASSERT_OK(kill(pid, SIGKILL));
  siginfo_t info = {};
  ASSERT_OK(waitid(P_ALL, 0, &info, WEXITED));
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
}

TEST(WaitTest, WaitidWnowaitLeavesZombie) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(3);
  siginfo_t info = {};
  ASSERT_OK(waitid(P_PID, pid, &info, WEXITED | WNOWAIT));
  EXPECT_EQ(info.si_pid, pid);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);  // Still there to reap.
  EXPECT_EXIT_CODE(status, 3);
}

TEST(WaitTest, WaitidErrors) {
  siginfo_t info;
  // No wait-for flag.
  EXPECT_ERRNO(EINVAL, waitid(P_ALL, 0, &info, 0));
  EXPECT_ERRNO(EINVAL, waitid(static_cast<idtype_t>(42), 0, &info, WEXITED));
  EXPECT_ERRNO(ECHILD, waitid(P_ALL, 0, &info, WEXITED));
}

TEST(WaitTest, WaitidWnohangNoExitedChildZeroesPid) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    close(p[1]);
    _exit(read(p[0], &c, 1) == 0 ? 0 : 1);
  }
  close(p[0]);
  siginfo_t info;
  memset(&info, 0xff, sizeof(info));
  ASSERT_OK(waitid(P_PID, pid, &info, WEXITED | WNOHANG));
  EXPECT_EQ(info.si_pid, 0);
  close(p[1]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

// ---------------------------------------------------------------- vfork

int vfork_marker = 0;

TEST(VforkTest, ChildSharesMemoryAndParentWaits) {
  vfork_marker = 0;
  pid_t pid = vfork();
  if (pid == 0) {
    // Only async-signal-safe work and _exit() after vfork.
    *static_cast<volatile int*>(&vfork_marker) = 77;
    _exit(4);
  }
  ASSERT_GT(pid, 0) << ErrnoName(errno);
  // The parent resumed only after the child exited, and sees its write.
  EXPECT_EQ(vfork_marker, 77);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 4);
}

// ---------------------------------------------------------------- execve

TEST(ExecveTest, SelfWithArgument) {
  EXPECT_EXIT_CODE(ExecSelf("exit:42"), 42);
}

TEST(ExecveTest, PassesArgvAndEnvp) {
  EXPECT_EXIT_CODE(
      ExecSelf("args_env", [] {}, {"second arg"}, {"SYSCALL_TEST_VAR=value"}),
      0);
}

TEST(ExecveTest, ClosesCloexecFds) {
  EXPECT_EXIT_CODE(ExecSelf("fds:100:101",
                            [] {
                              int fd = open("/", O_RDONLY | O_DIRECTORY);
                              dup3(fd, 100, O_CLOEXEC);
                              dup2(fd, 101);
                            }),
                   0);
}

TEST(ExecveTest, ResetsCaughtSignalsKeepsIgnoredAndMask) {
  EXPECT_EXIT_CODE(ExecSelf("signals",
                            [] {
                              signal(SIGUSR1, SIG_IGN);
                              struct sigaction sa = {};
                              sa.sa_handler = [](int) {};
                              sigaction(SIGUSR2, &sa, nullptr);
                              sigset_t mask;
                              sigemptyset(&mask);
                              sigaddset(&mask, SIGINT);
                              sigprocmask(SIG_BLOCK, &mask, nullptr);
                            }),
                   0);
}

TEST(ExecveTest, KeepsPid) {
  // ExecSelf forks: the child passes its own pid to the exec'd image.
  std::string self = SelfExe();
  EXPECT_EXIT_CODE(RunInChild([&] {
                     std::string flag = std::string(kHelperFlag) +
                                        "pid:" + std::to_string(getpid());
                     char* argv[] = {self.data(), flag.data(), nullptr};
                     char* envp[] = {nullptr};
                     execve(self.c_str(), argv, envp);
                     return 127;
                   }),
                   0);
}

TEST(ExecveTest, BinTrue) {
  // A dynamically linked system binary: needs the sandbox to load ld.so.
  if (access("/bin/true", X_OK) != 0) GTEST_SKIP() << "no /bin/true";
  EXPECT_EXIT_CODE(RunInChild([] {
                     char* argv[] = {const_cast<char*>("true"), nullptr};
                     char* envp[] = {nullptr};
                     execve("/bin/true", argv, envp);
                     return 127;
                   }),
                   0);
}

TEST(ExecveTest, Errors) {
  TempDir dir;
  char* argv[] = {const_cast<char*>("x"), nullptr};
  char* envp[] = {nullptr};
  EXPECT_ERRNO(ENOENT, execve(dir.Path("missing").c_str(), argv, envp));
  // A directory, and a file without execute permission.
  EXPECT_ERRNO(EACCES, execve(dir.path().c_str(), argv, envp));
  ASSERT_TRUE(WriteFile(dir.Path("noexec"), "#!/bin/sh\n", 0644));
  EXPECT_ERRNO(EACCES, execve(dir.Path("noexec").c_str(), argv, envp));
  // Executable but neither ELF nor #!.
  ASSERT_TRUE(WriteFile(dir.Path("junk"), std::string(64, '\x01'), 0755));
  EXPECT_ERRNO(ENOEXEC, execve(dir.Path("junk").c_str(), argv, envp));
  ASSERT_TRUE(WriteFile(dir.Path("f"), "", 0755));
  EXPECT_ERRNO(ENOTDIR, execve(dir.Path("f/x").c_str(), argv, envp));
  EXPECT_ERRNO(EFAULT,
               syscall(SYS_execve, reinterpret_cast<char*>(8), argv, envp));
}

// ---------------------------------------------------------------- ids

TEST(IdTest, GettidIsPidInMainThread) {
  EXPECT_EQ(syscall(SYS_gettid), getpid());
  EXPECT_EQ(gettid(), getpid());
  EXPECT_GT(getpid(), 0);
  EXPECT_GE(getppid(), 0);
}

TEST(IdTest, SetTidAddressReturnsTid) {
  // glibc set it already; setting it again to the same value is harmless.
  // We cannot read the old address back, so only check the return value in
  // a child (which then exits without caring).
  EXPECT_EXIT_CODE(RunInChild([] {
                     static int word;
                     return syscall(SYS_set_tid_address, &word) == getpid() ? 0
                                                                            : 1;
                   }),
                   0);
}

TEST(IdTest, SetsidMakesNewSessionAndGroup) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     pid_t me = getpid();
                     if (setsid() != me) return 1;
                     if (getsid(0) != me) return 2;
                     if (getsid(me) != me) return 3;
                     if (getpgid(0) != me) return 4;
                     if (getpgrp() != me) return 5;
                     // Already a process group leader.
                     if (setsid() != -1 || errno != EPERM) return 6;
                     return 0;
                   }),
                   0);
}

TEST(IdTest, ChildInheritsSessionAndGroup) {
  // 0 when the session leader is outside our pid namespace.
  pid_t sid = getsid(0), pgid = getpgid(0);
  ASSERT_GE(sid, 0);
  ASSERT_GE(pgid, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
                     if (getsid(0) != sid) return 1;
                     if (getpgid(0) != pgid) return 2;
                     return 0;
                   }),
                   0);
}

TEST(IdTest, SetpgidMovesChildToNewGroup) {
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    close(p[1]);
    _exit(read(p[0], &c, 1) == 0 && getpgid(0) == getpid() ? 0 : 1);
  }
  close(p[0]);
  EXPECT_OK(setpgid(pid, pid));
  EXPECT_EQ(getpgid(pid), pid);
  close(p[1]);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(IdTest, SetpgidSelfInChild) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setpgid(0, 0) != 0) return 1;
                     if (getpgid(0) != getpid()) return 2;
                     return 0;
                   }),
                   0);
}

TEST(IdTest, PgidErrors) {
  EXPECT_ERRNO(EINVAL, setpgid(0, -1));
  // A pid that is not us or our child: our parent (none if we are init).
  if (getppid() > 0) {
    EXPECT_ERRNO(ESRCH, setpgid(getppid(), 0));
  }
  // An unused pid.
  EXPECT_ERRNO(ESRCH, getpgid(0x3ffffff));
  EXPECT_ERRNO(ESRCH, getsid(0x3ffffff));
}

TEST(IdTest, UidGidAreConsistent) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  ASSERT_OK(getresuid(&r, &e, &s));
  ASSERT_OK(getresgid(&gr, &ge, &gs));
  EXPECT_EQ(r, getuid());
  EXPECT_EQ(e, geteuid());
  EXPECT_EQ(gr, getgid());
  EXPECT_EQ(ge, getegid());
  int n = getgroups(0, nullptr);
  EXPECT_GE(n, 0);
  std::vector<gid_t> groups(n + 1);
  EXPECT_EQ(getgroups(groups.size(), groups.data()), n);
}

TEST(IdTest, RootCanDropPrivilegesForGood) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     gid_t groups[] = {4321};
                     if (setgroups(1, groups) != 0) return 1;
                     if (getgroups(0, nullptr) != 1) return 2;
                     if (setgid(1234) != 0) return 3;
                     if (setuid(1000) != 0) return 4;
                     uid_t r, e, s;
                     getresuid(&r, &e, &s);
                     if (r != 1000 || e != 1000 || s != 1000) return 5;
                     if (getgid() != 1234 || getegid() != 1234) return 6;
                     // No way back.
                     if (setuid(0) != -1 || errno != EPERM) return 7;
                     if (setgroups(0, nullptr) != -1 || errno != EPERM)
                       return 8;
                     return 0;
                   }),
                   0);
}

TEST(IdTest, SeteuidIsReversibleForRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setresuid(-1, 1000, -1) != 0) return 1;
                     if (geteuid() != 1000 || getuid() != 0) return 2;
                     if (setresuid(-1, 0, -1) != 0)
                       return 3;  // Saved uid is 0.
                     if (geteuid() != 0) return 4;
                     return 0;
                   }),
                   0);
}

TEST(IdTest, UnprivilegedCannotSetOtherUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become unprivileged";
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setresuid(1000, 1000, 1000) != 0) return 1;
                     if (setuid(2000) != -1 || errno != EPERM) return 2;
                     if (setreuid(2000, -1) != -1 || errno != EPERM) return 3;
                     // Setting to its own uid is allowed.
                     if (setuid(1000) != 0) return 4;
                     return 0;
                   }),
                   0);
}

// ---------------------------------------------------------------- threads

void* ReturnArgPlusOne(void* arg) {
  return reinterpret_cast<void*>(reinterpret_cast<intptr_t>(arg) + 1);
}

TEST(ThreadTest, CreateAndJoinReturnsValue) {
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, ReturnArgPlusOne,
                           reinterpret_cast<void*>(41)),
            0);
  void* ret = nullptr;
  // pthread_join waits on the futex that CLONE_CHILD_CLEARTID clears.
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(reinterpret_cast<intptr_t>(ret), 42);
}

TEST(ThreadTest, ThreadsShareMemoryAndPidButNotTid) {
  struct Result {
    pid_t pid, tid;
  } result = {};
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void* arg) -> void* {
                  auto* r = static_cast<Result*>(arg);
                  r->pid = getpid();
                  r->tid = gettid();
                  return nullptr;
                },
                &result),
            0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(result.pid, getpid());
  EXPECT_NE(result.tid, gettid());
  EXPECT_GT(result.tid, 0);
}

TEST(ThreadTest, ManyThreadsCountTogether) {
  constexpr int kThreads = 16;
  static std::atomic<int> counter;
  counter = 0;
  std::vector<pthread_t> threads(kThreads);
  for (auto& t : threads) {
    ASSERT_EQ(pthread_create(
                  &t, nullptr,
                  [](void*) -> void* {
                    for (int i = 0; i < 1000; i++) counter++;
                    return nullptr;
                  },
                  nullptr),
              0);
  }
  for (auto& t : threads) ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(counter.load(), kThreads * 1000);
}

TEST(ThreadTest, ThreadLocalStorageIsPerThread) {
  static thread_local int tls_value = 1;
  tls_value = 5;
  int seen_in_thread = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void* arg) -> void* {
                  *static_cast<int*>(arg) = tls_value;  // Fresh copy: 1.
                  tls_value = 9;
                  return nullptr;
                },
                &seen_in_thread),
            0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(seen_in_thread, 1);
  EXPECT_EQ(tls_value, 5);
}

TEST(ThreadTest, ArchPrctlGetFsPointsAtThreadControlBlock) {
  // x86-64 glibc: %fs holds the TCB address and the TCB's first word
  // points to itself, so %fs:0 == ARCH_GET_FS.
  uintptr_t fs = 0;
  ASSERT_EQ(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), 0) << ErrnoName(errno);
  uintptr_t self;
  asm volatile("mov %%fs:0, %0" : "=r"(self));
  EXPECT_NE(fs, 0u);
  EXPECT_EQ(fs, self);
  // Each thread has its own.
  uintptr_t other = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void* arg) -> void* {
                  syscall(SYS_arch_prctl, ARCH_GET_FS, arg);
                  return nullptr;
                },
                &other),
            0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_NE(other, 0u);
  EXPECT_NE(other, fs);
}

TEST(ThreadTest, ArchPrctlSetGsRoundTrips) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     static uint64_t slot = 0x1122334455667788ULL;
                     if (syscall(SYS_arch_prctl, ARCH_SET_GS,
                                 reinterpret_cast<uintptr_t>(&slot)) != 0) {
                       return 1;
                     }
                     uintptr_t gs = 0;
                     if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) != 0)
                       return 2;
                     if (gs != reinterpret_cast<uintptr_t>(&slot)) return 3;
                     uint64_t v;
                     asm volatile("mov %%gs:0, %0" : "=r"(v));
                     return v == slot ? 0 : 4;
                   }),
                   0);
}

TEST(ThreadTest, ArchPrctlBadCodeIsEINVAL) {
  uintptr_t x;
  EXPECT_ERRNO(EINVAL, syscall(SYS_arch_prctl, 0x9999, &x));
}

TEST(ThreadTest, ExitGroupFromThreadEndsProcess) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     pthread_t t;
                     pthread_create(
                         &t, nullptr,
                         [](void*) -> void* {
                           syscall(SYS_exit_group, 7);
                           return nullptr;
                         },
                         nullptr);
                     pthread_join(t, nullptr);  // Never returns.
                     return 1;
                   }),
                   7);
}

TEST(ThreadTest, ExitOfMainThreadLeavesOthersRunning) {
  // SYS_exit ends one thread only; the process lives on until the last one.
  EXPECT_EXIT_CODE(RunInChild([] {
                     pthread_t t;
                     pthread_create(
                         &t, nullptr,
                         [](void*) -> void* {
                           struct timespec ts = {0, 20 * 1000 * 1000};
                           nanosleep(&ts, nullptr);
                           syscall(SYS_exit_group, 9);
                           return nullptr;
                         },
                         nullptr);
                     syscall(SYS_exit, 3);
                     return 1;
                   }),
                   9);
}

TEST(ThreadTest, WaitSeesStatusOfExitGroupNotThreadExit) {
  // A thread's own exit code is not the process's.
  EXPECT_EXIT_CODE(RunInChild([] {
                     pthread_t t;
                     pthread_create(
                         &t, nullptr,
                         [](void*) -> void* {
                           syscall(SYS_exit, 55);
                           return nullptr;
                         },
                         nullptr);
                     pthread_join(t, nullptr);
                     return 6;
                   }),
                   6);
}

// ---------------------------------------------------------------- rlimits

TEST(RlimitTest, GetrlimitNofile) {
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  EXPECT_GT(rl.rlim_cur, 3u);
  EXPECT_LE(rl.rlim_cur, rl.rlim_max);
}

TEST(RlimitTest, LoweredNofileLimitsNewFds) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     struct rlimit rl;
                     if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1;
                     rl.rlim_cur = 64;
                     if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
                     struct rlimit got;
                     getrlimit(RLIMIT_NOFILE, &got);
                     if (got.rlim_cur != 64) return 3;
                     if (dup2(0, 64) != -1 || errno != EBADF) return 4;
                     if (fcntl(0, F_DUPFD, 64) != -1 || errno != EINVAL)
                       return 5;
                     if (dup2(0, 63) != 63) return 6;
                     // Fill every slot below 64: then EMFILE.
                     for (int fd = 0; fd < 64; fd++) {
                       if (fcntl(fd, F_GETFD) == -1) dup2(63, fd);
                     }
                     if (dup(0) != -1 || errno != EMFILE) return 7;
                     if (open("/", O_RDONLY) != -1 || errno != EMFILE) return 8;
                     return 0;
                   }),
                   0);
}

TEST(RlimitTest, SoftAboveHardIsEINVAL) {
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  struct rlimit bad = {rl.rlim_max, rl.rlim_max - 1};
  EXPECT_ERRNO(EINVAL, setrlimit(RLIMIT_NOFILE, &bad));
  EXPECT_ERRNO(EINVAL, getrlimit(static_cast<__rlimit_resource>(1000), &rl));
}

// do_prlimit(): an RLIMIT_NOFILE hard limit past fs.nr_open is EPERM, even
// with CAP_SYS_RESOURCE; up to it that capability may raise the limit.
TEST(RlimitTest, NofilePastNrOpenIsEperm) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  unsigned long nr_open = 0;
  ASSERT_EQ(sscanf(ReadFile("/proc/sys/fs/nr_open").c_str(), "%lu", &nr_open), 1);
  EXPECT_EXIT_CODE(RunInChild([nr_open] {
                     struct rlimit rl = {64, nr_open + 1};
                     if (setrlimit(RLIMIT_NOFILE, &rl) != -1 || errno != EPERM) return 1;
                     // Raising the hard limit at all needs CAP_SYS_RESOURCE
                     // (this host's root has none; the sandbox's root has it).
                     if (!HaveCap(CAP_SYS_RESOURCE)) return 0;
                     rl.rlim_max = nr_open;
                     if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
                     return 0;
                   }),
                   0);
}

TEST(RlimitTest, RaisingHardLimitNeedsPrivilege) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become unprivileged";
  EXPECT_EXIT_CODE(RunInChild([] {
                     struct rlimit rl = {32, 64};
                     if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 1;
                     if (setresuid(1000, 1000, 1000) != 0) return 2;
                     rl = {32, 128};
                     if (setrlimit(RLIMIT_NOFILE, &rl) != -1 || errno != EPERM)
                       return 3;
                     rl = {16, 48};  // Lowering is always allowed.
                     if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 4;
                     return 0;
                   }),
                   0);
}

TEST(RlimitTest, Prlimit64GetAndSet) {
  EXPECT_EXIT_CODE(
      RunInChild([] {
        struct rlimit old, now;
        if (syscall(SYS_prlimit64, 0, RLIMIT_STACK, nullptr, &old) != 0)
          return 1;
        struct rlimit want = {old.rlim_cur, old.rlim_max};
        if (want.rlim_cur == RLIM_INFINITY || want.rlim_cur > (1u << 20)) {
          want.rlim_cur = 1 << 20;
        } else {
          want.rlim_cur /= 2;
        }
        struct rlimit prev;
        if (syscall(SYS_prlimit64, 0, RLIMIT_STACK, &want, &prev) != 0)
          return 2;
        if (prev.rlim_cur != old.rlim_cur || prev.rlim_max != old.rlim_max)
          return 3;
        getrlimit(RLIMIT_STACK, &now);
        if (now.rlim_cur != want.rlim_cur) return 4;
        // By pid too.
        if (syscall(SYS_prlimit64, getpid(), RLIMIT_STACK, nullptr, &now) !=
            0) {
          return 5;
        }
        return now.rlim_cur == want.rlim_cur ? 0 : 6;
      }),
      0);
}

// check_prlimit_permission() in kernel/sys.c: another process's limits, read
// or set, need the same real, effective and saved uid and gid as the
// caller's, or CAP_SYS_RESOURCE. (A guest running as nobody could set pid
// 1's RLIMIT_CPU to 0 and so SIGKILL the sandbox's init: trinity did.)
TEST(RlimitTest, Prlimit64OfAnotherUsersProcessIsEPERM) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become unprivileged";
  const pid_t root_pid = getpid();
  EXPECT_EXIT_CODE(RunAsNobody([root_pid] {
                     struct rlimit rl;
                     if (syscall(SYS_prlimit64, root_pid, RLIMIT_CPU, nullptr, &rl) != -1 ||
                         errno != EPERM) {
                       return 1;
                     }
                     struct rlimit zero = {0, 0};
                     if (syscall(SYS_prlimit64, root_pid, RLIMIT_CPU, &zero, nullptr) != -1 ||
                         errno != EPERM) {
                       return 2;
                     }
                     // Its own, by pid, still.
                     if (syscall(SYS_prlimit64, getpid(), RLIMIT_CPU, nullptr, &rl) != 0) {
                       return 3;
                     }
                     return 0;
                   }),
                   0);
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_CPU, &rl));
  EXPECT_EQ(rl.rlim_cur, RLIM_INFINITY);
}

TEST(RlimitTest, Prlimit64UnknownPidIsESRCH) {
  struct rlimit rl;
  EXPECT_ERRNO(ESRCH,
               syscall(SYS_prlimit64, 0x3ffffff, RLIMIT_NOFILE, nullptr, &rl));
  // The task is looked up before do_prlimit() checks the resource.
  EXPECT_ERRNO(ESRCH, syscall(SYS_prlimit64, 0x3ffffff, 1000, nullptr, &rl));
}

// A zombie is still named by its pid until it is reaped.
TEST(RlimitTest, Prlimit64OfAZombie) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  siginfo_t info;
  ASSERT_OK(waitid(P_PID, child, &info, WEXITED | WNOWAIT));
  struct rlimit rl = {}, mine;
  EXPECT_OK(syscall(SYS_prlimit64, child, RLIMIT_NOFILE, nullptr, &rl));
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &mine));
  EXPECT_EQ(rl.rlim_cur, mine.rlim_cur);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_ERRNO(ESRCH, syscall(SYS_prlimit64, child, RLIMIT_NOFILE, nullptr, &rl));
}

// prlimit64(2) takes a thread id as well as a process id: the limits are the
// thread's process's (find_task_by_vpid() in kernel/sys.c's prlimit64).
TEST(RlimitTest, Prlimit64ByThreadIdOfOwnProcess) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     std::atomic<pid_t> tid{0};
                     std::atomic<bool> done{false};
                     std::thread th([&] {
                       tid = static_cast<pid_t>(syscall(SYS_gettid));
                       while (!done) usleep(1000);
                     });
                     while (tid == 0) usleep(1000);
                     int rc = 0;
                     struct rlimit rl, mine;
                     getrlimit(RLIMIT_NOFILE, &mine);
                     if (syscall(SYS_prlimit64, tid.load(), RLIMIT_NOFILE, nullptr, &rl) != 0) {
                       rc = 1;
                     } else if (rl.rlim_cur != mine.rlim_cur || rl.rlim_max != mine.rlim_max) {
                       rc = 2;
                     } else {
                       struct rlimit lower = {100, mine.rlim_max};
                       if (syscall(SYS_prlimit64, tid.load(), RLIMIT_NOFILE, &lower, nullptr) != 0) {
                         rc = 3;
                       } else if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 100) {
                         rc = 4;  // one limit for the whole process
                       }
                     }
                     done = true;
                     th.join();
                     return rc;
                   }),
                   0);
}

// A thread of another process (same user): its process's limits.
TEST(RlimitTest, Prlimit64ByThreadIdOfAnotherProcess) {
  int to_parent[2], to_child[2];
  ASSERT_OK(pipe(to_parent));
  ASSERT_OK(pipe(to_child));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    std::thread th([&] {
      pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
      if (write(to_parent[1], &tid, sizeof(tid)) != sizeof(tid)) _exit(10);
      char c;
      if (read(to_child[0], &c, 1) != 1) _exit(11);
    });
    th.join();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    _exit(rl.rlim_cur == 77 ? 0 : 12);
  }
  close(to_parent[1]);
  close(to_child[0]);
  pid_t tid = 0;
  ASSERT_EQ(read(to_parent[0], &tid, sizeof(tid)), static_cast<ssize_t>(sizeof(tid)));
  ASSERT_NE(tid, child);
  struct rlimit by_tid = {}, by_pid = {};
  EXPECT_OK(syscall(SYS_prlimit64, tid, RLIMIT_NOFILE, nullptr, &by_tid));
  ASSERT_OK(syscall(SYS_prlimit64, child, RLIMIT_NOFILE, nullptr, &by_pid));
  EXPECT_EQ(by_tid.rlim_cur, by_pid.rlim_cur);
  EXPECT_EQ(by_tid.rlim_max, by_pid.rlim_max);
  struct rlimit set = {77, by_pid.rlim_max};
  EXPECT_OK(syscall(SYS_prlimit64, tid, RLIMIT_NOFILE, &set, nullptr));
  ASSERT_OK(syscall(SYS_prlimit64, child, RLIMIT_NOFILE, nullptr, &by_pid));
  EXPECT_EQ(by_pid.rlim_cur, 77u);
  ASSERT_EQ(write(to_child[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  close(to_parent[0]);
  close(to_child[1]);
}

// check_prlimit_permission() skips its check only for the calling thread
// itself: any other thread, of its own process too, is checked by that
// thread's credentials. With a real uid that is not its effective one (and
// no capability), a thread may read its own limits (by 0 or its tid) but
// not through another thread of its process (its pid, from a second thread).
TEST(RlimitTest, Prlimit64ChecksTheNamedThreadNotItsProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change uids";
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setresgid(65534, 65534, 65534) != 0) return 1;
                     if (setresuid(1000, 65534, 1000) != 0) return 2;  // no capability left
                     const pid_t pid = getpid();
                     int rc = 0;
                     std::thread th([&] {
                       struct rlimit rl;
                       const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
                       if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &rl) != 0) {
                         rc = 3;
                       } else if (syscall(SYS_prlimit64, tid, RLIMIT_NOFILE, nullptr, &rl) != 0) {
                         rc = 4;
                       } else if (syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, nullptr, &rl) != -1 ||
                                  errno != EPERM) {
                         rc = 5;
                       }
                     });
                     th.join();
                     if (rc != 0) return rc;
                     // The leader names itself by its pid: no check.
                     struct rlimit rl;
                     if (syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, nullptr, &rl) != 0) return 6;
                     return 0;
                   }),
                   0);
}

// ---------------------------------------------------------------- info

TEST(InfoTest, Uname) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  EXPECT_STREQ(u.sysname, "Linux");
  EXPECT_STREQ(u.machine, "x86_64");
  EXPECT_GT(strlen(u.release), 0u);
  EXPECT_GT(strlen(u.version), 0u);
  EXPECT_GT(strlen(u.nodename), 0u);
  // The release starts with a major version number.
  EXPECT_TRUE(u.release[0] >= '1' && u.release[0] <= '9') << u.release;
  EXPECT_ERRNO(EFAULT, syscall(SYS_uname, reinterpret_cast<void*>(8)));
}

TEST(InfoTest, Sysinfo) {
  struct sysinfo si;
  ASSERT_OK(sysinfo(&si));
  EXPECT_GT(si.uptime, 0);
  EXPECT_GT(si.totalram, 0u);
  EXPECT_LE(si.freeram, si.totalram);
  EXPECT_GE(si.mem_unit, 1u);
  EXPECT_GE(si.procs, 1);
}

TEST(InfoTest, Getrandom) {
  unsigned char a[64] = {}, b[64] = {};
  ASSERT_EQ(getrandom(a, sizeof(a), 0), static_cast<ssize_t>(sizeof(a)));
  ASSERT_EQ(getrandom(b, sizeof(b), GRND_NONBLOCK),
            static_cast<ssize_t>(sizeof(b)));
  EXPECT_NE(memcmp(a, b, sizeof(a)), 0);
  unsigned char zero[64] = {};
  EXPECT_NE(memcmp(a, zero, sizeof(a)), 0);
  EXPECT_EQ(getrandom(a, 0, 0), 0);
  EXPECT_ERRNO(EINVAL, getrandom(a, sizeof(a), 0x1000));
  EXPECT_ERRNO(EFAULT,
               syscall(SYS_getrandom, reinterpret_cast<void*>(8), 16, 0));
}

// Burns at least `ms` of CPU time in user space.
void BurnCpu(int ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
  volatile uint64_t x = 0;
  do {
    for (int i = 0; i < 100000; i++) x = x + i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 +
               (now.tv_nsec - start.tv_nsec) / 1000000 <
           ms);
}

TEST(InfoTest, TimesCountsCpuAndAdvances) {
  struct tms before, after;
  clock_t t0 = times(&before);
  ASSERT_NE(t0, static_cast<clock_t>(-1));
  BurnCpu(50);
  clock_t t1 = times(&after);
  EXPECT_GE(t1, t0);
  EXPECT_GT(after.tms_utime + after.tms_stime,
            before.tms_utime + before.tms_stime);
}

TEST(InfoTest, TimesIncludesWaitedChildren) {
  struct tms before, after;
  times(&before);
  EXPECT_EXIT_CODE(RunInChild([] {
                     BurnCpu(50);
                     return 0;
                   }),
                   0);
  times(&after);
  EXPECT_GT(after.tms_cutime + after.tms_cstime,
            before.tms_cutime + before.tms_cstime);
}

TEST(InfoTest, GetrusageSelfAndChildren) {
  struct rusage before, after;
  ASSERT_OK(getrusage(RUSAGE_SELF, &before));
  BurnCpu(30);
  ASSERT_OK(getrusage(RUSAGE_SELF, &after));
  auto us = [](const struct timeval& tv) {
    return tv.tv_sec * 1000000L + tv.tv_usec;
  };
  EXPECT_GT(us(after.ru_utime) + us(after.ru_stime),
            us(before.ru_utime) + us(before.ru_stime));
  EXPECT_GT(after.ru_maxrss, 0);

  struct rusage cbefore, cafter;
  ASSERT_OK(getrusage(RUSAGE_CHILDREN, &cbefore));
  EXPECT_EXIT_CODE(RunInChild([] {
                     BurnCpu(30);
                     return 0;
                   }),
                   0);
  ASSERT_OK(getrusage(RUSAGE_CHILDREN, &cafter));
  EXPECT_GE(us(cafter.ru_utime) + us(cafter.ru_stime) -
                (us(cbefore.ru_utime) + us(cbefore.ru_stime)),
            20000);

  ASSERT_OK(getrusage(RUSAGE_THREAD, &after));
  EXPECT_ERRNO(EINVAL, getrusage(static_cast<__rusage_who>(42), &after));
}

TEST(InfoTest, SchedYield) { EXPECT_EQ(sched_yield(), 0); }

TEST(InfoTest, NiceValueRoundTrips) {
  // In a child: raising nice is one-way for an unprivileged process.
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (setpriority(PRIO_PROCESS, 0, 7) != 0) return 1;
                     errno = 0;
                     int p = getpriority(PRIO_PROCESS, 0);
                     return p == 7 && errno == 0 ? 0 : 2;
                   }),
                   0);
  EXPECT_ERRNO(EINVAL, getpriority(42, 0));
}

TEST(InfoTest, SchedCallsOnAMissingPidAreESRCH) {
  struct sched_param sp {};
  cpu_set_t set;
  EXPECT_ERRNO(ESRCH, sched_getparam(999999, &sp));
  EXPECT_ERRNO(ESRCH, sched_getscheduler(999999));
  EXPECT_ERRNO(ESRCH, sched_getaffinity(999999, sizeof(set), &set));
  EXPECT_ERRNO(ESRCH, sched_getaffinity(-1, sizeof(set), &set));
  EXPECT_ERRNO(ESRCH, sched_setaffinity(-1, sizeof(set), &set));
  EXPECT_ERRNO(EINVAL, sched_getparam(-1, &sp));
  struct timespec ts;
  EXPECT_ERRNO(ESRCH, sched_rr_get_interval(999999, &ts));
}

// sched_setaffinity(2): the mask is per thread, read back as set, inherited
// by fork and by threads created later; a mask with no usable CPU is EINVAL.
TEST(InfoTest, SchedAffinityIsPerThreadAndInherited) {
  cpu_set_t all;
  ASSERT_OK(sched_getaffinity(0, sizeof(all), &all));
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c) {
    if (CPU_ISSET(c, &all)) first = c;
  }
  ASSERT_GE(first, 0);
  // The raw syscall returns the kernel's cpumask size: whole longs.
  cpu_set_t raw;
  long n = syscall(SYS_sched_getaffinity, 0, sizeof(raw), &raw);
  ASSERT_GT(n, 0) << ErrnoName(errno);
  EXPECT_EQ(n % static_cast<long>(sizeof(long)), 0);
  EXPECT_ERRNO(EINVAL, syscall(SYS_sched_getaffinity, 0, 4, &raw));

  cpu_set_t empty;
  CPU_ZERO(&empty);
  EXPECT_ERRNO(EINVAL, sched_setaffinity(0, sizeof(empty), &empty));
  cpu_set_t far;
  CPU_ZERO(&far);
  CPU_SET(CPU_SETSIZE - 1, &far);  // no such CPU here
  EXPECT_ERRNO(EINVAL, sched_setaffinity(0, sizeof(far), &far));

  // Set in another thread: this thread keeps its mask; that thread's child
  // (forked after) inherits the new one.
  std::atomic<int> child_count{-1};
  std::atomic<bool> child_has_first{false};
  std::thread th([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) return;
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
      cpu_set_t got;
      char r[2] = {0, 0};
      if (sched_getaffinity(0, sizeof(got), &got) == 0) {
        r[0] = static_cast<char>(CPU_COUNT(&got));
        r[1] = CPU_ISSET(first, &got) ? 1 : 0;
      }
      (void)!write(fds[1], r, 2);
      _exit(0);
    }
    char r[2] = {0, 0};
    (void)!read(fds[0], r, 2);
    waitpid(pid, nullptr, 0);
    close(fds[0]);
    close(fds[1]);
    child_count = r[0];
    child_has_first = r[1] != 0;
  });
  th.join();
  EXPECT_EQ(child_count.load(), 1);
  EXPECT_TRUE(child_has_first.load());
  cpu_set_t mine;
  ASSERT_OK(sched_getaffinity(0, sizeof(mine), &mine));
  EXPECT_TRUE(CPU_EQUAL(&mine, &all));
}

TEST(InfoTest, SchedRrGetIntervalOfSchedOtherIsZero) {
  struct timespec ts = {1, 1};
  ASSERT_OK(sched_rr_get_interval(0, &ts));
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
}

TEST(InfoTest, Getcpu) {
  unsigned cpu = ~0u, node = ~0u;
  ASSERT_EQ(syscall(SYS_getcpu, &cpu, &node, nullptr), 0) << ErrnoName(errno);
  EXPECT_LT(cpu, static_cast<unsigned>(sysconf(_SC_NPROCESSORS_CONF)));
  EXPECT_NE(node, ~0u);
  // glibc's sched_getcpu goes through the vDSO or rseq.
  int c = sched_getcpu();
  EXPECT_GE(c, 0);
  EXPECT_LT(c, sysconf(_SC_NPROCESSORS_CONF));
  // Either pointer may be NULL.
  EXPECT_EQ(syscall(SYS_getcpu, nullptr, nullptr, nullptr), 0);
}

TEST(InfoTest, PrctlName) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (prctl(PR_SET_NAME, "syscall-test-name-too-long") != 0)
                       return 1;
                     char name[32] = {};
                     if (prctl(PR_GET_NAME, name) != 0) return 2;
                     // Truncated to 15 characters plus NUL.
                     return strcmp(name, "syscall-test-na") == 0 ? 0 : 3;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
