// The checker and evaluator (bpf_eval.cc) against the host kernel: every
// program here is also installed for real in a child, and the kernel must
// accept or refuse it as Check() does and take the action Evaluate() says.
#include <linux/audit.h>
#include <stddef.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "seccomp/bpf.h"

namespace seedvisor::seccomp {
namespace {

using Prog = std::vector<sock_filter>;
const sock_filter kRetAllow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

// What the host kernel says about installing `p`: 0 or an errno.
int HostVerdict(const Prog& p) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    sock_fprog fp{static_cast<unsigned short>(p.size()), const_cast<sock_filter*>(p.data())};
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp);
    _exit(r == 0 ? 0 : errno);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  // A program that returns KILL for exit_group itself took the child.
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) return 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(BpfCheck, AgreesWithTheHostKernel) {
  const std::vector<std::pair<const char*, Prog>> progs = {
      {"ret allow", {kRetAllow}},
      {"empty", {}},
      {"no ret at the end", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)}},
      {"jump to the last", {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0), kRetAllow}},
      {"jump past the end", {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), kRetAllow}},
      {"ja past the end", {BPF_STMT(BPF_JMP | BPF_JA, 1), kRetAllow}},
      {"ja to the last", {BPF_STMT(BPF_JMP | BPF_JA, 0), kRetAllow}},
      {"aligned loads", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 60), kRetAllow}},
      {"misaligned load", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), kRetAllow}},
      {"load past the end", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), kRetAllow}},
      {"byte load", {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), kRetAllow}},
      {"ldx msh", {BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0), kRetAllow}},
      {"len loads", {BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0), BPF_STMT(BPF_LDX | BPF_W | BPF_LEN, 0), kRetAllow}},
      {"mod", {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 2), kRetAllow}},
      {"div by 0", {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), kRetAllow}},
      {"div by x", {BPF_STMT(BPF_ALU | BPF_DIV | BPF_X, 0), kRetAllow}},
      {"lsh 31", {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 31), kRetAllow}},
      {"rsh 32", {BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 32), kRetAllow}},
      {"neg xor", {BPF_STMT(BPF_ALU | BPF_NEG, 0), BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0), kRetAllow}},
      {"st 15 then ld", {BPF_STMT(BPF_ST, 15), BPF_STMT(BPF_LD | BPF_MEM, 15), kRetAllow}},
      {"st 16", {BPF_STMT(BPF_ST, 16), kRetAllow}},
      {"ld before st", {BPF_STMT(BPF_LDX | BPF_MEM, 0), kRetAllow}},
      {"st on one path only",
       {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), BPF_STMT(BPF_ST, 1),
        BPF_STMT(BPF_LD | BPF_MEM, 1), kRetAllow}},
      {"st on both paths",
       {BPF_STMT(BPF_ST, 1), BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), BPF_STMT(BPF_ST, 2),
        BPF_STMT(BPF_LD | BPF_MEM, 1), kRetAllow}},
      {"ret a", {BPF_STMT(BPF_RET | BPF_A, 0)}},
      {"ret x", {BPF_STMT(BPF_RET | BPF_X, 0)}},
      {"tax txa", {BPF_STMT(BPF_MISC | BPF_TAX, 0), BPF_STMT(BPF_MISC | BPF_TXA, 0), kRetAllow}},
      {"jset x", {BPF_JUMP(BPF_JMP | BPF_JSET | BPF_X, 0, 0, 0), kRetAllow}},
      {"unknown jump op", {BPF_JUMP(BPF_JMP | 0x60 | BPF_K, 0, 0, 0), kRetAllow}},
      {"garbage", {BPF_STMT(0xffff, 0), kRetAllow}},
  };
  for (const auto& [name, p] : progs) {
    EXPECT_EQ(Check(p), HostVerdict(p)) << name;
  }
  Prog longest(BPF_MAXINSNS, BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0));
  longest.back() = kRetAllow;
  EXPECT_EQ(Check(longest), 0);
  longest.insert(longest.begin(), BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0));
  EXPECT_EQ(Check(longest), EINVAL);
  EXPECT_EQ(HostVerdict(longest), EINVAL);
}

TEST(BpfEvaluate, AluScratchAndReturnA) {
  seccomp_data d{};
  d.nr = 39;
  d.arch = AUDIT_ARCH_X86_64;
  d.args[2] = 0x1122334455667788ull;
  const Prog p = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2]) + 4),  // 0x11223344
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),                                   // 0x1122
      BPF_STMT(BPF_ST, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),            // 39
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_MEM, 3),
      BPF_STMT(BPF_ALU | BPF_SUB | BPF_X, 0),                                    // 0x1122 - 39
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xfff),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  ASSERT_EQ(Check(p), 0);
  EXPECT_EQ(Evaluate(p, d), SECCOMP_RET_ERRNO | ((0x1122 - 39) & 0xfff));
  // A division by a zero X ends the program with 0 (KILL_THREAD), as
  // Linux's converted program does.
  const Prog div = {BPF_STMT(BPF_LDX | BPF_IMM, 0), BPF_STMT(BPF_ALU | BPF_DIV | BPF_X, 0), kRetAllow};
  ASSERT_EQ(Check(div), 0);
  EXPECT_EQ(Evaluate(div, d), 0u);
  // Something Check() refuses is KILL_PROCESS, never a read out of bounds.
  EXPECT_EQ(Evaluate({BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4096), kRetAllow}, d),
            SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate({BPF_STMT(BPF_JMP | BPF_JA, 100), kRetAllow}, d), SECCOMP_RET_KILL_PROCESS);
}

}  // namespace
}  // namespace seedvisor::seccomp
