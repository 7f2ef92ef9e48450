// POSIX record locks (fcntl F_SETLK, F_SETLKW, F_GETLK) between processes:
// which lock F_GETLK reports, how one owner's locks merge and split, and
// EDEADLK for a wait that would close a cycle.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int Lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fcntl(fd, cmd, &fl);
}

// F_GETLK of a write lock on [start, start+len) asked by a child process.
struct flock TestInChild(int fd, off_t start, off_t len) {
  int p[2];
  struct flock out = {};
  if (pipe(p) != 0) return out;
  pid_t pid = fork();
  if (pid == 0) {
    struct flock q = {};
    q.l_type = F_WRLCK;
    q.l_whence = SEEK_SET;
    q.l_start = start;
    q.l_len = len;
    if (fcntl(fd, F_GETLK, &q) != 0) q.l_type = -1;
    _exit(write(p[1], &q, sizeof(q)) == sizeof(q) ? 0 : 1);
  }
  close(p[1]);
  if (read(p[0], &out, sizeof(out)) != sizeof(out)) out.l_type = -2;
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return out;
}

class RecordLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(path_, std::string(64, 'x')));
    fd_ = FileDescriptor(open(path_.c_str(), O_RDWR));
    ASSERT_GE(fd_.get(), 0);
  }
  void ExpectConflict(off_t start, off_t len, short type, off_t at, off_t n) {
    SCOPED_TRACE("F_GETLK from " + std::to_string(start));
    struct flock q = TestInChild(fd_.get(), start, len);
    EXPECT_EQ(q.l_type, type);
    if (type == F_UNLCK) return;
    EXPECT_EQ(q.l_start, at);
    EXPECT_EQ(q.l_len, n);
    EXPECT_EQ(q.l_pid, getpid());
  }
  TempDir dir_;
  std::string path_ = dir_.Path("f");
  FileDescriptor fd_;
};

// An owner's locks are kept by start: F_GETLK reports the first one that
// conflicts, not the one taken first.
TEST_F(RecordLockTest, GetlkReportsTheLowestConflictingLock) {
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_WRLCK, 10, 5));
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_RDLCK, 1, 5));
  ExpectConflict(0, 0, F_RDLCK, 1, 5);
  ExpectConflict(6, 0, F_WRLCK, 10, 5);
  ExpectConflict(15, 0, F_UNLCK, 0, 0);
}

// Locks of one type that touch or overlap merge; a lock of the other type
// takes its range from them.
TEST_F(RecordLockTest, OneOwnersLocksMergeAndSplit) {
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_RDLCK, 5, 5));
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_RDLCK, 10, 5));
  ExpectConflict(0, 0, F_RDLCK, 5, 10);
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_UNLCK, 0, 0));

  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_WRLCK, 10, 5));
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_RDLCK, 5, 6));
  ExpectConflict(0, 0, F_RDLCK, 5, 6);
  ExpectConflict(11, 0, F_WRLCK, 11, 4);
  // Unlocking the middle of a lock leaves its two ends.
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_UNLCK, 0, 0));
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_WRLCK, 0, 20));
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_UNLCK, 5, 5));
  ExpectConflict(0, 0, F_WRLCK, 0, 5);
  ExpectConflict(5, 0, F_WRLCK, 10, 10);
  ExpectConflict(5, 5, F_UNLCK, 0, 0);
}

void OnAlarm(int) {}

// Two processes each holding a byte and waiting for the other's: the wait
// that closes the cycle is EDEADLK (whichever of the two comes second),
// and the other then gets its lock.
TEST_F(RecordLockTest, WaitClosingACycleIsEDEADLK) {
  ASSERT_OK(Lock(fd_.get(), F_SETLK, F_WRLCK, 0, 1));
  int ready[2];
  ASSERT_OK(pipe(ready));
  const int fd = fd_.get();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);  // without detection both would wait forever
    if (Lock(fd, F_SETLK, F_WRLCK, 1, 1) != 0) _exit(10);
    if (write(ready[1], "x", 1) != 1) _exit(11);
    if (Lock(fd, F_SETLKW, F_WRLCK, 0, 1) == 0) _exit(0);
    _exit(errno == EDEADLK ? 1 : 12);
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  struct sigaction sa = {}, old;
  sa.sa_handler = OnAlarm;  // no SA_RESTART: the wait ends with EINTR
  ASSERT_OK(sigaction(SIGALRM, &sa, &old));
  alarm(10);
  const int r = Lock(fd, F_SETLKW, F_WRLCK, 1, 1);
  const int err = errno;
  if (r != 0) ASSERT_OK(Lock(fd, F_SETLK, F_UNLCK, 0, 1));  // let the child have it
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  alarm(0);
  sigaction(SIGALRM, &old, nullptr);
  ASSERT_TRUE(WIFEXITED(status)) << "child wait status " << status;
  if (r == 0) {
    EXPECT_EQ(WEXITSTATUS(status), 1) << "the child's wait closed the cycle";
  } else {
    EXPECT_EQ(err, EDEADLK) << ErrnoName(err);
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
}

}  // namespace
}  // namespace syscall_test
