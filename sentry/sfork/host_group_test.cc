#include "sentry/sfork/host_group.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"

namespace seedvisor::sentry {
namespace {

using ::testing::HasSubstr;

// 'Z' for a zombie, 0 for a pid that is gone, else its state.
std::vector<pid_t> Sorted(std::vector<pid_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

char StateOf(pid_t pid) {
  char path[40], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (f == nullptr) return 0;
  const size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  return p != nullptr && p[1] == ' ' ? p[2] : 0;
}

void* Block(void*) {
  for (;;) pause();
  return nullptr;
}

// A child in group `pgid` (0: a group of its own) that says it is ready on
// `ready` and blocks. `touch_mib` > 0: it first writes that much memory
// (its exit takes a while to free it), with a second thread.
pid_t StartMember(pid_t pgid, int ready, size_t touch_mib) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, pgid);
    if (touch_mib > 0) {
      const size_t len = touch_mib << 20;
      void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m != MAP_FAILED) memset(m, 1, len);
      pthread_t t;
      pthread_create(&t, nullptr, Block, nullptr);
    }
    char c = 1;
    (void)!write(ready, &c, 1);
    for (;;) pause();
  }
  setpgid(pid, pgid == 0 ? pid : pgid);  // the child does it too: no race
  return pid;
}

// Whether our child `pid` has exited as a whole (all its threads): only
// then does waitid report it.
bool WholeProcessExited(pid_t pid) {
  siginfo_t si{};
  return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

// A child in group `pgid` whose main thread exits while a second thread
// blocks: its leader is a zombie, the process is not.
pid_t StartZombieLeader(pid_t pgid, int ready) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, pgid);
    pthread_t t;
    pthread_create(&t, nullptr, Block, nullptr);
    char c = 1;
    (void)!write(ready, &c, 1);
    syscall(SYS_exit, 0);  // this thread only
  }
  setpgid(pid, pgid);
  return pid;
}

class HostGroupTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pipe(ready_), 0); }
  void TearDown() override {
    for (pid_t p : started_) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    close(ready_[0]);
    close(ready_[1]);
  }
  pid_t Start(pid_t pgid, size_t touch_mib = 0) {
    const pid_t p = StartMember(pgid, ready_[1], touch_mib);
    char c;
    EXPECT_EQ(read(ready_[0], &c, 1), 1);
    started_.push_back(p);
    return p;
  }
  int ready_[2];
  std::vector<pid_t> started_;
};

TEST_F(HostGroupTest, ListsTheLiveMembersOnly) {
  const pid_t leader = Start(0);
  const pid_t a = Start(leader);
  const pid_t b = Start(leader);
  Start(0);  // another group
  EXPECT_EQ(Sorted(LiveGroupMembers(leader)), Sorted({leader, a, b}));
  kill(a, SIGKILL);
  siginfo_t si;
  // Exited, not reaped: a zombie is no live member.
  ASSERT_EQ(waitid(P_PID, a, &si, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(StateOf(a), 'Z');
  EXPECT_EQ(Sorted(LiveGroupMembers(leader)), Sorted({leader, b}));
  EXPECT_THAT(DescribeGroup(leader), HasSubstr(std::to_string(b) + " ("));
}

TEST_F(HostGroupTest, AZombieLeaderWithLiveThreadsIsLive) {
  const pid_t leader = Start(0);
  const pid_t z = StartZombieLeader(leader, ready_[1]);
  started_.push_back(z);
  char c;
  ASSERT_EQ(read(ready_[0], &c, 1), 1);
  for (int i = 0; i < 2000 && StateOf(z) != 'Z'; ++i) usleep(1000);
  ASSERT_EQ(StateOf(z), 'Z');
  ASSERT_FALSE(WholeProcessExited(z));
  EXPECT_EQ(Sorted(LiveGroupMembers(leader)), Sorted({leader, z}));
  ASSERT_TRUE(KillGroupAndWait(leader, MonotonicNow() + absl::Seconds(30)));
  EXPECT_TRUE(WholeProcessExited(z));
  EXPECT_TRUE(WholeProcessExited(leader));
}

TEST_F(HostGroupTest, ReturnsOnceEveryMemberHasExited) {
  const pid_t leader = Start(0);
  // Members whose exit takes a while (memory to free, a second thread):
  // SIGKILL alone returns long before they are gone.
  std::vector<pid_t> members = {leader, Start(leader, 256), Start(leader, 256), Start(leader)};
  const pid_t other = Start(0);
  ASSERT_TRUE(KillGroupAndWait(leader, MonotonicNow() + absl::Seconds(30)));
  for (pid_t p : members) {
    EXPECT_TRUE(WholeProcessExited(p)) << "member " << p << " is still in state " << StateOf(p);
  }
  EXPECT_TRUE(LiveGroupMembers(leader).empty());
  // Another group is untouched.
  const char s = StateOf(other);
  EXPECT_TRUE(s != 'Z' && s != 0) << "state " << s;
}

TEST_F(HostGroupTest, AGroupNobodyBearsIsDoneAtOnce) {
  const pid_t p = Start(0);
  kill(p, SIGKILL);
  waitpid(p, nullptr, 0);
  started_.clear();
  const absl::Duration t0 = MonotonicNow();
  EXPECT_TRUE(KillGroupAndWait(p, t0 + absl::Seconds(30)));
  EXPECT_LT(MonotonicNow() - t0, absl::Seconds(5));
  EXPECT_TRUE(KillGroupAndWait(-1, t0 + absl::Seconds(30)));  // no group: nothing to kill
}

TEST_F(HostGroupTest, WaitsForPidfdsUntilTheDeadline) {
  const pid_t a = Start(0);
  const pid_t b = Start(0);
  auto pidfds = [&] {
    return std::vector<int>{static_cast<int>(syscall(SYS_pidfd_open, a, 0)),
                            static_cast<int>(syscall(SYS_pidfd_open, b, 0))};
  };
  // One still runs: not all gone by the deadline.
  kill(a, SIGKILL);
  EXPECT_FALSE(WaitPidfdsBy(pidfds(), MonotonicNow() + absl::Milliseconds(200)));
  kill(b, SIGKILL);
  EXPECT_TRUE(WaitPidfdsBy(pidfds(), MonotonicNow() + absl::Seconds(30)));
  EXPECT_TRUE(WholeProcessExited(a));
  EXPECT_TRUE(WholeProcessExited(b));
  EXPECT_TRUE(WaitPidfdsBy({}, MonotonicNow()));  // nothing to wait for
}

}  // namespace
}  // namespace seedvisor::sentry
