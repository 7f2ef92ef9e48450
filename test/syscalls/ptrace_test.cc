// ptrace(2) and process_vm_readv/writev(2): the test process traces a child
// it forks for each case (TRACEME, ATTACH, SEIZE), and checks what wait
// reports (stops as 0x7f | sig << 8 | event << 16), the registers, memory,
// syscall stops, events, signal injection, permissions, and what happens
// when the tracer goes away.
#include <elf.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/ptrace.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

// glibc's <sys/ptrace.h> clashes with <linux/ptrace.h>: call it raw.
long Ptrace(long req, pid_t pid, uint64_t addr, uint64_t data) {
  return syscall(SYS_ptrace, req, pid, addr, data);
}

// Waits for `pid` (any kind of child); returns the status word.
int Wait(pid_t pid, int options = __WALL) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, options);
  } while (r < 0 && errno == EINTR);
  EXPECT_EQ(r, pid) << strerror(errno);
  return status;
}

bool IsStop(int status, int sig, int event = 0) {
  return WIFSTOPPED(status) && (status >> 8) == (sig | (event << 8));
}

std::string StatusLine(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

std::string Trim(std::string s) {
  while (!s.empty() && (s[0] == '\t' || s[0] == ' ')) s.erase(0, 1);
  return s;
}

// A child that asks to be traced and stops itself; the caller's wait sees
// the SIGSTOP signal-delivery-stop.
template <typename F>
pid_t TracedChild(F body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (Ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(100);
    raise(SIGSTOP);
    _exit(body());
  }
  return pid;
}

volatile uint64_t g_word = 0x1122334455667788;

TEST(Ptrace, TraceMeExecStopsWithSigtrap) {
  pid_t pid = fork();
  if (pid == 0) {
    if (Ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(100);
    // A second TRACEME: already traced.
    if (Ptrace(PTRACE_TRACEME, 0, 0, 0) != -1 || errno != EPERM) _exit(101);
    execl("/bin/sh", "sh", "-c", "exit 3", nullptr);
    _exit(102);
  }
  int st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGTRAP)) << std::hex << st;
  EXPECT_EQ(Trim(StatusLine(pid, "TracerPid")), std::to_string(getpid()));
  EXPECT_EQ(Trim(StatusLine(pid, "State")).substr(0, 1), "t");
  // The exec SIGTRAP is a signal-delivery-stop: GETSIGINFO has it.
  siginfo_t si{};
  ASSERT_EQ(Ptrace(PTRACE_GETSIGINFO, pid, 0, reinterpret_cast<uint64_t>(&si)), 0);
  EXPECT_EQ(si.si_signo, SIGTRAP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  st = Wait(pid);
  ASSERT_TRUE(WIFEXITED(st)) << std::hex << st;
  EXPECT_EQ(WEXITSTATUS(st), 3);
}

TEST(Ptrace, RequestsNeedAStoppedTraceeOfOurs) {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  uint64_t word;
  // Not traced: ESRCH for everything but attaching.
  EXPECT_ERRNO(ESRCH, Ptrace(PTRACE_PEEKDATA, pid, 0, reinterpret_cast<uint64_t>(&word)));
  EXPECT_ERRNO(ESRCH, Ptrace(PTRACE_CONT, pid, 0, 0));
  EXPECT_ERRNO(ESRCH, Ptrace(PTRACE_INTERRUPT, pid, 0, 0));
  EXPECT_ERRNO(ESRCH, Ptrace(PTRACE_ATTACH, 999999, 0, 0));
  // Our own process cannot be traced by us.
  EXPECT_ERRNO(EPERM, Ptrace(PTRACE_ATTACH, getpid(), 0, 0));
  // SEIZE: addr must be 0, options known.
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_SEIZE, pid, 1, 0));
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_SEIZE, pid, 0, 1u << 30));
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
  // Attached, but running: still ESRCH; attaching twice: EPERM.
  EXPECT_ERRNO(ESRCH, Ptrace(PTRACE_PEEKDATA, pid, 0, reinterpret_cast<uint64_t>(&word)));
  EXPECT_ERRNO(EPERM, Ptrace(PTRACE_ATTACH, pid, 0, 0));
  // An unknown request on a stopped tracee: EIO.
  ASSERT_EQ(Ptrace(PTRACE_INTERRUPT, pid, 0, 0), 0);
  ASSERT_TRUE(IsStop(Wait(pid), SIGTRAP, PTRACE_EVENT_STOP));
  EXPECT_ERRNO(EIO, Ptrace(0x7777, pid, 0, 0));
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_CONT, pid, 0, 100));  // not a signal
  EXPECT_ERRNO(EINVAL, Ptrace(PTRACE_SETOPTIONS, pid, 0, 1u << 30));
  kill(pid, SIGKILL);
  int st = Wait(pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << std::hex << st;
}

