// Syscall sites of the form `mov $nr,%eax; syscall` behave the same however
// the platform runs them: natively, trapped, or patched into a jump to the
// stub's fast entry (systrap --systrap-patch, platform/systrap/PATCHING.md).
// Each site below is its own function so that it is one stable address
// that gets hot; every test calls its sites more often than the patcher
// needs (the second trap).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

extern "C" {
long SiteGetppid();
long SiteSigsuspend(const sigset_t* mask, long size);
long SiteRead(long fd, void* buf, long len);
}

// Each site: `mov $nr,%eax; syscall` (b8 imm32 0f 05), as glibc's wrappers.
asm(R"(
        .text
        .globl  SiteGetppid
SiteGetppid:
        mov     $110, %eax
        syscall
        ret
        .globl  SiteSigsuspend
SiteSigsuspend:
        mov     $130, %eax
        syscall
        ret
        .globl  SiteRead
SiteRead:
        mov     $0, %eax
        syscall
        ret
)");

namespace {

constexpr unsigned char kGetppidBytes[] = {0xb8, 0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05};

TEST(SyscallSite, AHotSiteKeepsReturningTheRightAnswer) {
  const long want = getppid();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(SiteGetppid(), want) << i;
}

// The text a program reads back is its own, or (patched) the documented
// jump: `ff 24 25 <abs32>` whose third address byte, where `syscall` was,
// is 0x06. Nothing else.
TEST(SyscallSite, TextReadsBackAsWrittenOrAsTheDocumentedJump) {
  for (int i = 0; i < 10; ++i) SiteGetppid();
  unsigned char b[7];
  std::memcpy(b, reinterpret_cast<const void*>(&SiteGetppid), sizeof(b));
  if (std::memcmp(b, kGetppidBytes, sizeof(b)) == 0) return;
  EXPECT_EQ(b[0], 0xff);
  EXPECT_EQ(b[1], 0x24);
  EXPECT_EQ(b[2], 0x25);
  EXPECT_EQ(b[5], 0x06);
  EXPECT_EQ(b[6], 0x00);
  const uint32_t slot = b[3] | b[4] << 8 | 0x06 << 16;
  EXPECT_GE(slot, 0x60000u);
  EXPECT_LT(slot, 0x70000u);
  EXPECT_EQ(SiteGetppid(), getppid());
}

TEST(SyscallSite, ManyThreadsCallASiteWhileItIsPatched) {
  const long want = getppid();
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        if (SiteGetppid() != want) bad.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(SyscallSite, AForkedChildRunsThePatchedSite) {
  for (int i = 0; i < 10; ++i) SiteGetppid();
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (int i = 0; i < 1000; ++i) {
      if (SiteGetppid() != parent) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(SiteGetppid(), getppid());
}

TEST(SyscallSite, AnExecdImageStartsWithItsOwnText) {
  if (getenv("SYSCALL_SITE_EXEC_CHILD") != nullptr) GTEST_SKIP() << "run by the exec test";
  for (int i = 0; i < 10; ++i) SiteGetppid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("SYSCALL_SITE_EXEC_CHILD", "1", 1);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) _exit(2);
    self[n] = '\0';
    char filter[] = "--gtest_filter=SyscallSite.ExecChild";
    char* argv[] = {self, filter, nullptr};
    execv(self, argv);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// The image exec'd above: its text is fresh from the file before it calls.
TEST(SyscallSite, ExecChild) {
  if (getenv("SYSCALL_SITE_EXEC_CHILD") == nullptr) GTEST_SKIP() << "run by AnExecdImage...";
  EXPECT_EQ(std::memcmp(reinterpret_cast<const void*>(&SiteGetppid), kGetppidBytes, 7), 0);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(SiteGetppid(), getppid());
}

std::atomic<int> alarms{0};
void OnAlarm(int) { alarms.fetch_add(1); }

// A signal that interrupts a blocking call made at a (patched) site runs
// its handler, and the call returns EINTR there (rt_sigsuspend: the alarm
// stays blocked until the call waits, however late it starts).
TEST(SyscallSite, ASignalInterruptsABlockingCallAtTheSite) {
  struct sigaction sa {};
  sa.sa_handler = OnAlarm;
  ASSERT_EQ(sigaction(SIGALRM, &sa, nullptr), 0);
  sigset_t alrm, old, none;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigemptyset(&none);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &alrm, &old), 0);
  for (int i = 0; i < 5; ++i) {
    const int before = alarms.load();
    itimerval it{{0, 0}, {0, 5000}};
    ASSERT_EQ(setitimer(ITIMER_REAL, &it, nullptr), 0);
    EXPECT_EQ(SiteSigsuspend(&none, 8), -EINTR) << i;
    EXPECT_EQ(alarms.load(), before + 1) << i;
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  signal(SIGALRM, SIG_DFL);
}

// With SA_RESTART the interrupted call restarts at its site (the kernel
// moves rip back over `syscall`) and completes with the data.
TEST(SyscallSite, AnInterruptedCallRestartsAtTheSite) {
  struct sigaction sa {};
  sa.sa_handler = OnAlarm;
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGALRM, &sa, nullptr), 0);
  for (int i = 0; i < 5; ++i) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    const int before = alarms.load();
    itimerval it{{0, 0}, {0, 5000}};
    ASSERT_EQ(setitimer(ITIMER_REAL, &it, nullptr), 0);
    std::thread writer([&] {
      sigset_t alrm;
      sigemptyset(&alrm);
      sigaddset(&alrm, SIGALRM);
      pthread_sigmask(SIG_BLOCK, &alrm, nullptr);  // the reader takes it
      usleep(40000);
      EXPECT_EQ(write(p[1], "x", 1), 1);
    });
    char c = 0;
    EXPECT_EQ(SiteRead(p[0], &c, 1), 1) << i;
    EXPECT_EQ(c, 'x');
    writer.join();
    EXPECT_EQ(alarms.load(), before + 1) << i;
    close(p[0]);
    close(p[1]);
  }
  signal(SIGALRM, SIG_DFL);
}

