// System V semaphores: semget/semop/semtimedop/semctl as Linux behaves
// (ipc/sem.c): keys and creation flags, atomic multi-operation semop,
// blocking and wakeup, timeouts, EINTR, IPC_RMID waking waiters with EIDRM,
// SEM_UNDO applied at exit, every semctl command, permissions.
#include <errno.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

union Semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *info;
};

// A private set of `n` semaphores, removed at scope end.
class SemSet {
 public:
  explicit SemSet(int n, int mode = 0600) : id_(semget(IPC_PRIVATE, n, IPC_CREAT | mode)) {}
  ~SemSet() {
    if (id_ >= 0) semctl(id_, 0, IPC_RMID);
  }
  int id() const { return id_; }
  int Val(int n) const { return semctl(id_, n, GETVAL); }
  void Set(int n, int v) const {
    Semun u;
    u.val = v;
    ASSERT_EQ(semctl(id_, n, SETVAL, u), 0);
  }

 private:
  int id_;
};

int Op(int id, unsigned short num, short op, short flg = 0) {
  struct sembuf b = {num, op, flg};
  return semop(id, &b, 1);
}

TEST(SysvSem, GetCreatesAndFindsByKey) {
  key_t key = 0x5e770000 + getpid() % 0xffff;
  int id = semget(key, 3, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_GE(id, 0) << ErrnoName(errno);
  EXPECT_EQ(semget(key, 3, 0), id);
  EXPECT_EQ(semget(key, 2, 0600), id);
  EXPECT_EQ(semget(key, 0, 0), id);  // 0: any size
  EXPECT_ERRNO(EINVAL, semget(key, 4, 0));
  EXPECT_ERRNO(EEXIST, semget(key, 3, IPC_CREAT | IPC_EXCL | 0600));
  ASSERT_EQ(semctl(id, 0, IPC_RMID), 0);
  EXPECT_ERRNO(ENOENT, semget(key, 3, 0));
  EXPECT_ERRNO(EINVAL, semctl(id, 0, GETVAL));
}

TEST(SysvSem, GetLimits) {
  EXPECT_ERRNO(EINVAL, semget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
  EXPECT_ERRNO(EINVAL, semget(IPC_PRIVATE, -1, IPC_CREAT | 0600));
  EXPECT_ERRNO(EINVAL, semget(IPC_PRIVATE, 32001, IPC_CREAT | 0600));
  EXPECT_ERRNO(EINVAL, semctl(-1, 0, GETVAL));
}

TEST(SysvSem, NewSetIsZeroAndStat) {
  SemSet s(4, 0640);
  ASSERT_GE(s.id(), 0);
  unsigned short vals[4] = {9, 9, 9, 9};
  Semun u;
  u.array = vals;
  ASSERT_EQ(semctl(s.id(), 0, GETALL, u), 0);
  for (unsigned short v : vals) EXPECT_EQ(v, 0);
  struct semid_ds ds = {};
  u.buf = &ds;
  ASSERT_EQ(semctl(s.id(), 0, IPC_STAT, u), 0);
  EXPECT_EQ(ds.sem_nsems, 4u);
  EXPECT_EQ(ds.sem_perm.mode & 0777, 0640);
  EXPECT_EQ(ds.sem_perm.uid, geteuid());
  EXPECT_EQ(ds.sem_perm.cuid, geteuid());
  EXPECT_EQ(ds.sem_otime, 0);
  EXPECT_GT(ds.sem_ctime, 0);
}

TEST(SysvSem, SetAndGetValues) {
  SemSet s(3);
  unsigned short in[3] = {1, 2, 3}, out[3] = {};
  Semun u;
  u.array = in;
  ASSERT_EQ(semctl(s.id(), 0, SETALL, u), 0);
  u.array = out;
  ASSERT_EQ(semctl(s.id(), 0, GETALL, u), 0);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[2], 3);
  s.Set(1, 7);
  EXPECT_EQ(s.Val(1), 7);
  EXPECT_EQ(semctl(s.id(), 1, GETPID), getpid());
  u.val = 32768;
  EXPECT_ERRNO(ERANGE, semctl(s.id(), 0, SETVAL, u));
  u.val = -1;
  EXPECT_ERRNO(ERANGE, semctl(s.id(), 0, SETVAL, u));
  EXPECT_ERRNO(EINVAL, semctl(s.id(), 3, GETVAL));
  EXPECT_ERRNO(EINVAL, semctl(s.id(), 0, 12345));
}

TEST(SysvSem, OpIsAtomic) {
  SemSet s(2);
  s.Set(0, 1);
  // The second operation cannot go: neither happens.
  struct sembuf ops[2] = {{0, -1, 0}, {1, -1, IPC_NOWAIT}};
  EXPECT_ERRNO(EAGAIN, semop(s.id(), ops, 2));
  EXPECT_EQ(s.Val(0), 1);
  s.Set(1, 1);
  ASSERT_EQ(semop(s.id(), ops, 2), 0);
  EXPECT_EQ(s.Val(0), 0);
  EXPECT_EQ(s.Val(1), 0);
  EXPECT_EQ(semctl(s.id(), 0, GETPID), getpid());
}

TEST(SysvSem, OpErrors) {
  SemSet s(2);
  struct sembuf b = {0, 1, 0};
  EXPECT_ERRNO(EINVAL, semop(s.id(), &b, 0));
  std::vector<struct sembuf> many(501, b);
  EXPECT_ERRNO(E2BIG, semop(s.id(), many.data(), many.size()));
  EXPECT_ERRNO(EFBIG, Op(s.id(), 2, 1));
  EXPECT_ERRNO(EFAULT, semop(s.id(), nullptr, 1));
  s.Set(0, 32767);
  EXPECT_ERRNO(ERANGE, Op(s.id(), 0, 1));
  EXPECT_ERRNO(EAGAIN, Op(s.id(), 0, 0, IPC_NOWAIT));
  EXPECT_ERRNO(EAGAIN, Op(s.id(), 1, -1, IPC_NOWAIT));
}

TEST(SysvSem, BlockedOpWakesOnChangeAndCounts) {
  SemSet s(1);
  pid_t pid = fork();
  if (pid == 0) _exit(Op(s.id(), 0, -2) == 0 ? 0 : 1);
  // Wait until the child waits.
  for (int i = 0; i < 500 && semctl(s.id(), 0, GETNCNT) != 1; ++i) usleep(2000);
  EXPECT_EQ(semctl(s.id(), 0, GETNCNT), 1);
  EXPECT_EQ(semctl(s.id(), 0, GETZCNT), 0);
  ASSERT_EQ(Op(s.id(), 0, 1), 0);  // not enough yet
  usleep(20000);
  EXPECT_EQ(s.Val(0), 1);
  ASSERT_EQ(Op(s.id(), 0, 1), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(s.Val(0), 0);
  EXPECT_EQ(semctl(s.id(), 0, GETNCNT), 0);
  EXPECT_EQ(semctl(s.id(), 0, GETPID), pid);
}

TEST(SysvSem, WaitForZero) {
  SemSet s(1);
  s.Set(0, 1);
  pid_t pid = fork();
  if (pid == 0) _exit(Op(s.id(), 0, 0) == 0 ? 0 : 1);
  for (int i = 0; i < 500 && semctl(s.id(), 0, GETZCNT) != 1; ++i) usleep(2000);
  EXPECT_EQ(semctl(s.id(), 0, GETZCNT), 1);
  ASSERT_EQ(Op(s.id(), 0, -1), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(SysvSem, TimedOpTimesOut) {
  SemSet s(1);
  struct sembuf b = {0, -1, 0};
  struct timespec ts = {0, 50 * 1000 * 1000};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  EXPECT_ERRNO(EAGAIN, semtimedop(s.id(), &b, 1, &ts));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  EXPECT_GE(ms, 45);
  EXPECT_LT(ms, 2000);
  ts.tv_nsec = 1000000000;
  EXPECT_ERRNO(EINVAL, semtimedop(s.id(), &b, 1, &ts));
}

void OnAlarm(int) {}

TEST(SysvSem, SignalInterruptsWithEintrEvenWithSaRestart) {
  SemSet s(1);
  struct sigaction sa = {}, old;
  sa.sa_handler = OnAlarm;
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
  ualarm(50000, 0);
  EXPECT_ERRNO(EINTR, Op(s.id(), 0, -1));
  sigaction(SIGALRM, &old, nullptr);
}

TEST(SysvSem, RemoveWakesWaitersWithEidrm) {
  int id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  pid_t pid = fork();
  if (pid == 0) {
    int r = Op(id, 0, -1);
    _exit(r == -1 && errno == EIDRM ? 0 : 1);
  }
  for (int i = 0; i < 500 && semctl(id, 0, GETNCNT) != 1; ++i) usleep(2000);
  ASSERT_EQ(semctl(id, 0, IPC_RMID), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

TEST(SysvSem, UndoIsAppliedAtExit) {
  SemSet s(2);
  s.Set(1, 5);
  int status = RunInChild([&] {
    if (Op(s.id(), 0, 3, SEM_UNDO) != 0) return 1;
    if (Op(s.id(), 1, -2, SEM_UNDO) != 0) return 2;
    if (Op(s.id(), 0, 1) != 0) return 3;  // no undo for this one
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(s.Val(0), 1);
  EXPECT_EQ(s.Val(1), 5);
  EXPECT_EQ(semctl(s.id(), 0, GETPID), semctl(s.id(), 1, GETPID));
}

TEST(SysvSem, UndoIsClampedAndClearedBySetval) {
  SemSet s(1);
  int status = RunInChild([&] {
    if (Op(s.id(), 0, 2, SEM_UNDO) != 0) return 1;
    // Someone else takes the value down meanwhile: the undo clamps at 0.
    Semun u;
    u.val = 1;
    if (semctl(s.id(), 0, SETVAL, u) != 0) return 2;  // clears our undo
    if (Op(s.id(), 0, 4, SEM_UNDO) != 0) return 3;
    u.val = 0;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(s.Val(0), 1);  // 1 + 4 - 4
}

TEST(SysvSem, InfoAndStatByIndex) {
  SemSet s(2);
  struct seminfo info = {};
  Semun u;
  u.info = &info;
  int max = semctl(0, 0, IPC_INFO, u);
  ASSERT_GE(max, 0);
  EXPECT_EQ(info.semmsl, 32000);
  EXPECT_EQ(info.semopm, 500);
  EXPECT_EQ(info.semvmx, 32767);
  ASSERT_GE(semctl(0, 0, SEM_INFO, u), 0);
  EXPECT_GE(info.semusz, 1);  // sets in use
  EXPECT_GE(info.semaem, 2);  // semaphores in use
  bool found = false;
  struct semid_ds ds;
  u.buf = &ds;
  for (int i = 0; i <= max; ++i) {
    int id = semctl(i, 0, SEM_STAT_ANY, u);
    if (id == s.id()) found = true;
  }
  EXPECT_TRUE(found);
}

TEST(SysvSem, IpcSetAndPermissions) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change uid";
  SemSet s(1, 0600);
  struct semid_ds ds = {};
  Semun u;
  u.buf = &ds;
  ASSERT_EQ(semctl(s.id(), 0, IPC_STAT, u), 0);
  ds.sem_perm.mode = 0644;
  ASSERT_EQ(semctl(s.id(), 0, IPC_SET, u), 0);
  ASSERT_EQ(semctl(s.id(), 0, IPC_STAT, u), 0);
  EXPECT_EQ(ds.sem_perm.mode & 0777, 0644);
  int status = RunInChild([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
    if (semctl(s.id(), 0, GETVAL) != 0) return 1;             // read: others r
    if (Op(s.id(), 0, 1) != -1 || errno != EACCES) return 2;  // alter: no w
    if (semctl(s.id(), 0, IPC_RMID) != -1 || errno != EPERM) return 3;
    if (semget(IPC_PRIVATE, 1, IPC_CREAT | 0600) < 0) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(SysvSem, ProcFiles) {
  SemSet s(3, 0640);
  std::string text = ReadFile("/proc/sysvipc/sem");
  EXPECT_EQ(text.rfind("       key      semid perms      nsems", 0), 0u) << text;
  EXPECT_NE(text.find(" " + std::to_string(s.id()) + "   640          3 "), std::string::npos)
      << text;
  EXPECT_EQ(ReadFile("/proc/sys/kernel/sem"), "32000\t1024000000\t500\t32000\n");
}

}  // namespace
}  // namespace syscall_test