TEST(Ptrace, AttachNeedsTheSameUserOrCapSysPtrace) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to drop to another uid";
  const pid_t me = getpid();
  int st = syscall_test::RunInChild([me] {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) return 10;
    // Another user's process (and no CAP_SYS_PTRACE left): EPERM.
    if (Ptrace(PTRACE_ATTACH, me, 0, 0) != -1 || errno != EPERM) return 11;
    if (Ptrace(PTRACE_SEIZE, me, 0, 0) != -1 || errno != EPERM) return 12;
    // Nor its memory.
    char buf[8];
    struct iovec l = {buf, sizeof(buf)}, r = {buf, sizeof(buf)};
    if (syscall(SYS_process_vm_readv, me, &l, 1, &r, 1, 0) != -1 || errno != EPERM) return 13;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st;
}

TEST(Ptrace, AttachStopsWithSigstopAndDetachResumes) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    for (;;) {
      usleep(1000);
      if (write(fds[1], "x", 1) != 1) _exit(1);
    }
  }
  close(fds[1]);
  ASSERT_EQ(Ptrace(PTRACE_ATTACH, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGSTOP)) << std::hex << st;
  // Suppress the SIGSTOP and let it go: it keeps writing.
  ASSERT_EQ(Ptrace(PTRACE_DETACH, pid, 0, 0), 0);
  EXPECT_EQ(Trim(StatusLine(pid, "TracerPid")), "0");
  char c;
  EXPECT_EQ(read(fds[0], &c, 1), 1);
  kill(pid, SIGKILL);
  st = Wait(pid);
  EXPECT_TRUE(WIFSIGNALED(st)) << std::hex << st;
  close(fds[0]);
}

