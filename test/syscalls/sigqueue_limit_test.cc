// RLIMIT_SIGPENDING (__sigqueue_alloc(), __send_signal_locked()): the
// signals queued for one user are bounded by the target's limit. Past it a
// real-time signal from sigqueue(3) or tgkill(2) is EAGAIN, one from kill(2)
// is still pending but without its siginfo (SI_USER, pid 0), and a
// standard signal from kill(2) is queued anyway (LTP tgkill02).
#include <linux/capability.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(SigqueueLimit, RealTimeSignalsPastRlimitSigpending) {
  if (!HaveCap(CAP_SETUID)) GTEST_SKIP() << "needs CAP_SETUID for a user of its own";
  int status = RunInChild([] {
    // A user nothing else runs as: the count is per user, host-wide natively.
    const uid_t uid = 41000 + getpid() % 20000;
    rlimit four = {4, 4};
    if (setrlimit(RLIMIT_SIGPENDING, &four) != 0) return 1;
    if (setresuid(uid, uid, uid) != 0) return 2;
    const int rt = SIGRTMIN + 1, rt2 = SIGRTMIN + 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, rt);
    sigaddset(&set, rt2);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return 3;
    for (int i = 0; i < 4; ++i) {
      if (sigqueue(getpid(), rt, sigval{.sival_int = i}) != 0) return 10 + i;
    }
    if (sigqueue(getpid(), rt, sigval{.sival_int = 4}) != -1 || errno != EAGAIN) return 4;
    if (syscall(SYS_tgkill, getpid(), gettid(), rt) != -1 || errno != EAGAIN) return 5;
    if (kill(getpid(), rt2) != 0) return 6;      // pending, its siginfo lost
    if (kill(getpid(), SIGUSR1) != 0) return 7;  // a standard signal: queued
    timespec zero = {0, 0};
    siginfo_t si;
    // Lowest number first: the standard one, then the queue, then rt2.
    if (sigtimedwait(&set, &si, &zero) != SIGUSR1 || si.si_pid != getpid()) return 40;
    for (int i = 0; i < 4; ++i) {
      if (sigtimedwait(&set, &si, &zero) != rt) return 20 + i;
      if (si.si_code != SI_QUEUE || si.si_value.sival_int != i) return 30 + i;
    }
    if (sigtimedwait(&set, &si, &zero) != rt2) return 8;
    if (si.si_code != SI_USER || si.si_pid != 0) return 9;
    if (sigtimedwait(&set, &si, &zero) != -1 || errno != EAGAIN) return 42;
    // The queue is empty again: sigqueue works.
    if (sigqueue(getpid(), rt, sigval{.sival_int = 5}) != 0) return 41;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
