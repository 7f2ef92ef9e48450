#include "platform/stub/stub_process.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
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

// A copy goes as far as the guest's memory reaches, to the byte: several
// pages in one call, stopping at the first page it cannot touch (one
// process_vm_writev per batch of pages now, one per page before).
TEST(StubProcessTest, CopiesStopAtTheFirstUnreachablePage) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // 20 pages: 0-15 readable and writable, 16 not at all, 17-19 again.
  char* m = static_cast<char*>(
      mmap(nullptr, 20 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  ASSERT_EQ(mprotect(m + 16 * page, page, PROT_NONE), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  ASSERT_GT(pid, 0);
  {
    StubProcess stub(pid);
    ASSERT_TRUE(stub.ok());
    const UserAddr base(reinterpret_cast<uint64_t>(m));
    std::string data(20 * page, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
    // Unaligned, across 15 pages and into the hole: up to the hole exactly.
    Result<size_t> w = stub.Write(UserAddr(base.value() + 100), data.data(), 17 * page);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, 16 * page - 100);
    std::string back(16 * page - 100, '\0');
    Result<size_t> r = stub.Read(UserAddr(base.value() + 100), back.data(), back.size());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, back.size());
    EXPECT_EQ(back, data.substr(0, back.size()));
    // Starting in the hole: nothing at all.
    char c;
    EXPECT_FALSE(stub.Read(UserAddr(base.value() + 16 * page), &c, 1).ok());
    // Past it, and within one page.
    Result<size_t> one = stub.Write(UserAddr(base.value() + 17 * page + 5), "x", 1);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(*one, 1u);
  }  // the stub's destructor kills it
  int ws = 0;
  EXPECT_EQ(waitpid(pid, &ws, 0), pid);
  munmap(m, 20 * page);
}

}  // namespace
}  // namespace seedvisor::platform::stub
