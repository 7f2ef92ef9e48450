// A program's own seccomp filters (seccomp(2), prctl(PR_SET_SECCOMP)):
// installing them (no_new_privs or CAP_SYS_ADMIN, Linux's BPF checker, the
// 32K-instruction path limit), what each action does, which of several
// filters wins, TSYNC, inheritance across fork and execve, strict mode and
// the /proc/PID/status lines. Each case changes its process for good, so
// each runs in a forked child.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

using syscall_test::ReadFile;
using syscall_test::RunInChild;
using syscall_test::TempDir;

using Prog = std::vector<sock_filter>;

constexpr uint32_t kNrOff = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOff = offsetof(seccomp_data, arch);

// A child's verdict: 0 when every check held, else the line that failed.
// (The line is also printed: an exit status keeps only its low 8 bits.)
#define CHECK_OR_RETURN(cond)                                                 \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, \
              #cond, errno);                                                  \
      return 1;                                                               \
    }                                                                         \
  } while (0)

long Seccomp(unsigned op, unsigned flags, void* args) {
  return syscall(SYS_seccomp, op, flags, args);
}

long Install(Prog p, unsigned flags = 0) {
  sock_fprog fp{static_cast<unsigned short>(p.size()), p.data()};
  return Seccomp(SECCOMP_SET_MODE_FILTER, flags, &fp);
}

// nr == `nr` gets `action`, everything else is allowed.
Prog OnSyscall(int nr, uint32_t action) {
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

Prog AllowAll() { return {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)}; }

bool SetNoNewPrivs() { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }

// The value of `key` in /proc/`who`/status, or "" without one.
std::string StatusLine(const std::string& who, const std::string& key) {
  std::string s = ReadFile("/proc/" + who + "/status");
  size_t at = s.find("\n" + key + ":\t");
  if (at == std::string::npos) return "";
  at += key.size() + 3;
  return s.substr(at, s.find('\n', at) - at);
}

// ---- installing ----

TEST(SeccompTest, NoNewPrivsIsSetOnceAndShown) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
              CHECK_OR_RETURN(StatusLine("self", "NoNewPrivs") == "1");
              // Only 1 is accepted, and the other arguments must be 0.
              errno = 0;
              CHECK_OR_RETURN(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 && errno == EINVAL);
              return 0;
            }),
            0);
}

TEST(SeccompTest, FilterNeedsNoNewPrivsOrCapSysAdmin) {
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) GTEST_SKIP() << "started with no_new_privs";
  EXPECT_EQ(RunInChild([] {
              __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
              __user_cap_data_struct d[2] = {};
              CHECK_OR_RETURN(syscall(SYS_capget, &h, d) == 0);
              const bool admin = d[0].effective & (1u << CAP_SYS_ADMIN);
              if (admin) {
                // CAP_SYS_ADMIN alone is enough.
                CHECK_OR_RETURN(Install(AllowAll()) == 0);
                CHECK_OR_RETURN(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
                d[0].effective &= ~(1u << CAP_SYS_ADMIN);
                CHECK_OR_RETURN(syscall(SYS_capset, &h, d) == 0);
              }
              errno = 0;
              CHECK_OR_RETURN(Install(AllowAll()) == -1 && errno == EACCES);
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(AllowAll()) == 0);
              return 0;
            }),
            0);
}

