// What the three System V IPC families share: keys and ids, the ipc_perm
// of each object and its permission checks, the guest's structures, and a
// registry of objects by id (ipc/util.c in Linux).
//
//   IpcRegistry<Sem> sems(kSemMni);
//   SV_ASSIGN_OR_RETURN(auto set, sems.GetOrCreate(t, key, flags, check,
//   make));
//
// One registry per family in the sandbox's IpcNamespace; its lock guards the
// table and every object in it (ops on one family are serialized, as one
// spinlock per object would be nearly everywhere here).
#ifndef SEEDVISOR_SENTRY_IPC_IPC_OBJECT_H_
#define SEEDVISOR_SENTRY_IPC_IPC_OBJECT_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "sentry/base/errno.h"
#include "sentry/kernel/credentials.h"

namespace seedvisor::sentry {

class Task;
class Kernel;
class PidNamespace;
class PidNumbers;

// A process a SysV object names (its creator, its last user): its ids as
// they were (pid_namespace.h), shown with PidNumbers::In; null: nobody.
using IpcPid = std::shared_ptr<const PidNumbers>;

// <linux/ipc.h>: ipcget flags, commands and the private key.
inline constexpr int kIpcCreat = 01000, kIpcExcl = 02000, kIpcNowait = 04000;
inline constexpr int kIpcRmid = 0, kIpcSet = 1, kIpcStat = 2, kIpcInfo = 3;
inline constexpr int32_t kIpcPrivate = 0;
// ipc_buildid(): an id is seq * IPCMNI + index.
inline constexpr int kIpcMni = 32768;

// struct ipc64_perm on x86-64, as the guest sees it.
struct GuestIpcPerm {
  int32_t key;
  uint32_t uid, gid, cuid, cgid;
  uint32_t mode;
  uint16_t seq, pad2;
  uint64_t unused1, unused2;
};
static_assert(sizeof(GuestIpcPerm) == 48);

// struct kern_ipc_perm: who owns an object and who may use it.
struct IpcPerm {
  int32_t key = kIpcPrivate;
  uid_t uid = 0, cuid = 0;
  gid_t gid = 0, cgid = 0;
  uint32_t mode = 0;  // low 9 bits: rwx for owner, group, others; plus family flags
  uint16_t seq = 0;
  int id = -1;
  bool deleted = false;

  // ipcperms(): `want` is a mode mask (0400 read, 0200 write, or 0600).
  // EACCES unless the caller's class grants it or it has CAP_IPC_OWNER.
  Status Check(const Credentials &c, int want) const;
  // ipcctl_obtain_check(): IPC_SET and IPC_RMID are for the owner, the
  // creator or CAP_SYS_ADMIN (EPERM).
  Status CheckOwner(const Credentials &c) const;
  // IPC_SET: uid, gid and the 9 permission bits from the guest's perm.
  void Set(const GuestIpcPerm &p);
  GuestIpcPerm ToGuest() const;
};

// A table of objects of one family, by id and by key.
template <typename T>
class IpcRegistry {
 public:
  explicit IpcRegistry(int max) : max_(max) {}

  // The object with `id`, or EINVAL (no such id, or a stale one). Objects
  // marked removed but still alive (an attached shm segment) are found too.
  Result<std::shared_ptr<T>> Get(int id) {
    if (id < 0) return Errno(EINVAL);
    auto it = objs_.find(id % kIpcMni);
    if (it == objs_.end()) return Errno(EINVAL);
    std::shared_ptr<T> o = it->second.strong ? it->second.strong : it->second.weak.lock();
    if (o == nullptr) {
      objs_.erase(it);
      return Errno(EINVAL);
    }
    if (o->perm.id != id) return Errno(EINVAL);
    return o;
  }
  // The object at table index `idx` (SEM_STAT and friends), or EINVAL.
  Result<std::shared_ptr<T>> GetByIndex(int idx) {
    auto it = objs_.find(idx);
    if (it == objs_.end()) return Errno(EINVAL);
    std::shared_ptr<T> o = it->second.strong ? it->second.strong : it->second.weak.lock();
    if (o == nullptr) return Errno(EINVAL);
    return o;
  }

