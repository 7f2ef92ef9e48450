#include "sentry/ipc/sem.h"

#include <sys/sem.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

// struct semid64_ds and struct seminfo on x86-64.
struct GuestSemidDs {
  GuestIpcPerm perm;
  int64_t otime;
  uint64_t unused1;
  int64_t ctime;
  uint64_t unused2;
  uint64_t nsems;
  uint64_t unused3, unused4;
};
static_assert(sizeof(GuestSemidDs) == 104);

struct GuestSeminfo {
  int semmap, semmni, semmns, semmnu, semmsl, semopm, semume, semusz, semvmx, semaem;
};
static_assert(sizeof(GuestSeminfo) == 40);

// A blocked semop that ends for a signal: EINTR (SysV calls are never
// restarted, ipc/sem.c), unless the task was only parked for a seed.
Errno Interrupted(Task &t) { return Errno(t.ParkInterrupted() ? kERESTARTNOINTR : EINTR); }

}  // namespace

Result<int> SemRegistry::Get(Task &t, int32_t key, int nsems, int flags) {
  if (nsems < 0 || nsems > kSemMsl) return Errno(EINVAL);
  std::lock_guard l(mu_);
  auto check = [&](SemSet &s) -> Status {
    if (nsems > static_cast<int>(s.sems.size())) return Errno(EINVAL);
    return {};
  };
  auto make = [&]() -> Result<std::shared_ptr<SemSet>> {
    if (nsems == 0) return Errno(EINVAL);
    int64_t total = nsems;
    reg_.ForEach([&](int, SemSet &s) { total += static_cast<int64_t>(s.sems.size()); });
    if (total > kSemMns) return Errno(ENOSPC);
    auto s = std::make_shared<SemSet>();
    s->sems.resize(static_cast<size_t>(nsems));
    s->ctime = IpcNow();
    return s;
  };
  SV_ASSIGN_OR_RETURN(auto set, reg_.GetOrCreate(t.creds(), key, flags, check, make));
  return set->perm.id;
}

int SemRegistry::TryOps(SemSet &s, const std::vector<GuestSembuf> &ops, int tgid,
                        const IpcPid &pid, size_t *blocker) {
  std::vector<int> vals(s.sems.size());
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = s.sems[i].val;
  std::vector<int> *adj = nullptr;
  auto pit = undo_.find(tgid);
  if (pit != undo_.end()) {
    auto sit = pit->second.find(s.perm.id);
    if (sit != pit->second.end()) adj = &sit->second;
  }
  std::vector<int> adjs = adj ? *adj : std::vector<int>(s.sems.size(), 0);
  for (size_t i = 0; i < ops.size(); ++i) {
    const GuestSembuf &op = ops[i];
    int &v = vals[op.sem_num];
    if (op.sem_op == 0) {
      if (v != 0) {
        *blocker = i;
        return EAGAIN;
      }
      continue;
    }
    int nv = v + op.sem_op;
    if (nv < 0) {
      *blocker = i;
      return EAGAIN;
    }
    if (nv > kSemVmx) return ERANGE;
    if (op.sem_flg & SEM_UNDO) {
      int u = adjs[op.sem_num] - op.sem_op;
      if (u < -kSemAem - 1 || u > kSemAem) return ERANGE;
      adjs[op.sem_num] = u;
    }
    v = nv;
  }
  bool undo = false;
  for (size_t i = 0; i < s.sems.size(); ++i) s.sems[i].val = vals[i];
  for (const GuestSembuf &op : ops) {
    s.sems[op.sem_num].pid = pid;
    undo |= (op.sem_flg & SEM_UNDO) != 0;
  }
  if (undo) undo_[tgid][s.perm.id] = std::move(adjs);
  s.otime = IpcNow();
  return 0;
}