TEST(Ptrace, PeekPokeAndRegisters) {
  pid_t pid = TracedChild([] { return g_word == 0xabcdef ? 0 : 1; });
  ASSERT_TRUE(IsStop(Wait(pid), SIGSTOP));
  uint64_t word = 0;
  ASSERT_EQ(Ptrace(PTRACE_PEEKDATA, pid, reinterpret_cast<uint64_t>(&g_word),
                   reinterpret_cast<uint64_t>(&word)),
            0);
  EXPECT_EQ(word, 0x1122334455667788u);
  ASSERT_EQ(Ptrace(PTRACE_POKEDATA, pid, reinterpret_cast<uint64_t>(&g_word), 0xabcdef), 0);
  // Text is written even though it is read-only (FOLL_FORCE), and put back.
  uint64_t text = 0;
  const uint64_t fn = reinterpret_cast<uint64_t>(&Wait);
  ASSERT_EQ(Ptrace(PTRACE_PEEKTEXT, pid, fn, reinterpret_cast<uint64_t>(&text)), 0);
  ASSERT_EQ(Ptrace(PTRACE_POKETEXT, pid, fn, ~text), 0);
  uint64_t text2 = 0;
  ASSERT_EQ(Ptrace(PTRACE_PEEKTEXT, pid, fn, reinterpret_cast<uint64_t>(&text2)), 0);
  EXPECT_EQ(text2, ~text);
  ASSERT_EQ(Ptrace(PTRACE_POKETEXT, pid, fn, text), 0);
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_PEEKDATA, pid, 8, reinterpret_cast<uint64_t>(&word)));

  user_regs_struct regs{};
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
  uint64_t rip = 0, rsp = 0;
  ASSERT_EQ(Ptrace(PTRACE_PEEKUSR, pid, offsetof(user_regs_struct, rip),
                   reinterpret_cast<uint64_t>(&rip)),
            0);
  ASSERT_EQ(Ptrace(PTRACE_PEEKUSR, pid, offsetof(user_regs_struct, rsp),
                   reinterpret_cast<uint64_t>(&rsp)),
            0);
  EXPECT_EQ(rip, regs.rip);
  EXPECT_EQ(rsp, regs.rsp);
  EXPECT_EQ(regs.cs & 3, 3u);
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_PEEKUSR, pid, 3, reinterpret_cast<uint64_t>(&rip)));
  // The kernel's struct user ends with error_code and fault_address,
  // past glibc's.
  uint64_t zero = 1;
  EXPECT_EQ(Ptrace(PTRACE_PEEKUSR, pid, sizeof(struct user), reinterpret_cast<uint64_t>(&zero)), 0);
  EXPECT_EQ(zero, 0u);
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_PEEKUSR, pid, sizeof(struct user) + 16,
                           reinterpret_cast<uint64_t>(&rip)));
  // POKEUSER of a register, and the checks putreg() makes.
  ASSERT_EQ(Ptrace(PTRACE_POKEUSR, pid, offsetof(user_regs_struct, r12), 0x5151), 0);
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_POKEUSR, pid, offsetof(user_regs_struct, fs_base),
                           uint64_t{1} << 63));
  EXPECT_ERRNO(EIO, Ptrace(PTRACE_POKEUSR, pid, offsetof(user_regs_struct, cs), 0x10));
  user_regs_struct regs2{};
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs2)), 0);
  EXPECT_EQ(regs2.r12, 0x5151u);
  regs2.r12 = regs.r12;
  ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs2)), 0);
  // NT_PRSTATUS is GETREGS; a short iovec gets a short copy.
  user_regs_struct regs3{};
  struct iovec iov = {&regs3, sizeof(regs3)};
  ASSERT_EQ(Ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, reinterpret_cast<uint64_t>(&iov)), 0);
  EXPECT_EQ(iov.iov_len, sizeof(regs3));
  EXPECT_EQ(regs3.rip, regs.rip);
  EXPECT_EQ(regs3.r12, regs.r12);
  iov.iov_len = 3;
  EXPECT_ERRNO(EINVAL, Ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, reinterpret_cast<uint64_t>(&iov)));

  // FP state: FXSAVE through GETFPREGS and NT_PRFPREG agree; an edit of
  // MXCSR shows up in the XSAVE regset, whose bytes 464.. hold XCR0.
  user_fpregs_struct fp{}, fp2{};
  ASSERT_EQ(Ptrace(PTRACE_GETFPREGS, pid, 0, reinterpret_cast<uint64_t>(&fp)), 0);
  iov = {&fp2, sizeof(fp2)};
  ASSERT_EQ(Ptrace(PTRACE_GETREGSET, pid, NT_PRFPREG, reinterpret_cast<uint64_t>(&iov)), 0);
  EXPECT_EQ(fp.mxcsr, fp2.mxcsr);
  EXPECT_EQ(fp.cwd, fp2.cwd);
  fp.mxcsr ^= 0x6000;  // rounding mode
  ASSERT_EQ(Ptrace(PTRACE_SETFPREGS, pid, 0, reinterpret_cast<uint64_t>(&fp)), 0);
  alignas(64) uint8_t xs[16384] = {};
  iov = {xs, sizeof(xs)};
  if (Ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, reinterpret_cast<uint64_t>(&iov)) == 0) {
    EXPECT_GT(iov.iov_len, 512u);
    uint32_t mxcsr;
    memcpy(&mxcsr, xs + 24, sizeof(mxcsr));
    EXPECT_EQ(mxcsr, fp.mxcsr);
    uint64_t xcr0;
    memcpy(&xcr0, xs + 464, sizeof(xcr0));
    EXPECT_EQ(xcr0 & 3, 3u);
  }
  fp.mxcsr ^= 0x6000;
  ASSERT_EQ(Ptrace(PTRACE_SETFPREGS, pid, 0, reinterpret_cast<uint64_t>(&fp)), 0);

  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(WIFEXITED(st)) << std::hex << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);  // it saw the poked word
}