// Linux's checker (bpf_check_classic(), seccomp_check_filter()): EINVAL.
TEST(SeccompTest, BadProgramsAreEinval) {
  const sock_filter ret_allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  const std::vector<std::pair<const char*, Prog>> bad = {
      {"empty", {}},
      {"no RET at the end", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff)}},
      {"jump past the end", {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ret_allow}},
      {"ja past the end", {BPF_STMT(BPF_JMP | BPF_JA, 1), ret_allow}},
      {"misaligned load", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 1), ret_allow}},
      {"load past seccomp_data", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ret_allow}},
      {"half-word load", {BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), ret_allow}},
      {"indirect load", {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), ret_allow}},
      {"mod", {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 3), ret_allow}},
      {"division by constant 0", {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ret_allow}},
      {"shift by 32", {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 32), ret_allow}},
      {"scratch word 16", {BPF_STMT(BPF_ST, 16), ret_allow}},
      {"scratch read before write", {BPF_STMT(BPF_LD | BPF_MEM, 3), ret_allow}},
      {"unknown opcode", {BPF_STMT(0xffff, 0), ret_allow}},
      {"RET X", {BPF_STMT(BPF_RET | BPF_X, 0)}},
  };
  for (const auto& [why, prog] : bad) {
    EXPECT_EQ(RunInChild([&prog = prog] {
                CHECK_OR_RETURN(SetNoNewPrivs());
                errno = 0;
                CHECK_OR_RETURN(Install(prog) == -1 && errno == EINVAL);
                return 0;
              }),
              0)
        << why;
  }
  // Too long: BPF_MAXINSNS + 1.
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              Prog p(BPF_MAXINSNS + 1, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff));
              p.back() = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
              errno = 0;
              CHECK_OR_RETURN(Install(p) == -1 && errno == EINVAL);
              p.pop_back();
              p.back() = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
              CHECK_OR_RETURN(Install(p) == 0);
              return 0;
            }),
            0);
  // What the checker must accept: scratch memory written on every path
  // before it is read, X arithmetic, LEN loads, RET A.
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              Prog p = {
                  BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),          // A = 64
                  BPF_STMT(BPF_ST, 2),                             // M[2] = 64
                  BPF_STMT(BPF_LDX | BPF_W | BPF_LEN, 0),         // X = 64
                  BPF_STMT(BPF_ALU | BPF_SUB | BPF_X, 0),          // A = 0
                  BPF_STMT(BPF_LDX | BPF_MEM, 2),                  // X = 64
                  BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0),          // A = 64
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 64, 1, 0),
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
                  BPF_STMT(BPF_LD | BPF_IMM, SECCOMP_RET_ALLOW),
                  BPF_STMT(BPF_RET | BPF_A, 0),
              };
              CHECK_OR_RETURN(Install(p) == 0);
              CHECK_OR_RETURN(getpid() > 0);
              return 0;
            }),
            0);
}

TEST(SeccompTest, BadArgumentsAndFlags) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              Prog p = AllowAll();
              sock_fprog fp{1, p.data()};
              errno = 0;
              CHECK_OR_RETURN(Seccomp(SECCOMP_SET_MODE_FILTER, 1u << 30, &fp) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(Seccomp(99, 0, &fp) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(Seccomp(SECCOMP_SET_MODE_STRICT, 1, nullptr) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(Seccomp(SECCOMP_SET_MODE_FILTER, 0, nullptr) == -1 && errno == EFAULT);
              sock_fprog bad{1, reinterpret_cast<sock_filter*>(8)};
              CHECK_OR_RETURN(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &bad) == -1 && errno == EFAULT);
              CHECK_OR_RETURN(prctl(PR_SET_SECCOMP, 7, 0, 0, 0) == -1 && errno == EINVAL);
              CHECK_OR_RETURN(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0);
              return 0;
            }),
            0);
}

// MAX_INSNS_PER_PATH: 32768 instructions, each filter under the new one
// counted with 4 more.
TEST(SeccompTest, PathOfMoreThan32KInstructionsIsEnomem) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              Prog p(BPF_MAXINSNS, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff));
              p.back() = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
              // 7 of them: 7 * 4096 + 6 * 4 = 28696.
              for (int i = 0; i < 7; ++i) CHECK_OR_RETURN(Install(p) == 0);
              // An 8th would make 4096 + 7 * 4100 = 32796.
              errno = 0;
              CHECK_OR_RETURN(Install(p) == -1 && errno == ENOMEM);
              // Linux counts the program as converted to eBPF (a few more
              // instructions each), so only clear cases: 2000 more still fit,
              // 4096 more do not.
              Prog small(2000, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff));
              small.back() = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
              CHECK_OR_RETURN(Install(small) == 0);
              errno = 0;
              CHECK_OR_RETURN(Install(p) == -1 && errno == ENOMEM);
              CHECK_OR_RETURN(Install(AllowAll()) == 0);
              CHECK_OR_RETURN(StatusLine("self", "Seccomp_filters") == "9");
              return 0;
            }),
            0);
}