Status SemRegistry::Op(Task &t, int id, std::vector<GuestSembuf> ops, const timespec *timeout) {
  timespec deadline{};
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L) {
      return Errno(EINVAL);
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout->tv_sec;
    deadline.tv_nsec += timeout->tv_nsec;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  unsigned max_num = 0;
  bool alter = false;
  for (const GuestSembuf &op : ops) {
    max_num = std::max<unsigned>(max_num, op.sem_num);
    alter |= op.sem_op != 0;
  }
  std::unique_lock l(mu_);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SemSet> s, reg_.Get(id));
  if (max_num >= s->sems.size()) return Errno(EFBIG);
  SV_TRY(s->perm.Check(t.creds(), alter ? 0200 : 0400));
  const int tgid = t.tgid();
  Status waited;  // how the last wait ended
  for (;;) {
    if (s->perm.deleted) return Errno(EIDRM);
    size_t blocker = 0;
    int r = TryOps(*s, ops, tgid, t.tg().pid_numbers, &blocker);
    if (r == 0) {
      if (alter) s->waiters.NotifyAll();
      return {};
    }
    if (r != EAGAIN) return Errno(r);
    // Still blocked after a wait that ended for the deadline or a signal
    // (a change may have let us through just then: tried once more above).
    if (!waited.ok()) {
      if (waited.error().value() == ETIMEDOUT) return Errno(EAGAIN);
      l.unlock();  // ParkInterrupted takes Kernel::mu()
      return Interrupted(t);
    }
    const GuestSembuf& b = ops[blocker];
    if (b.sem_flg & IPC_NOWAIT) return Errno(EAGAIN);
    SemSet::Sem& sem = s->sems[b.sem_num];
    int& count = b.sem_op == 0 ? sem.zcnt : sem.ncnt;
    ++count;
    waited = WaitOn(s->waiters, t, l, timeout ? &deadline : nullptr);
    --count;  // the set outlives its removal while we hold it
  }
}

void SemRegistry::RemoveLocked(SemSet &s) {
  reg_.Remove(s);
  for (auto &[tgid, sets] : undo_) sets.erase(s.perm.id);
  s.waiters.NotifyAll();  // each wakes to EIDRM
}

Result<uint64_t> SemRegistry::Ctl(Task &t, int id, int semnum, int cmd, uint64_t arg) {
  const UserAddr ptr(arg);
  std::unique_lock l(mu_);
  if (cmd == IPC_INFO || cmd == SEM_INFO) {
    GuestSeminfo info{};
    info.semmni = kSemMni;
    info.semmns = kSemMns;
    info.semmsl = kSemMsl;
    info.semopm = kSemOpm;
    info.semvmx = kSemVmx;
    info.semmnu = kSemMns;
    info.semmap = kSemMns;
    info.semume = 500;  // SEMUME
    info.semusz = 20;   // sizeof(struct sem_undo) in Linux's answer
    info.semaem = kSemAem;
    if (cmd == SEM_INFO) {
      int sets = 0, sems = 0;
      reg_.ForEach([&](int, SemSet &s) {
        ++sets;
        sems += static_cast<int>(s.sems.size());
      });
      info.semusz = sets;
      info.semaem = sems;
    }
    int max = reg_.MaxIndex();
    l.unlock();
    SV_TRY(t.CopyOutObj(ptr, info));
    return static_cast<uint64_t>(max);
  }
  std::shared_ptr<SemSet> s;
  if (cmd == SEM_STAT || cmd == SEM_STAT_ANY) {
    SV_ASSIGN_OR_RETURN(s, reg_.GetByIndex(id));
  } else {
    SV_ASSIGN_OR_RETURN(s, reg_.Get(id));
  }
  const Credentials &c = t.creds();
  auto sem_at = [&](int n) -> Result<SemSet::Sem *> {
    if (n < 0 || n >= static_cast<int>(s->sems.size())) return Errno(EINVAL);
    return &s->sems[static_cast<size_t>(n)];
  };
  switch (cmd) {
    case IPC_STAT:
    case SEM_STAT:
    case SEM_STAT_ANY: {
      if (cmd != SEM_STAT_ANY) SV_TRY(s->perm.Check(c, 0400));
      GuestSemidDs ds{};
      ds.perm = s->perm.ToGuest();
      ds.otime = s->otime;
      ds.ctime = s->ctime;
      ds.nsems = s->sems.size();
      int ret = cmd == IPC_STAT ? 0 : s->perm.id;
      l.unlock();
      SV_TRY(t.CopyOutObj(ptr, ds));
      return static_cast<uint64_t>(ret);
    }
    case IPC_SET: {
      GuestSemidDs ds;
      l.unlock();
      SV_TRY(t.CopyInObj(ptr, &ds));
      l.lock();
      if (s->perm.deleted) return Errno(EIDRM);
      SV_TRY(s->perm.CheckOwner(c));
      s->perm.Set(ds.perm);
      s->ctime = IpcNow();
      return 0;
    }
    case IPC_RMID:
      SV_TRY(s->perm.CheckOwner(c));
      RemoveLocked(*s);
      return 0;
    case GETVAL:
    case GETPID:
    case GETNCNT:
    case GETZCNT: {
      SV_TRY(s->perm.Check(c, 0400));
      SV_ASSIGN_OR_RETURN(SemSet::Sem * sem, sem_at(semnum));
      // sempid: as the caller's pid namespace numbered it (pid_vnr()).
      int v = cmd == GETVAL    ? sem->val
              : cmd == GETPID  ? PidNumbers::In(sem->pid.get(), t.pid_ns())
              : cmd == GETNCNT ? sem->ncnt
                               : sem->zcnt;
      return static_cast<uint64_t>(v);
    }
    case GETALL: {
      SV_TRY(s->perm.Check(c, 0400));
      std::vector<uint16_t> vals;
      for (const auto &sem : s->sems) vals.push_back(static_cast<uint16_t>(sem.val));
      l.unlock();
      SV_TRY(t.CopyOut(ptr, vals.data(), vals.size() * sizeof(uint16_t)));
      return 0;
    }
    case SETVAL: {
      SV_TRY(s->perm.Check(c, 0200));
      SV_ASSIGN_OR_RETURN(SemSet::Sem * sem, sem_at(semnum));
      int v = static_cast<int>(static_cast<uint32_t>(arg));  // semun.val
      if (v < 0 || v > kSemVmx) return Errno(ERANGE);
      for (auto &[tgid, sets] : undo_) {
        auto it = sets.find(s->perm.id);
        if (it != sets.end()) it->second[static_cast<size_t>(semnum)] = 0;
      }
      sem->val = v;
      sem->pid = t.tg().pid_numbers;
      s->ctime = IpcNow();
      s->waiters.NotifyAll();
      return 0;
    }
    case SETALL: {
      SV_TRY(s->perm.Check(c, 0200));
      std::vector<uint16_t> vals(s->sems.size());
      std::shared_ptr<SemSet> keep = s;
      l.unlock();
      SV_TRY(t.CopyIn(ptr, vals.data(), vals.size() * sizeof(uint16_t)));
      l.lock();
      if (s->perm.deleted) return Errno(EIDRM);
      for (uint16_t v : vals) {
        if (v > kSemVmx) return Errno(ERANGE);
      }
      for (auto &[tgid, sets] : undo_) sets.erase(s->perm.id);
      for (size_t i = 0; i < vals.size(); ++i) {
        s->sems[i].val = vals[i];
        s->sems[i].pid = t.tg().pid_numbers;
      }
      s->ctime = IpcNow();
      s->waiters.NotifyAll();
      return 0;
    }
    default:
      return Errno(EINVAL);
  }
}