TEST(Ptrace, SyscallStopsInfoAndSkip) {
  pid_t pid = TracedChild([] {
    // Skipped by the tracer, which makes the result 4242.
    long r = syscall(SYS_getppid);
    // Number changed at entry: getpid becomes gettid (same value here, so
    // the tracer changes the argument-less call to getuid's... see below).
    long r2 = syscall(SYS_getpid);
    return (r == 4242 ? 0 : 1) | (r2 == 77 ? 0 : 2);
  });
  ASSERT_TRUE(IsStop(Wait(pid), SIGSTOP));
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD), 0);
  ptrace_syscall_info info{};
  // Not at a syscall stop: op NONE, and the size of what is filled in.
  EXPECT_EQ(Ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), reinterpret_cast<uint64_t>(&info)),
            offsetof(ptrace_syscall_info, entry));
  EXPECT_EQ(info.op, PTRACE_SYSCALL_INFO_NONE);
  EXPECT_EQ(info.arch, AUDIT_ARCH_X86_64);
  bool skipped = false, changed = false;
  for (int i = 0; i < 200 && !(skipped && changed); ++i) {
    ASSERT_EQ(Ptrace(PTRACE_SYSCALL, pid, 0, 0), 0);
    int st = Wait(pid);
    ASSERT_TRUE(IsStop(st, SIGTRAP | 0x80)) << std::hex << st;
    long n = Ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), reinterpret_cast<uint64_t>(&info));
    ASSERT_EQ(info.op, PTRACE_SYSCALL_INFO_ENTRY);
    EXPECT_EQ(n, offsetof(ptrace_syscall_info, entry.args) + sizeof(info.entry.args));
    user_regs_struct regs{};
    ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
    EXPECT_EQ(info.entry.nr, regs.orig_rax);
    EXPECT_EQ(static_cast<int64_t>(regs.rax), -ENOSYS);  // as x86 shows it at entry
    const uint64_t nr = info.entry.nr;
    if (nr == SYS_getppid) {
      regs.orig_rax = static_cast<uint64_t>(-1);  // skip it
      ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
    } else if (nr == SYS_getpid) {
      // Becomes a syscall whose result we can recognise: getuid's is
      // replaced at exit anyway, so check the number took: dup(-1) → EBADF.
      regs.orig_rax = SYS_dup;
      regs.rdi = static_cast<uint64_t>(-1);
      ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
    }
    ASSERT_EQ(Ptrace(PTRACE_SYSCALL, pid, 0, 0), 0);
    st = Wait(pid);
    ASSERT_TRUE(IsStop(st, SIGTRAP | 0x80)) << std::hex << st;
    n = Ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info), reinterpret_cast<uint64_t>(&info));
    ASSERT_EQ(info.op, PTRACE_SYSCALL_INFO_EXIT);
    EXPECT_EQ(n, offsetof(ptrace_syscall_info, exit.is_error) + sizeof(info.exit.is_error));
    uint64_t msg = 0;
    ASSERT_EQ(Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uint64_t>(&msg)), 0);
    EXPECT_EQ(msg, 2u);  // PTRACE_EVENTMSG_SYSCALL_EXIT
    if (nr == SYS_getppid) {
      EXPECT_EQ(info.exit.rval, -ENOSYS);  // skipped: rax kept
      EXPECT_TRUE(info.exit.is_error);
      ASSERT_EQ(Ptrace(PTRACE_POKEUSR, pid, offsetof(user_regs_struct, rax), 4242), 0);
      skipped = true;
    } else if (nr == SYS_getpid) {
      EXPECT_EQ(info.exit.rval, -EBADF);  // dup(-1) ran
      ASSERT_EQ(Ptrace(PTRACE_POKEUSR, pid, offsetof(user_regs_struct, rax), 77), 0);
      changed = true;
    }
  }
  EXPECT_TRUE(skipped && changed);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(WIFEXITED(st)) << std::hex << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

