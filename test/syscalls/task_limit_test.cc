// How many tasks a process may make, and how clone says no: 2000 threads
// that all block at once (the systrap platform once had room for 511 and
// then hung), and RLIMIT_NPROC, which clone(2) and fork(2) enforce per real
// uid with EAGAIN (copy_process()).
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

using syscall_test::RunInChild;

constexpr int kThreads = 2000;

struct Gate {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  int arrived = 0;
  bool open = false;
};

void* WaitAtGate(void* arg) {
  auto* g = static_cast<Gate*>(arg);
  pthread_mutex_lock(&g->mu);
  ++g->arrived;
  pthread_cond_broadcast(&g->cv);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  return nullptr;
}

TEST(TaskLimitTest, TwoThousandThreadsBlockTogetherAndAreJoined) {
  Gate g;
  std::vector<pthread_t> ts(kThreads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(pthread_create(&ts[i], &attr, WaitAtGate, &g), 0) << "thread " << i;
  }
  // Every one of them is alive and blocked at the same time.
  pthread_mutex_lock(&g.mu);
  while (g.arrived < kThreads) pthread_cond_wait(&g.cv, &g.mu);
  g.open = true;
  pthread_cond_broadcast(&g.cv);
  pthread_mutex_unlock(&g.mu);
  for (int i = 0; i < kThreads; ++i) ASSERT_EQ(pthread_join(ts[i], nullptr), 0);
  // And the process still makes threads and processes.
  pthread_t t;
  g.open = true;
  ASSERT_EQ(pthread_create(&t, nullptr, WaitAtGate, &g), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(RunInChild([] { return 3; }), 3 << 8);
}

// A uid nobody else on the machine runs as: natively RLIMIT_NPROC counts
// every task of the real uid, system-wide.
constexpr uid_t kUid = 54321;

void* Sleep(void*) {
  pause();
  return nullptr;
}

TEST(TaskLimitTest, RlimitNprocFailsForkAndCloneWithEagain) {
  int status = RunInChild([] {
    // Unprivileged from here: leaving uid 0 clears the capabilities
    // (CAP_SYS_RESOURCE and CAP_SYS_ADMIN would exempt us).
    if (setgid(kUid) != 0 || setuid(kUid) != 0) return 10;
    // Only the soft limit moves: raising a hard one needs CAP_SYS_RESOURCE.
    rlimit lim;
    if (getrlimit(RLIMIT_NPROC, &lim) != 0 || lim.rlim_max < 4) return 11;
    lim.rlim_cur = 3;
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) return 11;
    // This task is one of the three: two children fit, the third is EAGAIN.
    std::vector<pid_t> kids;
    for (int i = 0; i < 2; ++i) {
      pid_t p = fork();
      if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a failed check
        pause();
        _exit(0);
      }
      if (p < 0) return 12;
      kids.push_back(p);
    }
    if (fork() != -1 || errno != EAGAIN) return 13;
    // Threads count too.
    pthread_t t;
    if (pthread_create(&t, nullptr, Sleep, nullptr) != EAGAIN) return 14;
    // Once a child is reaped there is room again.
    kill(kids[0], SIGKILL);
    if (waitpid(kids[0], nullptr, 0) != kids[0]) return 15;
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) return 16;
    if (waitpid(p, nullptr, 0) != p) return 17;
    // A higher limit lets more in.
    lim.rlim_cur = 4;
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) return 18;
    if (pthread_create(&t, nullptr, Sleep, nullptr) != 0) return 19;
    kill(kids[1], SIGKILL);
    waitpid(kids[1], nullptr, 0);
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(TaskLimitTest, RootIsNotHeldByRlimitNproc) {
  if (getuid() != 0) GTEST_SKIP() << "needs real uid 0";
  int status = RunInChild([] {
    rlimit lim{1, 1};
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) return 10;
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) return 11;
    return waitpid(p, nullptr, 0) == p ? 0 : 12;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

}  // namespace