TEST(SeccompTest, ActionAvail) {
  for (uint32_t action : {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP,
                          SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE, SECCOMP_RET_LOG,
                          SECCOMP_RET_ALLOW}) {
    EXPECT_EQ(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action), 0) << std::hex << action;
  }
  uint32_t unknown = 0x12340000;
  EXPECT_ERRNO(EOPNOTSUPP, Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &unknown));
  EXPECT_ERRNO(EINVAL, Seccomp(SECCOMP_GET_ACTION_AVAIL, 1, &unknown));
  EXPECT_ERRNO(EFAULT, Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, nullptr));
}

// ---- actions ----

TEST(SeccompTest, ErrnoDeniesMkdirOnly) {
  TempDir dir;
  const std::string path = dir.Path("d");
  EXPECT_EQ(RunInChild([&] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_mkdir, SECCOMP_RET_ERRNO | EPERM)) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_mkdirat, SECCOMP_RET_ERRNO | EPERM)) == 0);
              errno = 0;
              CHECK_OR_RETURN(mkdir(path.c_str(), 0755) == -1 && errno == EPERM);
              CHECK_OR_RETURN(syscall(SYS_mkdir, path.c_str(), 0755) == -1 && errno == EPERM);
              // Everything else still works.
              int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
              CHECK_OR_RETURN(fd >= 0);
              close(fd);
              CHECK_OR_RETURN(unlink(path.c_str()) == 0);
              CHECK_OR_RETURN(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2);
              CHECK_OR_RETURN(StatusLine("self", "Seccomp") == "2");
              CHECK_OR_RETURN(StatusLine("self", "Seccomp_filters") == "2");
              return 0;
            }),
            0);
  struct stat st;
  EXPECT_ERRNO(ENOENT, stat(path.c_str(), &st));
}

TEST(SeccompTest, ErrnoDataIsCappedAndZeroSucceeds) {
  TempDir dir;
  const std::string path = dir.Path("d");
  EXPECT_EQ(RunInChild([&] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 5000)) == 0);
              errno = 0;
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 4095);
              // ERRNO with 0 skips the call and returns 0.
              CHECK_OR_RETURN(Install(OnSyscall(SYS_mkdir, SECCOMP_RET_ERRNO | 0)) == 0);
              CHECK_OR_RETURN(syscall(SYS_mkdir, path.c_str(), 0755) == 0);
              struct stat st;
              CHECK_OR_RETURN(stat(path.c_str(), &st) == -1 && errno == ENOENT);
              return 0;
            }),
            0);
}

// The filter sees the number, the architecture, the arguments (all 64
// bits) and the address after the syscall instruction.
TEST(SeccompTest, FilterSeesArchArgsAndInstructionPointer) {
  EXPECT_EQ(RunInChild([] {
              const long ppid = getppid();
              CHECK_OR_RETURN(SetNoNewPrivs());
              Prog p = {
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArchOff),
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOff),
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 11),
                  // args[0] == 0x1234 (low) and 0x5 (high): ERRNO 33.
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x1234, 0, 3),
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]) + 4),
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 1),
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 33),
                  // args[1] == 1: ERRNO = 0x800 | (ip & 0x7ff).
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[1])),
                  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 4),
                  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer)),
                  BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x7ff),
                  BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO | 0x800),
                  BPF_STMT(BPF_RET | BPF_A, 0),
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
              };
              // Jump offsets above: 4 and 11 skip to the last RET (16).
              CHECK_OR_RETURN(p.size() == 17);
              CHECK_OR_RETURN(Install(p) == 0);
              errno = 0;
              CHECK_OR_RETURN(syscall(SYS_getppid, 0x500001234ull, 0ull) == -1 && errno == 33);
              CHECK_OR_RETURN(syscall(SYS_getppid, 0x1234ull, 0ull) == ppid);  // high half differs
              long r;
              uint64_t after;
              asm volatile("lea 1f(%%rip), %1\n\tsyscall\n1:"
                           : "=a"(r), "=&r"(after)
                           : "a"(SYS_getppid), "D"(0), "S"(1)
                           : "rcx", "r11", "memory");
              CHECK_OR_RETURN(r == -static_cast<long>(0x800 | (after & 0x7ff)));
              return 0;
            }),
            0);
}