volatile int g_usr1 = 0;

TEST(Ptrace, SignalDeliveryStopsInjectAndSuppress) {
  pid_t pid = TracedChild([] {
    signal(SIGUSR1, [](int) { g_usr1 = g_usr1 + 1; });
    raise(SIGTERM);  // suppressed by the tracer
    raise(SIGUSR2);  // turned into SIGUSR1
    return g_usr1 == 1 ? 0 : 1;
  });
  ASSERT_TRUE(IsStop(Wait(pid), SIGSTOP));
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGTERM)) << std::hex << st;
  siginfo_t si{};
  ASSERT_EQ(Ptrace(PTRACE_GETSIGINFO, pid, 0, reinterpret_cast<uint64_t>(&si)), 0);
  EXPECT_EQ(si.si_signo, SIGTERM);
  EXPECT_EQ(si.si_pid, pid);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGUSR2)) << std::hex << st;
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, SIGUSR1), 0);
  // The handler runs: its own delivery is not stopped for again.
  st = Wait(pid);
  ASSERT_TRUE(WIFEXITED(st)) << std::hex << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Ptrace, SeizeInterruptGroupStopAndListen) {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
  ASSERT_EQ(Ptrace(PTRACE_INTERRUPT, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGTRAP, PTRACE_EVENT_STOP)) << std::hex << st;
  // LISTEN only from a group-stop's EVENT_STOP... an INTERRUPT trap is one.
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  kill(pid, SIGSTOP);
  st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGSTOP)) << std::hex << st;  // signal-delivery-stop
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, SIGSTOP), 0);
  st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGSTOP, PTRACE_EVENT_STOP)) << std::hex << st;  // group-stop
  // The real parent (us, too) sees the group stop with WUNTRACED semantics
  // only once; now LISTEN: stays stopped until SIGCONT, then re-traps.
  ASSERT_EQ(Ptrace(PTRACE_LISTEN, pid, 0, 0), 0);
  int again = 0;
  EXPECT_EQ(waitpid(pid, &again, WNOHANG | __WALL), 0);
  EXPECT_EQ(Trim(StatusLine(pid, "State")).substr(0, 1), "t");
  kill(pid, SIGCONT);
  st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGTRAP, PTRACE_EVENT_STOP)) << std::hex << st;
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGCONT)) << std::hex << st;
  ASSERT_EQ(Ptrace(PTRACE_KILL, pid, 0, 0), 0);
  st = Wait(pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << std::hex << st;
}