  // ipcget(): the object for `key` with IPC_CREAT/IPC_EXCL semantics. An
  // existing object passes the permission check against `flags & 0777`,
  // then `check` (its size or count, EINVAL); `make` builds a new one (its perm
  // is filled in here).
  Result<std::shared_ptr<T>> GetOrCreate(const Credentials &c, int32_t key, int flags,
                                         const std::function<Status(T &)> &check,
                                         const std::function<Result<std::shared_ptr<T>>()> &make) {
    if (key != kIpcPrivate) {
      for (auto &[idx, e] : objs_) {
        if (e.strong == nullptr || e.strong->perm.key != key) continue;
        if ((flags & kIpcCreat) && (flags & kIpcExcl)) return Errno(EEXIST);
        SV_TRY(e.strong->perm.Check(c, flags & 0777));
        SV_TRY(check(*e.strong));
        return e.strong;
      }
      if (!(flags & kIpcCreat)) return Errno(ENOENT);
    }
    // The limit is on how many objects exist (ids->in_use), the index is the
    // first free one from 0, or from next_id's index on.
    if (static_cast<int>(objs_.size()) >= max_) return Errno(ENOSPC);
    int idx = next_id_ >= 0 ? next_id_ % kIpcMni : 0;
    for (auto it = objs_.lower_bound(idx); it != objs_.end() && it->first == idx; ++it) ++idx;
    if (idx >= kIpcMni) return Errno(ENOSPC);
    SV_ASSIGN_OR_RETURN(std::shared_ptr<T> o, make());
    IpcPerm &p = o->perm;
    p.key = key;
    p.uid = p.cuid = c.euid;
    p.gid = p.cgid = c.egid;
    p.mode = flags & 0777;
    p.seq = next_id_ >= 0 ? static_cast<uint16_t>(next_id_ / kIpcMni) : next_seq_++;
    p.id = static_cast<int>(p.seq) * kIpcMni + idx;
    next_id_ = -1;
    objs_[idx] = Entry{o, o};
    return o;
  }

  // kernel.{sem,msg,shm}_next_id (ipc_idr_alloc()): from 0 to INT_MAX, the
  // id the next object made asks for (its sequence number, and the first
  // free index from its index on); used once, then -1 (none) again.
  int next_id() const { return next_id_; }
  void set_next_id(int id) { next_id_ = id; }

  // IPC_RMID: the id and key go now; the object lives on while someone
  // holds it (an attached shm segment).
  void Remove(T &o) {
    o.perm.deleted = true;
    o.perm.key = kIpcPrivate;
    auto it = objs_.find(o.perm.id % kIpcMni);
    if (it != objs_.end()) it->second.strong = nullptr;
  }
  // Drops a removed object's slot at once (nothing holds it any more).
  void Forget(T &o) {
    auto it = objs_.find(o.perm.id % kIpcMni);
    if (it != objs_.end() && it->second.strong == nullptr) objs_.erase(it);
  }

  // Live objects in index order, removed-but-alive ones included.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (auto it = objs_.begin(); it != objs_.end();) {
      std::shared_ptr<T> o = it->second.strong ? it->second.strong : it->second.weak.lock();
      if (o == nullptr) {
        it = objs_.erase(it);
        continue;
      }
      fn(it->first, *o);
      ++it;
    }
  }
  // The highest index in use (IPC_INFO's return value), 0 if none.
  int MaxIndex() {
    int m = 0;
    ForEach([&](int idx, T &) { m = idx; });
    return m;
  }

 private:
  struct Entry {
    std::shared_ptr<T> strong;  // null once removed
    std::weak_ptr<T> weak;
  };
  const int max_;
  uint16_t next_seq_ = 0;
  int next_id_ = -1;
  std::map<int, Entry> objs_;
};

// What every SysV IPC family (semaphores, queues, shm) has: its table and
// the lock that guards it.
template <typename T>
class IpcFamily {
 public:
  explicit IpcFamily(int max) : reg_(max) {}
  // kernel.{sem,msg,shm}_next_id (IpcRegistry::next_id()).
  int NextId() {
    std::lock_guard l(mu_);
    return reg_.next_id();
  }
  void SetNextId(int id) {
    std::lock_guard l(mu_);
    reg_.set_next_id(id);
  }

 protected:
  std::mutex mu_;
  IpcRegistry<T> reg_;
};

// Wall-clock seconds, for the objects' times.
int64_t IpcNow();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_IPC_IPC_OBJECT_H_
