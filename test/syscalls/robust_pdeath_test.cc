// Robust futexes released when their owner thread dies (EOWNERDEAD for the
// next locker) and prctl(PR_SET_PDEATHSIG) delivery when the parent exits.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

pthread_mutex_t g_robust;

void* LockAndExit(void*) {
  pthread_mutex_lock(&g_robust);
  return nullptr;  // exits holding the lock
}

TEST(RobustFutexTest, OwnerDeathGivesEownerdead) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ASSERT_EQ(pthread_mutex_init(&g_robust, &attr), 0);
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, LockAndExit, nullptr), 0);
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(pthread_mutex_lock(&g_robust), EOWNERDEAD);
  EXPECT_EQ(pthread_mutex_consistent(&g_robust), 0);
  EXPECT_EQ(pthread_mutex_unlock(&g_robust), 0);
}

std::atomic<bool> g_owner_locked{false};

void* LockSleepExit(void*) {
  pthread_mutex_lock(&g_robust);
  g_owner_locked = true;
  usleep(100000);
  return nullptr;
}

TEST(RobustFutexTest, BlockedWaiterIsWoken) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ASSERT_EQ(pthread_mutex_init(&g_robust, &attr), 0);
  pthread_t th;
  g_owner_locked = false;
  ASSERT_EQ(pthread_create(&th, nullptr, LockSleepExit, nullptr), 0);
  // The owner holds the lock before we ask for it (a fixed sleep here lost
  // the race at load 16: the lock was still free).
  while (!g_owner_locked) usleep(1000);
  // Blocks in FUTEX_WAIT until the owner's death releases the lock.
  EXPECT_EQ(pthread_mutex_lock(&g_robust), EOWNERDEAD);
  pthread_mutex_consistent(&g_robust);
  pthread_mutex_unlock(&g_robust);
  pthread_join(th, nullptr);
}

TEST(PdeathsigTest, SentWhenParentExits) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  // Our child is the "parent"; its child asks for SIGUSR1 on parent death
  // and reports what it got through the pipe.
  int st = RunInChild([&] {
    pid_t gc = fork();
    if (gc == 0) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      sigprocmask(SIG_BLOCK, &set, nullptr);
      if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0) _exit(1);
      int got = 0;
      if (prctl(PR_GET_PDEATHSIG, &got) != 0 || got != SIGUSR1) _exit(2);
      (void)!write(p[1], "r", 1);  // ready
      timespec ts{10, 0};
      siginfo_t info;
      char c = sigtimedwait(&set, &info, &ts) == SIGUSR1 ? 'y' : 'n';
      (void)!write(p[1], &c, 1);
      _exit(0);
    }
    char c;
    (void)!read(p[0], &c, 1);
    return 0;  // the parent exits; the grandchild must get SIGUSR1
  });
  EXPECT_EXIT_CODE(st, 0);
  close(p[1]);
  char got = 0;  // the "ready" byte went to the child
  ASSERT_EQ(read(p[0], &got, 1), 1);
  EXPECT_EQ(got, 'y');
  close(p[0]);
  EXPECT_ERRNO(EINVAL, prctl(PR_SET_PDEATHSIG, 1000));
}

// The parent "dies" for PR_SET_PDEATHSIG when the thread that forked the
// child exits, though the parent process lives on (prctl(2): "the parent
// thread"; forget_original_parent()).
TEST(PdeathsigTest, SentWhenParentThreadExits) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = -1;
  std::thread th([&] {
    child = fork();
    if (child == 0) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      sigprocmask(SIG_BLOCK, &set, nullptr);
      if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0) _exit(1);
      (void)!write(p[1], "r", 1);
      timespec ts{10, 0};
      siginfo_t info;
      _exit(sigtimedwait(&set, &info, &ts) == SIGUSR1 && info.si_pid == getppid() ? 0 : 2);
    }
    char c;
    (void)!read(p[0], &c, 1);  // the thread ends once the child is ready
  });
  th.join();
  ASSERT_GT(child, 0);
  int st;
  ASSERT_EQ(waitpid(child, &st, 0), child);  // still ours
  EXPECT_EXIT_CODE(st, 0);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace syscall_test