TEST(Ptrace, ForkExecAndExitEvents) {
  pid_t pid = fork();
  if (pid == 0) {
    raise(SIGSTOP);
    pid_t c = fork();
    if (c == 0) {
      execl("/bin/sh", "sh", "-c", "exit 7", nullptr);
      _exit(99);
    }
    int s;
    waitpid(c, &s, 0);
    _exit(WIFEXITED(s) ? WEXITSTATUS(s) : 98);
  }
  ASSERT_TRUE(IsStop(Wait(pid, WUNTRACED), SIGSTOP));
  const long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT;
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, opts), 0);
  kill(pid, SIGCONT);
  // First the seize of a stopped task: EVENT_STOP with SIGSTOP; then
  // SIGCONT's delivery.
  int st = Wait(pid);
  ASSERT_TRUE(IsStop(st, SIGSTOP, PTRACE_EVENT_STOP)) << std::hex << st;
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  pid_t grandchild = 0;
  bool fork_event = false, gc_stop = false, exec_event = false, gc_exit_event = false,
       gc_exited = false, exit_event = false;
  for (int i = 0; i < 60; ++i) {
    int s = 0;
    pid_t w = waitpid(-1, &s, __WALL);
    ASSERT_GT(w, 0) << strerror(errno);
    if (w == pid && WIFEXITED(s)) {
      EXPECT_EQ(WEXITSTATUS(s), 7);
      break;
    }
    if (w != pid && !WIFSTOPPED(s)) {
      // The grandchild's end reaches us, its tracer (it is not our child).
      if (w == grandchild) gc_exited = true;
      continue;
    }
    ASSERT_TRUE(WIFSTOPPED(s)) << std::hex << s;
    const int event = s >> 16;
    uint64_t msg = 0;
    Ptrace(PTRACE_GETEVENTMSG, w, 0, reinterpret_cast<uint64_t>(&msg));
    if (w == pid && event == PTRACE_EVENT_FORK) {
      fork_event = true;
      grandchild = static_cast<pid_t>(msg);
    } else if (w != pid && event == PTRACE_EVENT_STOP) {
      gc_stop = true;  // the auto-attached child's first trap
    } else if (w != pid && event == PTRACE_EVENT_EXEC) {
      exec_event = true;
      EXPECT_EQ(static_cast<pid_t>(msg), w);
    } else if (event == PTRACE_EVENT_EXIT) {
      if (w == pid) {
        exit_event = true;
        EXPECT_EQ(msg, 7u << 8);
      } else {
        gc_exit_event = true;
        EXPECT_EQ(msg, 7u << 8);
      }
    }
    // Do not deliver SIGCONT/SIGCHLD stops' signals back: just continue,
    // passing a plain signal on.
    int sig = (event == 0 && WSTOPSIG(s) != SIGTRAP) ? WSTOPSIG(s) : 0;
    if (sig == SIGCONT) sig = 0;
    if (Ptrace(PTRACE_CONT, w, 0, sig) != 0) ADD_FAILURE() << "cont " << w << " " << strerror(errno);
  }
  EXPECT_TRUE(gc_exited);
  EXPECT_TRUE(fork_event);
  EXPECT_TRUE(gc_stop);
  EXPECT_TRUE(exec_event);
  EXPECT_TRUE(gc_exit_event);
  EXPECT_TRUE(exit_event);
  EXPECT_NE(grandchild, 0);
}

TEST(Ptrace, TracerExitDetachesOrKills) {
  for (bool exitkill : {false, true}) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    // A middle process traces its child, then exits.
    pid_t middle = fork();
    if (middle == 0) {
      pid_t c = fork();
      if (c == 0) {
        close(fds[0]);
        for (;;) {
          if (write(fds[1], "x", 1) != 1) _exit(1);
          usleep(2000);
        }
      }
      if (Ptrace(PTRACE_SEIZE, c, 0, exitkill ? PTRACE_O_EXITKILL : 0) != 0) _exit(2);
      if (Ptrace(PTRACE_INTERRUPT, c, 0, 0) != 0) _exit(3);
      int s;
      if (waitpid(c, &s, __WALL) != c || !IsStop(s, SIGTRAP, PTRACE_EVENT_STOP)) _exit(4);
      _exit(0);  // the tracee is left in its stop
    }
    close(fds[1]);
    int st = Wait(middle);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st;
    // Detached: it runs on and writes; killed: the pipe reaches EOF.
    char buf[64];
    int64_t deadline = syscall_test::NowMs() + 5000;
    ssize_t n = 0;
    bool eof = false;
    int got = 0;
    while (syscall_test::NowMs() < deadline) {
      n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) {
        eof = true;
        break;
      }
      got += static_cast<int>(n);
      if (!exitkill && got > 20) break;
    }
    if (exitkill) {
      EXPECT_TRUE(eof) << "an EXITKILL tracee outlived its tracer";
    } else {
      EXPECT_FALSE(eof);
      EXPECT_GT(got, 20);
    }
    close(fds[0]);  // a detached writer dies of SIGPIPE
  }
}

