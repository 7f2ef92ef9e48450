// What SQLite's WAL mode leans on when several processes share one database
// (issue 17): fcntl record locks, OFD locks and flock(2) between processes
// name one file however each process reached it (the same path created by
// racing opens, a rename, a hard link), record-lock ranges split and
// convert, and a MAP_SHARED mapping of a file is the same memory in every
// process, as the file grows and as others write it.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr size_t kPage = 4096;

struct flock Range(short type, off_t start, off_t len) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

// 0 if F_SETLK of the range on `fd` is refused as Linux refuses a conflict.
int ExpectConflict(int fd, short type, off_t start, off_t len, int cmd = F_SETLK) {
  struct flock fl = Range(type, start, len);
  if (fcntl(fd, cmd, &fl) == 0) return 1;
  return errno == EAGAIN || errno == EACCES ? 0 : 2;
}

int TryLock(int fd, short type, off_t start, off_t len, int cmd = F_SETLK) {
  struct flock fl = Range(type, start, len);
  return fcntl(fd, cmd, &fl) == 0 ? 0 : 1;
}

class SharedFileTest : public ::testing::Test {
 protected:
  int OpenRw(const std::string& p) { return open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644); }
  TempDir dir_;
};

// A record lock stays on the file when the file is renamed: a process that
// opens the new name meets it (locks belong to the inode, fcntl(2)).
TEST_F(SharedFileTest, RecordLockFollowsTheFileAcrossARename) {
  std::string a = dir_.Path("a"), b = dir_.Path("b");
  FileDescriptor fd(OpenRw(a));
  ASSERT_OK(fd.get());
  struct flock fl = Range(F_WRLCK, 0, 1);
  ASSERT_OK(fcntl(fd.get(), F_SETLK, &fl));
  ASSERT_OK(rename(a.c_str(), b.c_str()));
  const pid_t parent = getpid();
  int status = RunInChild([&] {
    int mine = open(b.c_str(), O_RDWR);
    if (mine < 0) return 10;
    struct flock q = Range(F_WRLCK, 0, 1);
    if (fcntl(mine, F_GETLK, &q) != 0) return 11;
    if (q.l_type != F_WRLCK || q.l_pid != parent) return 12;
    return ExpectConflict(mine, F_WRLCK, 0, 1);
  });
  EXPECT_EXIT_CODE(status, 0);
}