// Threads keep calling a (patched) site while another thread makes its
// text writable and back, which puts the original bytes back under them
// (a thread already in the site's slot finishes its call there): no call
// gets a wrong answer, nothing is killed.
TEST(SyscallSite, ThreadsKeepCallingASiteWhileItIsUnpatched) {
  const long want = getppid();
  const uintptr_t page = reinterpret_cast<uintptr_t>(&SiteGetppid) & ~uintptr_t{4095};
  void* text = reinterpret_cast<void*>(page);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        if (SiteGetppid() != want) bad.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(mprotect(text, 8192, PROT_READ | PROT_WRITE | PROT_EXEC), 0);
    ASSERT_EQ(mprotect(text, 8192, PROT_READ | PROT_EXEC), 0);
    usleep(200);
  }
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(SiteGetppid(), want);
}

// A debugger sees and edits the program's own text, never a patch: when a
// task stops for its tracer the platform puts every site back and patches
// that address space no more (PATCHING.md). The child makes the site hot,
// stops for its parent, which peeks the site, pokes a breakpoint into it,
// catches the child there, takes it out and lets the child finish.
TEST(SyscallSite, ATracerPeeksAndPokesTheOriginalText) {
  const uintptr_t site = reinterpret_cast<uintptr_t>(&SiteGetppid);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const pid_t parent = getppid();
    for (int i = 0; i < 1000; ++i) {
      if (SiteGetppid() != parent) _exit(1);
    }
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(2);
    raise(SIGSTOP);
    if (SiteGetppid() != parent) _exit(3);  // runs into the breakpoint first
    for (int i = 0; i < 1000; ++i) {
      if (SiteGetppid() != parent) _exit(4);
    }
    // Not patched again while traced: its own bytes, as the tracer saw.
    _exit(std::memcmp(reinterpret_cast<const void*>(site), kGetppidBytes, 7) == 0 ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP) << status;
  errno = 0;
  const long word = ptrace(PTRACE_PEEKTEXT, pid, reinterpret_cast<void*>(site), nullptr);
  ASSERT_EQ(errno, 0);
  EXPECT_EQ(std::memcmp(&word, kGetppidBytes, 7), 0) << std::hex << word;
  const long trap = (word & ~0xffL) | 0xcc;
  ASSERT_EQ(ptrace(PTRACE_POKETEXT, pid, reinterpret_cast<void*>(site), trap), 0);
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP) << status;
  user_regs_struct regs{};
  ASSERT_EQ(ptrace(PTRACE_GETREGS, pid, nullptr, &regs), 0);
  EXPECT_EQ(regs.rip, site + 1);
  ASSERT_EQ(ptrace(PTRACE_POKETEXT, pid, reinterpret_cast<void*>(site), word), 0);
  regs.rip = site;
  ASSERT_EQ(ptrace(PTRACE_SETREGS, pid, nullptr, &regs), 0);
  ASSERT_EQ(ptrace(PTRACE_CONT, pid, nullptr, nullptr), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
