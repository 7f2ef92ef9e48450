// Thread pidfds (Linux 6.9): pidfd_open(tid, PIDFD_THREAD) and
// clone(CLONE_PIDFD | CLONE_THREAD) name one thread, not its process. Such
// a pidfd carries PIDFD_THREAD (O_EXCL) in its file flags, polls readable
// once that thread has exited (the process living on), and
// pidfd_send_signal sends to that thread unless a flag widens it.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr unsigned kPidfdThread = O_EXCL;          // PIDFD_THREAD
constexpr unsigned kSignalThreadGroup = 1u << 1;   // PIDFD_SIGNAL_THREAD_GROUP

int PidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, flags));
}
int PidfdSendSignal(int pidfd, int sig, unsigned flags) {
  return static_cast<int>(
      syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// A thread that reports its tid and runs until told to end.
class Worker {
 public:
  Worker() : thread_([this] {
      tid_.store(gettid());
      while (!stop_.load()) usleep(1000);
    }) {
    while (tid_.load() == 0) usleep(100);
  }
  ~Worker() { Join(); }
  pid_t tid() const { return tid_.load(); }
  void Join() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(PidfdThread, OpenNamesAnyThread) {
  Worker w;
  // Not a group leader: ENOENT on this host's Linux (6.18; EINVAL before
  // the pidfs rework).
  EXPECT_ERRNO(ENOENT, PidfdOpen(w.tid(), 0));
  FileDescriptor fd(PidfdOpen(w.tid(), kPidfdThread));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_ACCMODE | O_EXCL), O_RDWR | O_EXCL);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  FileDescriptor leader(PidfdOpen(getpid(), kPidfdThread | O_NONBLOCK));
  ASSERT_GE(leader.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(leader.get(), F_GETFL) & (O_EXCL | O_NONBLOCK),
            O_EXCL | O_NONBLOCK);
  EXPECT_ERRNO(EINVAL, PidfdOpen(w.tid(), kPidfdThread | 1));
  EXPECT_ERRNO(ESRCH, PidfdOpen(4000000, kPidfdThread));
  // A process pidfd's flags say so too.
  FileDescriptor proc(PidfdOpen(getpid(), 0));
  ASSERT_GE(proc.get(), 0);
  EXPECT_EQ(fcntl(proc.get(), F_GETFL) & O_EXCL, 0);
}

TEST(PidfdThread, ReadableOnceTheThreadExits) {
  Worker w;
  FileDescriptor fd(PidfdOpen(w.tid(), kPidfdThread));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  FileDescriptor proc(PidfdOpen(getpid(), 0));
  EXPECT_FALSE(Readable(fd.get()));
  w.Join();
  pollfd p{fd.get(), POLLIN, 5000};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
  EXPECT_FALSE(Readable(proc.get()));  // the process lives on
  // The thread is gone: nothing to signal.
  EXPECT_ERRNO(ESRCH, PidfdSendSignal(fd.get(), 0, 0));
}

std::atomic<pid_t> g_handled_by{0};
void RecordHandler(int) { g_handled_by.store(gettid()); }

TEST(PidfdThread, SendSignalGoesToTheThread) {
  struct sigaction sa {};
  sa.sa_handler = RecordHandler;
  struct sigaction old {};
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  Worker w;
  FileDescriptor fd(PidfdOpen(w.tid(), kPidfdThread));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  // This thread blocks the signal: a process-wide one would wait for the
  // worker anyway, so the thread-directed case is told apart by the
  // pending sets below.
  sigset_t block, prev;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_OK(pthread_sigmask(SIG_BLOCK, &block, &prev));
  g_handled_by.store(0);
  ASSERT_OK(PidfdSendSignal(fd.get(), SIGUSR1, 0));
  for (int i = 0; i < 5000 && g_handled_by.load() == 0; ++i) usleep(1000);
  EXPECT_EQ(g_handled_by.load(), w.tid());
  // PIDFD_SIGNAL_THREAD_GROUP widens it to the process: still handled by
  // the one thread that does not block it.
  g_handled_by.store(0);
  ASSERT_OK(PidfdSendSignal(fd.get(), SIGUSR1, kSignalThreadGroup));
  for (int i = 0; i < 5000 && g_handled_by.load() == 0; ++i) usleep(1000);
  EXPECT_EQ(g_handled_by.load(), w.tid());
  // A thread pidfd of this (blocking) thread: pending for this thread only.
  FileDescriptor self(PidfdOpen(gettid(), kPidfdThread));
  ASSERT_GE(self.get(), 0);
  g_handled_by.store(0);
  ASSERT_OK(PidfdSendSignal(self.get(), SIGUSR1, 0));
  usleep(20000);
  EXPECT_EQ(g_handled_by.load(), 0);  // the worker did not take it
  sigset_t pending;
  ASSERT_OK(sigpending(&pending));
  EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  ASSERT_OK(pthread_sigmask(SIG_SETMASK, &prev, nullptr));  // handled here
  EXPECT_EQ(g_handled_by.load(), gettid());
  ASSERT_OK(sigaction(SIGUSR1, &old, nullptr));
}

std::atomic<int> g_clone_go{0};
int CloneThreadBody(void*) {
  while (g_clone_go.load() == 0) syscall(SYS_sched_yield);
  syscall(SYS_exit, 0);
  return 0;
}

TEST(PidfdThread, CloneThreadWithPidfd) {
  std::vector<char> stack(64 * 1024);
  int pidfd = -1;
  g_clone_go.store(0);
  const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                    CLONE_THREAD | CLONE_SYSVSEM | CLONE_PIDFD;
  int tid = clone(CloneThreadBody, stack.data() + stack.size(), flags, nullptr,
                  &pidfd);
  ASSERT_GT(tid, 0) << ErrnoName(errno);
  ASSERT_GE(pidfd, 0);
  FileDescriptor fd(pidfd);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_EXCL, O_EXCL);  // a thread pidfd
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_FALSE(Readable(fd.get()));
  g_clone_go.store(1);
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
  // CLONE_DETACHED with CLONE_PIDFD is still refused.
  int unused = -1;
  EXPECT_ERRNO(EINVAL, clone(CloneThreadBody, stack.data() + stack.size(),
                             flags | CLONE_DETACHED, nullptr, &unused));
}

}  // namespace
}  // namespace syscall_test
