// Shared (non-FUTEX_PRIVATE_FLAG) futexes between processes: MAP_SHARED
// memory mapped at different addresses, and shared anonymous memory across
// fork. Also the xattr calls' "no attributes" answers callers rely on.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

long Futex(void* addr, int op, uint32_t val, const timespec* ts = nullptr) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

// The child waits on the word, the parent wakes it through its own mapping.
void WaitInChildWakeInParent(uint32_t* parent_word, uint32_t* child_word) {
  pid_t pid = fork();
  if (pid == 0) {
    timespec ts{10, 0};
    long r = Futex(child_word, FUTEX_WAIT, 0, &ts);
    _exit(r == 0 || (r == -1 && errno == EAGAIN) ? (*child_word == 1 ? 0 : 2) : 1);
  }
  usleep(50000);
  __atomic_store_n(parent_word, 1, __ATOMIC_SEQ_CST);
  long woken = 0;
  for (int i = 0; i < 200 && woken == 0; ++i) {
    woken = Futex(parent_word, FUTEX_WAKE, 1);
    if (woken == 0) usleep(5000);
  }
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
}

TEST(SharedFutexTest, AnonymousSharedAcrossFork) {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* w = static_cast<uint32_t*>(p);
  *w = 0;
  WaitInChildWakeInParent(w, w);
  munmap(p, 4096);
}

TEST(SharedFutexTest, FileMappedAtDifferentAddresses) {
  const char* d = getenv("TEST_TMPDIR");
  std::string path = std::string(d ? d : "/tmp") + "/futex-" + std::to_string(getpid());
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  // Two mappings of the same page at different addresses.
  void* a = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  void* b = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
  ASSERT_NE(a, MAP_FAILED);
  ASSERT_NE(b, MAP_FAILED);
  auto* wa = reinterpret_cast<uint32_t*>(static_cast<char*>(a) + 4096 + 64);
  auto* wb = reinterpret_cast<uint32_t*>(static_cast<char*>(b) + 64);
  ASSERT_NE(static_cast<void*>(wa), static_cast<void*>(wb));
  *wa = 0;
  WaitInChildWakeInParent(wa, wb);
  munmap(a, 8192);
  munmap(b, 4096);
  close(fd);
  unlink(path.c_str());
}

TEST(SharedFutexTest, PrivateWakeDoesNotReachOtherProcess) {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* w = static_cast<uint32_t*>(p);
  *w = 0;
  pid_t pid = fork();
  if (pid == 0) {
    timespec ts{0, 300 * 1000000};
    long r = Futex(w, FUTEX_WAIT, 0, &ts);
    _exit(r == -1 && errno == ETIMEDOUT ? 0 : 1);
  }
  usleep(50000);
  // A private key is per address space: the child's shared wait is not it.
  EXPECT_EQ(Futex(w, FUTEX_WAKE_PRIVATE, 1), 0);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  munmap(p, 4096);
}

// The other direction: a shared wake (keyed by the shared page) does not
// reach a private waiter (keyed by its own address space), even though both
// processes map the same page.
TEST(SharedFutexTest, SharedWakeDoesNotReachPrivateWaiter) {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* w = static_cast<uint32_t*>(p);
  *w = 0;
  pid_t pid = fork();
  if (pid == 0) {
    timespec ts{0, 300 * 1000000};
    long r = Futex(w, FUTEX_WAIT_PRIVATE, 0, &ts);
    _exit(r == -1 && errno == ETIMEDOUT ? 0 : 1);
  }
  usleep(50000);
  EXPECT_EQ(Futex(w, FUTEX_WAKE, 1), 0);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  munmap(p, 4096);
}

TEST(XattrTest, MissingAttributesAndPaths) {
  char buf[64];
  EXPECT_ERRNO(ENOENT, getxattr("/nonexistent/x", "user.a", buf, sizeof(buf)));
  EXPECT_ERRNO(ENOENT, listxattr("/nonexistent/x", buf, sizeof(buf)));
  EXPECT_ERRNO(ENODATA, getxattr("/proc/self/exe", "user.seedvisor-none", buf, sizeof(buf)));
  EXPECT_ERRNO(EBADF, fgetxattr(-1, "user.a", buf, sizeof(buf)));
  EXPECT_GE(listxattr("/", buf, sizeof(buf)), 0);
}

}  // namespace
}  // namespace syscall_test