struct TrapSeen {
  std::atomic<int> count{0};
  siginfo_t info;
  uint64_t rip = 0, rax = 0;
};
TrapSeen trap_seen;

void OnSigsys(int, siginfo_t* info, void* uc) {
  trap_seen.info = *info;
  auto* u = static_cast<ucontext_t*>(uc);
  trap_seen.rip = u->uc_mcontext.gregs[REG_RIP];
  trap_seen.rax = u->uc_mcontext.gregs[REG_RAX];
  trap_seen.count++;
}

TEST(SeccompTest, TrapSendsSigsysDescribingTheCall) {
  EXPECT_EQ(RunInChild([] {
              struct sigaction sa = {};
              sa.sa_sigaction = OnSigsys;
              sa.sa_flags = SA_SIGINFO;
              CHECK_OR_RETURN(sigaction(SIGSYS, &sa, nullptr) == 0);
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_TRAP | 0x42)) == 0);
              // The call is skipped and "returns" its own number: the
              // handler's registers are rolled back (syscall_rollback()).
              long r = syscall(SYS_getppid, 1, 2, 3);
              CHECK_OR_RETURN(r == SYS_getppid);
              CHECK_OR_RETURN(trap_seen.count == 1);
              const siginfo_t& i = trap_seen.info;
              CHECK_OR_RETURN(i.si_signo == SIGSYS);
              CHECK_OR_RETURN(i.si_code == 1);  // SYS_SECCOMP
              CHECK_OR_RETURN(i.si_errno == 0x42);
              CHECK_OR_RETURN(i.si_syscall == SYS_getppid);
              CHECK_OR_RETURN(i.si_arch == AUDIT_ARCH_X86_64);
              CHECK_OR_RETURN(reinterpret_cast<uint64_t>(i.si_call_addr) == trap_seen.rip);
              CHECK_OR_RETURN(trap_seen.rax == SYS_getppid);
              return 0;
            }),
            0);
}

TEST(SeccompTest, KillProcessIsSigsys) {
  int status = RunInChild([] {
    // No core file, so that the status says "no core" natively too.
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (!SetNoNewPrivs()) return 1;
    if (Install(OnSyscall(SYS_getppid, SECCOMP_RET_KILL_PROCESS)) != 0) return 2;
    syscall(SYS_getppid);
    return 3;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
  EXPECT_FALSE(WCOREDUMP(status));
}

void* GetppidThread(void*) {
  syscall(SYS_getppid);
  return reinterpret_cast<void*>(1);  // not reached under KILL_THREAD
}

TEST(SeccompTest, KillThreadEndsOnlyTheThread) {
  int status = RunInChild([] {
    CHECK_OR_RETURN(SetNoNewPrivs());
    CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_KILL_THREAD)) == 0);
    pthread_t t;
    CHECK_OR_RETURN(pthread_create(&t, nullptr, GetppidThread, nullptr) == 0);
    void* ret = nullptr;
    CHECK_OR_RETURN(pthread_join(t, &ret) == 0);
    CHECK_OR_RETURN(ret == nullptr);
    return 0;
  });
  EXPECT_EQ(status, 0);
  // The last thread takes the process with it.
  status = RunInChild([] {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (!SetNoNewPrivs()) return 1;
    if (Install(OnSyscall(SYS_getppid, SECCOMP_RET_KILL_THREAD)) != 0) return 2;
    syscall(SYS_getppid);
    return 3;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompTest, TraceWithoutTracerAndUserNotifWithoutListenerAreEnosys) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_TRACE | 9)) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getpgid, SECCOMP_RET_USER_NOTIF)) == 0);
              errno = 0;
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == ENOSYS);
              CHECK_OR_RETURN(syscall(SYS_getpgid, 0) == -1 && errno == ENOSYS);
              return 0;
            }),
            0);
}

