// System V semaphore sets (semget(2), semop(2), semctl(2)) of one IPC
// namespace: ipc/sem.c's behaviour, simply built. A blocked semop waits on
// its set's WaitQueue and re-checks its whole operation on every change
// (all-or-nothing, in order of arrival when both can go); a signal ends it
// with EINTR (SysV calls never restart), a park restarts it unseen.
//
//   SV_ASSIGN_OR_RETURN(int id, ns.sems().Get(t, key, nsems, flags));
//   SV_TRY(ns.sems().Op(t, id, ops, timeout));
#ifndef SEEDVISOR_SENTRY_IPC_SEM_H_
#define SEEDVISOR_SENTRY_IPC_SEM_H_

#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/ipc/ipc_object.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

// Linux's defaults (/proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI).
inline constexpr int kSemMsl = 32000, kSemMns = 1024000000, kSemOpm = 500, kSemMni = 32000;
inline constexpr int kSemVmx = 32767, kSemAem = kSemVmx;

struct GuestSembuf {
  uint16_t sem_num;
  int16_t sem_op;
  int16_t sem_flg;
};
static_assert(sizeof(GuestSembuf) == 6);

struct SemSet {
  struct Sem {
    int val = 0;
    IpcPid pid;    // sempid: the last process that changed or waited on it
    int ncnt = 0;  // waiting for the value to increase
    int zcnt = 0;  // waiting for zero
  };
  IpcPerm perm;
  std::vector<Sem> sems;
  int64_t otime = 0, ctime = 0;
  WaitQueue waiters;
};

class SemRegistry : public IpcFamily<SemSet> {
 public:
  SemRegistry() : IpcFamily(kSemMni) {}
  // semget(2).
  Result<int> Get(Task &t, int32_t key, int nsems, int flags);
  // semop(2)/semtimedop(2); `timeout` relative, or null.
  Status Op(Task &t, int id, std::vector<GuestSembuf> ops, const timespec *timeout);
  // semctl(2); `arg` is the union semun (a value or a guest pointer).
  Result<uint64_t> Ctl(Task &t, int id, int semnum, int cmd, uint64_t arg);
  // At the exit of process `tgid` (`pid`: its ids): its SEM_UNDO
  // adjustments are applied (exit_sem()), each clamped to the semaphore's
  // range.
  void ExitUndo(int tgid, const IpcPid &pid);
  // Whether process `tgid` has SEM_UNDO adjustments (an undo list, for
  // kcmp(KCMP_SYSVSEM)).
  bool HasUndo(int tgid);
  // /proc/sysvipc/sem.
  std::string ProcText();

 private:
  // Tries `ops` on `s` at once: 0 done, EAGAIN if it must wait (`*blocker`
  // is the operation it waits on), or another errno.
  int TryOps(SemSet &s, const std::vector<GuestSembuf> &ops, int tgid, const IpcPid &pid,
             size_t *blocker);
  void RemoveLocked(SemSet &s);

  // SEM_UNDO adjustments by process, then semaphore set id.
  std::map<int, std::map<int, std::vector<int>>> undo_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_IPC_SEM_H_