TEST(Ptrace, SingleStep) {
  pid_t pid = TracedChild([] { return 0; });
  ASSERT_TRUE(IsStop(Wait(pid), SIGSTOP));
  user_regs_struct before{};
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&before)), 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Ptrace(PTRACE_SINGLESTEP, pid, 0, 0), 0);
    int st = Wait(pid);
    ASSERT_TRUE(IsStop(st, SIGTRAP)) << std::hex << st;
    user_regs_struct r{};
    ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&r)), 0);
    EXPECT_NE(r.rip, before.rip);
    EXPECT_EQ(r.eflags & 0x100, 0u) << "TF leaked to the tracer";
    before = r;
  }
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int st = Wait(pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st;
}

TEST(Ptrace, SeccompRetTraceStopsForTheTracer) {
  const pid_t me = getpid();
  pid_t pid = TracedChild([me] {
    // getppid is traced (RET_TRACE with data 42); the rest is allowed.
    sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 42),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog fp = {sizeof(prog) / sizeof(prog[0]), prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 10;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) return 11;
    long skipped = syscall(SYS_getppid);  // the tracer skips it: 555
    long real = syscall(SYS_getppid);     // the tracer lets it run
    return (skipped == 555 ? 0 : 1) | (real == me ? 0 : 2);
  });
  ASSERT_TRUE(IsStop(Wait(pid), SIGSTOP));
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP), 0);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
    int st = Wait(pid);
    ASSERT_TRUE(IsStop(st, SIGTRAP, PTRACE_EVENT_SECCOMP)) << std::hex << st;
    uint64_t msg = 0;
    ASSERT_EQ(Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uint64_t>(&msg)), 0);
    EXPECT_EQ(msg, 42u);
    user_regs_struct regs{};
    ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
    EXPECT_EQ(regs.orig_rax, static_cast<uint64_t>(SYS_getppid));
    if (i == 0) {
      regs.orig_rax = static_cast<uint64_t>(-1);
      regs.rax = 555;
      ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uint64_t>(&regs)), 0);
    }
  }
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int st = Wait(pid);
  ASSERT_TRUE(WIFEXITED(st)) << std::hex << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(ProcessVm, ReadvWritevAnotherProcess) {
  static char buf[64] = "the child's buffer";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(fds[1]);
    if (read(fds[0], &c, 1) != 0) _exit(3);
    _exit(strcmp(buf, "written by the parent") == 0 ? 0 : 1);
  }
  close(fds[0]);
  char got[64] = {};
  struct iovec l[2] = {{got, 4}, {got + 4, 60}};
  struct iovec r = {buf, sizeof(buf)};
  EXPECT_EQ(syscall(SYS_process_vm_readv, pid, l, 2, &r, 1, 0), 64);
  EXPECT_STREQ(got, "the child's buffer");
  const char text[] = "written by the parent";
  struct iovec wl = {const_cast<char*>(text), sizeof(text)};
  struct iovec wr = {buf, sizeof(text)};
  EXPECT_EQ(syscall(SYS_process_vm_writev, pid, &wl, 1, &wr, 1, 0),
            static_cast<long>(sizeof(text)));
  // Unmapped remote memory: EFAULT; a partial range: the bytes that moved.
  struct iovec bad = {reinterpret_cast<void*>(8), 8};
  EXPECT_ERRNO(EFAULT, syscall(SYS_process_vm_readv, pid, l, 1, &bad, 1, 0));
  EXPECT_ERRNO(EINVAL, syscall(SYS_process_vm_readv, pid, l, 1, &r, 1, 1));
  EXPECT_ERRNO(ESRCH, syscall(SYS_process_vm_readv, 999999, l, 1, &r, 1, 0));
  close(fds[1]);
  int st = Wait(pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st;
}

}  // namespace