TEST(SeccompTest, LogAllowsTheCall) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_LOG)) == 0);
              CHECK_OR_RETURN(Install(AllowAll(), SECCOMP_FILTER_FLAG_LOG) == 0);
              CHECK_OR_RETURN(syscall(SYS_getppid) == getppid());
              return 0;
            }),
            0);
}

// seccomp_run_filters(): the lowest action (as a signed number) wins, and
// among equal actions the most recent filter's data.
TEST(SeccompTest, MostRestrictiveActionWins) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 1)) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 2)) == 0);
              errno = 0;
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 2);
              // Less restrictive filters on top change nothing.
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_LOG)) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_TRACE)) == 0);
              CHECK_OR_RETURN(Install(AllowAll()) == 0);
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 2);
              // TRAP beats ERRNO wherever it is.
              struct sigaction sa = {};
              sa.sa_sigaction = OnSigsys;
              sa.sa_flags = SA_SIGINFO;
              CHECK_OR_RETURN(sigaction(SIGSYS, &sa, nullptr) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_TRAP | 7)) == 0);
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 3)) == 0);
              CHECK_OR_RETURN(syscall(SYS_getppid) == SYS_getppid);
              CHECK_OR_RETURN(trap_seen.count == 1 && trap_seen.info.si_errno == 7);
              return 0;
            }),
            0);
  int status = RunInChild([] {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (!SetNoNewPrivs()) return 1;
    // KILL_PROCESS under an ALLOW and an ERRNO still kills.
    if (Install(OnSyscall(SYS_getppid, SECCOMP_RET_KILL_PROCESS)) != 0) return 2;
    if (Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 1)) != 0) return 3;
    if (Install(AllowAll()) != 0) return 4;
    syscall(SYS_getppid);
    return 5;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

// ---- inheritance ----

TEST(SeccompTest, FiltersAreInheritedByForkAndKeptAcrossExec) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 21)) == 0);
              int child = RunInChild([] {
                errno = 0;
                CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 21);
                CHECK_OR_RETURN(StatusLine("self", "Seccomp_filters") == "1");
                return 0;
              });
              CHECK_OR_RETURN(child == 0);
              // An exec'd program keeps them: cat shows its own status.
              int fds[2];
              CHECK_OR_RETURN(pipe(fds) == 0);
              pid_t pid = fork();
              if (pid == 0) {
                dup2(fds[1], 1);
                execl("/bin/cat", "cat", "/proc/self/status", nullptr);
                _exit(127);
              }
              close(fds[1]);
              std::string out;
              char buf[4096];
              ssize_t n;
              while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
              int st;
              CHECK_OR_RETURN(waitpid(pid, &st, 0) == pid && st == 0);
              CHECK_OR_RETURN(out.find("\nSeccomp:\t2\n") != std::string::npos);
              CHECK_OR_RETURN(out.find("\nSeccomp_filters:\t1\n") != std::string::npos);
              CHECK_OR_RETURN(out.find("\nNoNewPrivs:\t1\n") != std::string::npos);
              return 0;
            }),
            0);
}

// ---- TSYNC ----

struct Sibling {
  pthread_t thread;
  int go[2];    // main -> sibling: one byte per step
  int done[2];  // sibling -> main
  std::atomic<long> result{0};
  std::atomic<int> err{0};
  std::atomic<int> step{0};
  std::atomic<long> tid{0};
  std::string status;
};

void* SiblingMain(void* arg) {
  auto* s = static_cast<Sibling*>(arg);
  s->tid = syscall(SYS_gettid);
  char c;
  while (read(s->go[0], &c, 1) == 1) {
    if (c == 'g') {
      errno = 0;
      s->result = syscall(SYS_getppid);
      s->err = errno;
      s->status = ReadFile("/proc/thread-self/status");
    } else if (c == 'f') {
      // A filter of its own: no longer an ancestor of the main thread's.
      s->result = Install(AllowAll());
    } else {
      break;
    }
    if (write(s->done[1], "x", 1) != 1) break;
  }
  return nullptr;
}

