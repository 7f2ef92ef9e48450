// System V IPC's pids (shm_cpid and shm_lpid, msg_lspid and msg_lrpid,
// sempid) name a process as it was: ipc/shm.c, msg.c and sem.c keep a
// reference to its struct pid and show pid_vnr() of it (IPC_STAT,
// GETPID) or pid_nr_ns() in the reader's namespace (/proc/sysvipc). The
// struct pid keeps its numbers after the process is reaped (free_pid()
// frees them for reuse, not the struct), so a reaped process still shows
// the number it had, in every namespace it had one in, also once that
// number names another process.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Ids {
  int shm, msq, sem;
};

// The caller makes a segment, a queue and a semaphore set and uses each:
// it is their creator (cpid), last attacher (lpid), last sender and
// receiver (lspid, lrpid) and the semaphore's last changer (sempid).
bool MakeAndUse(Ids* ids) {
  ids->shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ids->msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  ids->sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  if (ids->shm < 0 || ids->msq < 0 || ids->sem < 0) return false;
  void* at = shmat(ids->shm, nullptr, 0);
  if (at == reinterpret_cast<void*>(-1) || shmdt(at) != 0) return false;
  struct {
    long type;
    char text[1];
  } m = {1, {'x'}};
  if (msgsnd(ids->msq, &m, 1, 0) != 0 || msgrcv(ids->msq, &m, 1, 0, 0) != 1) return false;
  struct sembuf op = {0, 1, 0};
  return semop(ids->sem, &op, 1) == 0;
}

// 0 if every pid of `ids` reads `want` to the caller, through IPC_STAT,
// GETPID and /proc/sysvipc; otherwise which one did not.
int CheckPids(const Ids& ids, int want) {
  struct shmid_ds s;
  if (shmctl(ids.shm, IPC_STAT, &s) != 0) return 10;
  if (s.shm_cpid != want) return 11;
  if (s.shm_lpid != want) return 12;
  struct msqid_ds q;
  if (msgctl(ids.msq, IPC_STAT, &q) != 0) return 13;
  if (q.msg_lspid != want) return 14;
  if (q.msg_lrpid != want) return 15;
  if (semctl(ids.sem, 0, GETPID) != want) return 16;
  const std::string w = std::to_string(want);
  std::vector<std::string> sl = LineWith("/proc/sysvipc/shm", 1, std::to_string(ids.shm));
  if (sl.size() < 6 || sl[4] != w || sl[5] != w) return 17;  // cpid lpid
  std::vector<std::string> ql = LineWith("/proc/sysvipc/msg", 1, std::to_string(ids.msq));
  if (ql.size() < 7 || ql[5] != w || ql[6] != w) return 18;  // lspid lrpid
  return 0;
}

// A process in a pid namespace of the test's own (id 2 there) makes and
// uses the objects and is reaped; its namespace's init still sees 2 as all
// of their pids, also once it gives id 2 to another process; the test,
// outside, sees the id the process had here, before and after its reap.
TEST(SysvPidTest, AReapedProcessKeepsTheIdsItHad) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int up[2], hold[2];
  ASSERT_EQ(pipe(up), 0);
  ASSERT_EQ(pipe(hold), 0);
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    close(up[0]);
    close(hold[1]);
    int mid[2];
    if (pipe(mid) != 0) _exit(1);
    const pid_t user = fork();
    if (user == 0) {
      Ids ids{-1, -1, -1};
      const bool ok = MakeAndUse(&ids);
      if (write(up[1], &ids, sizeof(ids)) != sizeof(ids) || !ok) _exit(1);
      if (write(mid[1], &ids, sizeof(ids)) != sizeof(ids)) _exit(1);
      char b;
      (void)!read(hold[0], &b, 1);  // until the test has seen it live
      _exit(0);
    }
    close(hold[0]);
    close(up[1]);
    Ids ids;
    if (read(mid[0], &ids, sizeof(ids)) != sizeof(ids)) _exit(2);
    if (user != 2 || WaitCode(user) != 0) _exit(3);
    if (int r = CheckPids(ids, 2); r != 0) _exit(r);  // reaped
    // Its id given to another process: still the reaped one's.
    int park[2];
    if (pipe(park) != 0) _exit(4);
    const pid_t other = ForkAt(2);
    if (other == 0) {
      close(park[1]);
      char b;
      (void)!read(park[0], &b, 1);
      _exit(0);
    }
    if (other != 2) _exit(5);
    const int r = CheckPids(ids, 2);
    close(park[1]);
    WaitCode(other);
    _exit(r == 0 ? 0 : 20 + r);
  }
  close(up[1]);
  close(hold[0]);
  Ids ids{-1, -1, -1};
  const bool got = read(up[0], &ids, sizeof(ids)) == static_cast<ssize_t>(sizeof(ids));
  close(up[0]);
  struct shmid_ds live {};
  const int stat = got ? shmctl(ids.shm, IPC_STAT, &live) : -1;
  const int stat_errno = errno;
  close(hold[1]);
  const int code = WaitCode(init);
  const int outside = got ? CheckPids(ids, live.shm_cpid) : -1;
  if (got) {
    shmctl(ids.shm, IPC_RMID, nullptr);
    msgctl(ids.msq, IPC_RMID, nullptr);
    semctl(ids.sem, 0, IPC_RMID);
  }
  ASSERT_TRUE(got && ids.sem >= 0) << "the process in the namespace could not make the objects";
  ASSERT_EQ(stat, 0) << ErrnoName(stat_errno);
  // 1x: the init's view once the process was reaped; 2x: once its id was
  // given to another (CheckPids says which pid differed).
  EXPECT_EQ(code, 0);
  EXPECT_GT(live.shm_cpid, 0);
  EXPECT_NE(live.shm_cpid, init);
  EXPECT_EQ(outside, 0) << "the test's view after the reap (want " << live.shm_cpid << ")";
}

}  // namespace
}  // namespace syscall_test
