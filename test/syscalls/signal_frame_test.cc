// A signal frame that cannot be written (an alternate stack that is not
// writable): Linux's signal_setup_done() then calls force_sigsegv(sig),
// which sends SIGSEGV and leaves the interrupted context as it was. A
// SIGSEGV handler on a usable stack runs and the program goes on (LTP's
// signal06); only a failed SIGSEGV frame itself is fatal.
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

volatile sig_atomic_t hup_count;
volatile sig_atomic_t segv_count;
volatile sig_atomic_t segv_code;
volatile sig_atomic_t segv_hup_blocked;

void OnHup(int) { hup_count = hup_count + 1; }

void OnSegv(int, siginfo_t* info, void*) {
  segv_count = segv_count + 1;
  segv_code = info->si_code;
  sigset_t cur;
  sigprocmask(SIG_SETMASK, nullptr, &cur);
  segv_hup_blocked = sigismember(&cur, SIGHUP);
}

// An alternate stack mapped read-only, and SIGHUP's handler on it.
char* ReadOnlyAltStack(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  stack_t ss = {};
  ss.ss_sp = p;
  ss.ss_size = size;
  if (sigaltstack(&ss, nullptr) != 0) return nullptr;
  return static_cast<char*>(p);
}

TEST(SignalFrameTest, UnwritableAltStackBecomesSigsegvAndProgramContinues) {
  int status = RunInChild([] {
    const size_t size = 64 * 1024;
    char* stack = ReadOnlyAltStack(size);
    if (stack == nullptr) return 10;
    struct sigaction segv = {};
    segv.sa_sigaction = OnSegv;
    segv.sa_flags = SA_SIGINFO;  // on the normal stack
    if (sigaction(SIGSEGV, &segv, nullptr) != 0) return 11;
    struct sigaction hup = {};
    hup.sa_handler = OnHup;
    hup.sa_flags = SA_ONSTACK;
    if (sigaction(SIGHUP, &hup, nullptr) != 0) return 12;
    // The FP registers survive both deliveries (the point of signal06).
    volatile double d = 123.456;
    syscall(SYS_tkill, syscall(SYS_gettid), SIGHUP);
    if (d != 123.456) return 13;
    if (hup_count != 0) return 14;   // its frame could not be written
    if (segv_count != 1) return 15;  // force_sigsegv(SIGHUP)
    if (segv_code != SI_KERNEL) return 16;
    // SIGHUP's sa_mask was never applied: only SIGSEGV's own.
    if (segv_hup_blocked) return 17;
    // The handler stays: once the stack is writable SIGHUP is handled.
    if (mprotect(stack, size, PROT_READ | PROT_WRITE) != 0) return 18;
    syscall(SYS_tkill, syscall(SYS_gettid), SIGHUP);
    if (hup_count != 1 || segv_count != 1) return 19;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(SignalFrameTest, UnwritableFrameForSigsegvItselfKills) {
  int status = RunInChild([] {
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    if (ReadOnlyAltStack(64 * 1024) == nullptr) return 10;
    struct sigaction segv = {};
    segv.sa_sigaction = OnSegv;
    segv.sa_flags = SA_SIGINFO | SA_ONSTACK;
    if (sigaction(SIGSEGV, &segv, nullptr) != 0) return 11;
    raise(SIGSEGV);
    return 12;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
}

// The SIGSEGV that replaced an unwritable frame runs with SIGHUP's
// SA_RESETHAND already applied, as get_signal() applies it before the frame.
TEST(SignalFrameTest, ResetHandIsAppliedEvenWhenTheFrameFails) {
  int status = RunInChild([] {
    if (ReadOnlyAltStack(64 * 1024) == nullptr) return 10;
    struct sigaction segv = {};
    segv.sa_sigaction = OnSegv;
    segv.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &segv, nullptr) != 0) return 11;
    struct sigaction hup = {};
    hup.sa_handler = OnHup;
    hup.sa_flags = SA_ONSTACK | SA_RESETHAND;
    if (sigaction(SIGHUP, &hup, nullptr) != 0) return 12;
    raise(SIGHUP);
    if (segv_count != 1 || hup_count != 0) return 13;
    struct sigaction now = {};
    sigaction(SIGHUP, nullptr, &now);
    return now.sa_handler == SIG_DFL ? 0 : 14;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