bool Step(Sibling& s, char c) {
  char r;
  return write(s.go[1], &c, 1) == 1 && read(s.done[0], &r, 1) == 1;
}

TEST(SeccompTest, TsyncGivesEveryThreadTheFilter) {
  EXPECT_EQ(RunInChild([] {
              Sibling s;
              CHECK_OR_RETURN(pipe(s.go) == 0 && pipe(s.done) == 0);
              CHECK_OR_RETURN(pthread_create(&s.thread, nullptr, SiblingMain, &s) == 0);
              const long ppid = getppid();
              CHECK_OR_RETURN(SetNoNewPrivs());
              // Without TSYNC the sibling is not affected.
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 11)) == 0);
              CHECK_OR_RETURN(Step(s, 'g') && s.result == ppid);
              CHECK_OR_RETURN(s.status.find("\nSeccomp:\t0\n") != std::string::npos);
              // With it, it is, and it gets no_new_privs too.
              CHECK_OR_RETURN(Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 12),
                                      SECCOMP_FILTER_FLAG_TSYNC) == 0);
              CHECK_OR_RETURN(Step(s, 'g') && s.result == -1 && s.err == 12);
              CHECK_OR_RETURN(s.status.find("\nSeccomp:\t2\n") != std::string::npos);
              CHECK_OR_RETURN(s.status.find("\nSeccomp_filters:\t2\n") != std::string::npos);
              CHECK_OR_RETURN(s.status.find("\nNoNewPrivs:\t1\n") != std::string::npos);
              // A sibling whose filters are not ours stops a later TSYNC: its
              // tid is the result, or ESRCH with TSYNC_ESRCH; nothing changes.
              CHECK_OR_RETURN(Step(s, 'f') && s.result == 0);
              long r = Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 13),
                               SECCOMP_FILTER_FLAG_TSYNC);
              CHECK_OR_RETURN(r == s.tid);
              errno = 0;
              r = Install(OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 13),
                          SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH);
              CHECK_OR_RETURN(r == -1 && errno == ESRCH);
              errno = 0;
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 12);
              CHECK_OR_RETURN(StatusLine("self", "Seccomp_filters") == "2");
              CHECK_OR_RETURN(write(s.go[1], "q", 1) == 1);
              CHECK_OR_RETURN(pthread_join(s.thread, nullptr) == 0);
              return 0;
            }),
            0);
}

// ---- strict mode ----

TEST(SeccompTest, StrictModeAllowsReadWriteExitSigreturn) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int status = RunInChild([&] {
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) return 1;
    if (write(fds[1], "ok", 2) != 2) return 2;
    syscall(SYS_exit, 7);  // exit_group is not allowed
    return 3;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7) << status;
  char buf[2];
  EXPECT_EQ(read(fds[0], buf, 2), 2);
  close(fds[0]);
  close(fds[1]);
  // Anything else kills the thread with SIGKILL.
  status = RunInChild([] {
    if (Seccomp(SECCOMP_SET_MODE_STRICT, 0, nullptr) != 0) return 1;
    syscall(SYS_getpid);
    syscall(SYS_exit, 2);
    return 3;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST(SeccompTest, ModesDoNotMix) {
  EXPECT_EQ(RunInChild([] {
              CHECK_OR_RETURN(SetNoNewPrivs());
              CHECK_OR_RETURN(Install(AllowAll()) == 0);
              errno = 0;
              CHECK_OR_RETURN(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) == -1 &&
                              errno == EINVAL);
              // prctl's filter mode is seccomp(SET_MODE_FILTER) with no flags.
              Prog p = OnSyscall(SYS_getppid, SECCOMP_RET_ERRNO | 5);
              sock_fprog fp{static_cast<unsigned short>(p.size()), p.data()};
              CHECK_OR_RETURN(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == 0);
              CHECK_OR_RETURN(syscall(SYS_getppid) == -1 && errno == 5);
              return 0;
            }),
            0);
}

}  // namespace
