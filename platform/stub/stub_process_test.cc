#include "platform/stub/stub_process.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "gtest/gtest.h"

namespace seedvisor::platform::stub {
namespace {

bool HostHasPidfdInfoExit() {  // Linux 6.15
  utsname u;
  int major = 0, minor = 0;
  return uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
         (major > 6 || (major == 6 && minor >= 15));
}

// A process of two threads: the second's tid goes down `report`, then both
// sleep. No core dump: it is to die of SIGSEGV quickly.
pid_t TwoThreads(int report) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_DUMPABLE, 0);
  pthread_t t;
  pthread_create(
      &t, nullptr,
      [](void* fd) -> void* {
        const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
        (void)!write(static_cast<int>(reinterpret_cast<intptr_t>(fd)), &tid, sizeof(tid));
        for (;;) pause();
      },
      reinterpret_cast<void*>(static_cast<intptr_t>(report)));
  for (;;) pause();
}

// A stub that dies of SIGSEGV while one of its threads is still on its way
// out (here a thread this test traces: it stays a zombie until its tracer
// reaps it) died of SIGSEGV: DeathSignal waits for its last thread. It said
// 0 when asked before then, so the guest got SIGKILL (issue 15).
TEST(StubProcessTest, DeathSignalWaitsForTheLastThread) {
  if (!HostHasPidfdInfoExit()) GTEST_SKIP() << "host < 6.15: no PIDFD_INFO_EXIT";
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t pid = TwoThreads(p[1]);
  ASSERT_GT(pid, 0);
  pid_t second = 0;
  ASSERT_EQ(read(p[0], &second, sizeof(second)), static_cast<ssize_t>(sizeof(second)));
  close(p[0]);
  close(p[1]);
  ASSERT_EQ(ptrace(PTRACE_SEIZE, second, nullptr, nullptr), 0);
  StubProcess stub(pid);
  ASSERT_TRUE(stub.ok());
  ASSERT_EQ(syscall(SYS_tgkill, pid, pid, SIGSEGV), 0);
  // The first thread is gone (it is the leader: a zombie) once its stat says so.
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, pid);
  for (int i = 0; i < 5000; ++i) {
    FILE* f = fopen(path, "r");
    char state = 0;
    if (f != nullptr) {
      (void)!fscanf(f, "%*d (%*[^)]) %c", &state);
      fclose(f);
    }
    if (state == 'Z') break;
    usleep(1000);
  }
  std::atomic<bool> asking = false;
  std::atomic<int> sig = -1;
  std::thread ask([&] {
    asking = true;
    sig = stub.DeathSignal(/*wait_ms=*/10000);
  });
  while (!asking) usleep(1000);
  usleep(200 * 1000);
  EXPECT_EQ(sig.load(), -1) << "DeathSignal answered before the last thread exited";
  int ws = 0;
  EXPECT_EQ(waitpid(second, &ws, __WALL), second);  // the tracer's reap
  EXPECT_EQ(waitpid(pid, &ws, 0), pid);             // the parent's (the zygote's, in a sandbox)
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV) << ws;
  ask.join();
  EXPECT_EQ(sig.load(), SIGSEGV);
}

}  // namespace
}  // namespace seedvisor::platform::stub