bool SemRegistry::HasUndo(int tgid) {
  std::lock_guard<std::mutex> l(mu_);
  return undo_.count(tgid) != 0;
}

void SemRegistry::ExitUndo(int tgid, const IpcPid &pid) {
  std::lock_guard l(mu_);
  auto pit = undo_.find(tgid);
  if (pit == undo_.end()) return;
  for (auto &[id, adjs] : pit->second) {
    Result<std::shared_ptr<SemSet>> s = reg_.Get(id);
    if (!s.ok() || (*s)->perm.deleted) continue;
    for (size_t i = 0; i < adjs.size() && i < (*s)->sems.size(); ++i) {
      if (adjs[i] == 0) continue;
      SemSet::Sem &sem = (*s)->sems[i];
      sem.val = std::clamp(sem.val + adjs[i], 0, kSemVmx);
      sem.pid = pid;
    }
    (*s)->waiters.NotifyAll();
  }
  undo_.erase(pit);
}

std::string SemRegistry::ProcText() {
  std::string out =
      "       key      semid perms      nsems   uid   gid  cuid  "
      "cgid      otime      ctime\n";
  std::lock_guard l(mu_);
  reg_.ForEach([&](int, SemSet &s) {
    const IpcPerm &p = s.perm;
    out += absl::StrFormat("%10d %10d  %4o %10u %5u %5u %5u %5u %10u %10u\n", p.key, p.id,
                           p.mode & 0777, s.sems.size(), p.uid, p.gid, p.cuid, p.cgid, s.otime,
                           s.ctime);
  });
  return out;
}

}  // namespace seedvisor::sentry