// The same through a second name of the file (link(2)), for record locks,
// OFD locks and flock(2).
TEST_F(SharedFileTest, LocksHoldThroughAHardLink) {
  std::string a = dir_.Path("a"), b = dir_.Path("b");
  FileDescriptor fd(OpenRw(a));
  ASSERT_OK(fd.get());
  ASSERT_OK(link(a.c_str(), b.c_str()));
  struct flock fl = Range(F_WRLCK, 0, 1);
  ASSERT_OK(fcntl(fd.get(), F_SETLK, &fl));
  struct flock ofd = Range(F_WRLCK, 8, 1);
  ASSERT_OK(fcntl(fd.get(), F_OFD_SETLK, &ofd));
  ASSERT_OK(flock(fd.get(), LOCK_EX));
  int status = RunInChild([&] {
    int mine = open(b.c_str(), O_RDWR);
    if (mine < 0) return 10;
    if (int r = ExpectConflict(mine, F_WRLCK, 0, 1); r != 0) return 20 + r;
    if (int r = ExpectConflict(mine, F_RDLCK, 8, 1, F_OFD_SETLK); r != 0) return 30 + r;
    if (flock(mine, LOCK_SH | LOCK_NB) == 0) return 40;
    return errno == EWOULDBLOCK ? 0 : 41;
  });
  EXPECT_EXIT_CODE(status, 0);
  // In this process too, an OFD lock of another description through the
  // other name conflicts.
  FileDescriptor other(open(b.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_OK(other.get());
  EXPECT_EQ(ExpectConflict(other.get(), F_WRLCK, 8, 1, F_OFD_SETLK), 0);
}

// An OFD lock belongs to its open file description and goes with the last
// close of it (fcntl(2), "Open file description locks"): not with the close
// of one of two fds of it, nor with a forked child's copy.
TEST_F(SharedFileTest, OfdLockGoesWithTheLastCloseOfItsDescription) {
  std::string p = dir_.Path("f");
  int fd = OpenRw(p);
  ASSERT_OK(fd);
  FileDescriptor other(OpenRw(p));
  ASSERT_OK(other.get());
  struct flock fl = Range(F_WRLCK, 0, 10);
  ASSERT_OK(fcntl(fd, F_OFD_SETLK, &fl));
  int dup_fd = dup(fd);
  ASSERT_OK(dup_fd);
  ASSERT_OK(close(fd));
  EXPECT_EQ(ExpectConflict(other.get(), F_WRLCK, 0, 1, F_OFD_SETLK), 0);
  // A child's copy of the fd shares the description: its exit keeps it.
  int status = RunInChild([&] { return close(dup_fd) == 0 ? 0 : 1; });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(ExpectConflict(other.get(), F_WRLCK, 0, 1, F_OFD_SETLK), 0);
  ASSERT_OK(close(dup_fd));
  EXPECT_EQ(TryLock(other.get(), F_WRLCK, 0, 10, F_OFD_SETLK), 0);
}

// Ranges split by an unlock in the middle and converted in part, as seen
// by another process.
TEST_F(SharedFileTest, RecordLockRangesSplitAndConvert) {
  std::string p = dir_.Path("f");
  FileDescriptor fd(OpenRw(p));
  ASSERT_OK(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 100), 0);
  ASSERT_EQ(TryLock(fd.get(), F_UNLCK, 40, 20), 0);   // [0,40) [60,100)
  ASSERT_EQ(TryLock(fd.get(), F_RDLCK, 0, 10), 0);    // [0,10) read
  ASSERT_EQ(TryLock(fd.get(), F_RDLCK, 120, 10), 0);  // [120,130) read
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 125, 0), 0);   // [125,EOF) write
  const pid_t parent = getpid();
  int status = RunInChild([&] {
    int mine = open(p.c_str(), O_RDWR);
    if (mine < 0) return 10;
    if (TryLock(mine, F_WRLCK, 40, 20) != 0) return 11;  // the hole is free
    if (TryLock(mine, F_UNLCK, 40, 20) != 0) return 12;
    if (ExpectConflict(mine, F_WRLCK, 39, 2) != 0) return 13;
    if (ExpectConflict(mine, F_RDLCK, 59, 2) != 0) return 14;
    if (TryLock(mine, F_RDLCK, 0, 10) != 0) return 15;  // read under read
    if (ExpectConflict(mine, F_WRLCK, 5, 1) != 0) return 16;
    if (ExpectConflict(mine, F_RDLCK, 10, 1) != 0) return 17;  // still write
    if (TryLock(mine, F_RDLCK, 120, 5) != 0) return 18;
    if (ExpectConflict(mine, F_RDLCK, 1 << 20, 1) != 0) return 19;
    struct flock q = Range(F_RDLCK, 50, 60);
    if (fcntl(mine, F_GETLK, &q) != 0) return 20;
    if (q.l_type != F_WRLCK || q.l_start != 60 || q.l_len != 40 || q.l_pid != parent) {
      return 21;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A forked child's close of the fd it inherited, or its exit, drops no lock
// of its parent's: record locks are the process's own (not inherited).
TEST_F(SharedFileTest, ChildsCloseKeepsItsParentsRecordLocks) {
  std::string p = dir_.Path("f");
  FileDescriptor fd(OpenRw(p));
  ASSERT_OK(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 1), 0);
  int status = RunInChild([&] {
    if (ExpectConflict(fd.get(), F_WRLCK, 0, 1) != 0) return 1;  // not inherited
    return close(fd.get()) == 0 ? 0 : 2;
  });
  EXPECT_EXIT_CODE(status, 0);
  status = RunInChild([&] {
    int mine = open(p.c_str(), O_RDWR);
    return mine >= 0 ? ExpectConflict(mine, F_WRLCK, 0, 1) : 10;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// Process-shared state of the workers below, in a MAP_SHARED page.
struct Rendezvous {
  pthread_barrier_t barrier;
  std::atomic<int> locked;       // workers whose F_SETLK succeeded this round
  std::atomic<int> open_errors;  // opens that failed (errno in last_errno)
  std::atomic<int> last_errno;
  std::atomic<int> bad_rounds;   // rounds where locked != 1
  std::atomic<int> worst;        // the largest `locked` seen
};

// Several processes open(O_CREAT) one new name at the same moment, as
// SQLite's connections open "db-wal" and "db-shm": none fails (O_CREAT
// without O_EXCL never says EEXIST), and they all opened one file, so
// exactly one of them gets a write lock on it. Repeated with a new name
// each round, since losing the race is a matter of timing.
TEST_F(SharedFileTest, RacingCreatorsOpenOneFile) {
  constexpr int kWorkers = 4;
  constexpr int kRounds = 1000;  // ≈ 1 s in the sandbox
  ArmHangGuard(120);
  void* mem = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED) << ErrnoName(errno);
  auto* r = new (mem) Rendezvous();
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ASSERT_EQ(pthread_barrier_init(&r->barrier, &attr, kWorkers), 0);
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << ErrnoName(errno);
    if (pid != 0) {
      pids.push_back(pid);
      continue;
    }
    for (int round = 0; round < kRounds; ++round) {
      std::string p = dir_.Path("f" + std::to_string(round));
      pthread_barrier_wait(&r->barrier);
      int fd = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        r->open_errors++;
        r->last_errno = errno;
      }
      pthread_barrier_wait(&r->barrier);
      if (fd >= 0 && TryLock(fd, F_WRLCK, 0, 1) == 0) r->locked++;
      pthread_barrier_wait(&r->barrier);
      if (w == 0) {
        int n = r->locked.exchange(0);
        if (n != 1) r->bad_rounds++;
        if (n > r->worst) r->worst = n;
      }
      if (fd >= 0) close(fd);
    }
    _exit(0);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EXIT_CODE(status, 0);
  }
  DisarmHangGuard();
  EXPECT_EQ(r->open_errors.load(), 0) << "last errno " << ErrnoName(r->last_errno.load());
  EXPECT_EQ(r->bad_rounds.load(), 0)
      << "rounds of " << kRounds << " where not exactly one worker got the lock; most: "
      << r->worst.load();
  pthread_barrier_destroy(&r->barrier);
  munmap(mem, kPage);
}

// A MAP_SHARED mapping of a file is the file's memory in every process:
// one made before a fork and inherited, one made by another process after
// the file grew (ftruncate), and the file's pwrite/pread, whichever process
// writes. The shape of SQLite's -shm wal-index, which grows 32 KiB at a
// time and is mapped region by region.
TEST_F(SharedFileTest, SharedMappingsFollowGrowthAndWritesOfOtherProcesses) {
  constexpr size_t kRegion = 8 * kPage;
  std::string p = dir_.Path("shm");
  FileDescriptor fd(OpenRw(p));
  ASSERT_OK(fd.get());
  ASSERT_OK(ftruncate(fd.get(), kRegion));
  auto* first = static_cast<volatile char*>(
      mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(first, MAP_FAILED) << ErrnoName(errno);
  first[0] = 'p';
  int status = RunInChild([&] {
    if (first[0] != 'p') return 1;
    first[1] = 'c';  // the inherited mapping
    int mine = open(p.c_str(), O_RDWR);
    if (mine < 0) return 2;
    if (ftruncate(mine, 3 * kRegion) != 0) return 3;
    auto* second = static_cast<volatile char*>(mmap(nullptr, 2 * kRegion, PROT_READ | PROT_WRITE,
                                                    MAP_SHARED, mine, kRegion));
    if (second == MAP_FAILED) return 4;
    second[5] = 's';
    if (pwrite(mine, "w", 1, 2 * kRegion + 7) != 1) return 5;
    if (second[kRegion + 7] != 'w') return 6;  // pwrite shows in a mapping
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(first[1], 'c');
  auto* later = static_cast<volatile char*>(
      mmap(nullptr, 2 * kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), kRegion));
  ASSERT_NE(later, MAP_FAILED) << ErrnoName(errno);
  EXPECT_EQ(later[5], 's');
  EXPECT_EQ(later[kRegion + 7], 'w');
  char c = 0;
  ASSERT_EQ(pread(fd.get(), &c, 1, kRegion + 5), 1);
  EXPECT_EQ(c, 's');  // a mapping's store shows in pread

  // A mapping longer than the file (SIGBUS past the end) reaches the part
  // another process's ftruncate adds, and sees its stores there.
  auto* wide = static_cast<volatile char*>(
      mmap(nullptr, 4 * kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(wide, MAP_FAILED) << ErrnoName(errno);
  status = RunInChild([&] {
    int mine = open(p.c_str(), O_RDWR);
    if (mine < 0) return 1;
    if (ftruncate(mine, 4 * kRegion) != 0) return 2;
    auto* m = static_cast<volatile char*>(
        mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_SHARED, mine, 3 * kRegion));
    if (m == MAP_FAILED) return 3;
    m[9] = 'g';
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(wide[3 * kRegion + 9], 'g');
  wide[3 * kRegion + 10] = 'h';
  ASSERT_EQ(pread(fd.get(), &c, 1, 3 * kRegion + 10), 1);
  EXPECT_EQ(c, 'h');
  munmap(const_cast<char*>(wide), 4 * kRegion);
  munmap(const_cast<char*>(later), 2 * kRegion);
  munmap(const_cast<char*>(first), kRegion);
}

}  // namespace
}  // namespace syscall_test
