// Advisory locks: POSIX record locks (fcntl F_GETLK/F_SETLK/F_SETLKW and the
// OFD variants) and flock(2), kept in one sentry-wide table per object.
//
// Record locks belong to a process (tgid) and are dropped when it closes any
// fd of the file (fcntl(2), "the lock is lost on close"); OFD locks belong to
// the open file description and go with its last close. The table is keyed
// by the file (Inode::LockKey), not by the Inode object: the overlay makes
// one per lookup, and two processes that reached one file by different
// lookups must meet each other's locks (issue 17: SQLite's WAL writers).
// A description keeps its key once asked (FileDescription::LockKey), and a
// close asks none unless its process holds record locks (g_posix_files):
// asking may be a host fstatat.
// Blocking waits poll the table in short slices through Task::Block, so
// signals interrupt them. A record lock wait that would close a cycle of
// processes waiting for each other is EDEADLK (posix_locks_deadlock()).
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

constexpr int64_t kEof = INT64_MAX;

struct RecordLock {
  const void* owner;  // ThreadGroup-ish key (tgid) or the FileDescription (OFD)
  bool ofd;
  // OFD locks: the description, whose last close drops the lock
  // (locks_remove_file()); an expired one is gone from the table.
  std::weak_ptr<FileDescription> file;
  int pid;            // for F_GETLK: the tgid, or -1 for OFD locks
  short type;         // F_RDLCK or F_WRLCK
  int64_t start, end;  // inclusive; end == kEof for "to EOF"
};

// flock holders are open file descriptions; an expired one released its lock
// (the last close of a description drops its flock, flock(2)).
struct FlockHolder {
  std::weak_ptr<FileDescription> file;
  short type;  // LOCK_SH or LOCK_EX
};
struct FlockState {
  std::map<const FileDescription*, FlockHolder> holders;
};

std::mutex g_mu;
std::map<FileLockKey, std::list<RecordLock>> g_locks;  // by file
std::map<FileLockKey, FlockState> g_flocks;
// The files on which each process (tgid) holds record locks.
std::map<int, std::set<FileLockKey>> g_posix_files;

// A task blocked in F_SETLKW, for deadlock detection (Linux's blocked_hash).
struct Waiter {
  int tgid;
  FileLockKey key;
  RecordLock want;
};
std::map<const Task*, Waiter> g_waiters;  // guarded by g_mu

// The file's key; a description without a dentry (a pipe, a socket) is its
// own file. Called without g_mu: the first call may stat a host file.
FileLockKey ObjectKey(FileDescription& f) { return f.LockKey(); }

// Drops the OFD locks whose description has been closed for the last time.
void DropClosedOfdLocks(std::list<RecordLock>& locks) {
  locks.remove_if([](const RecordLock& r) { return r.ofd && r.file.expired(); });
}

const void* PidKey(int tgid) { return reinterpret_cast<const void*>(static_cast<intptr_t>(tgid)); }

// Notes whether `tgid` still holds a record lock among `locks` (key's).
void NotePosixLocksLocked(const FileLockKey& key, int tgid, const std::list<RecordLock>& locks) {
  bool holds = false;
  for (const auto& r : locks) holds = holds || (!r.ofd && r.owner == PidKey(tgid));
  if (holds) {
    g_posix_files[tgid].insert(key);
    return;
  }
  auto it = g_posix_files.find(tgid);
  if (it == g_posix_files.end()) return;
  it->second.erase(key);
  if (it->second.empty()) g_posix_files.erase(it);
}

// The last close of a description that held OFD locks or a flock on `key`
// drops them now (locks_remove_file()), not when the key is next used.
void DropOnLastClose(FileDescription& f, const FileLockKey& key) {
  f.OnRelease(&g_locks, [key](const FileDescription*) {
    std::lock_guard l(g_mu);
    if (auto it = g_locks.find(key); it != g_locks.end()) {
      DropClosedOfdLocks(it->second);
      if (it->second.empty()) g_locks.erase(it);
    }
    if (auto it = g_flocks.find(key); it != g_flocks.end()) {
      std::erase_if(it->second.holders, [](const auto& h) { return h.second.file.expired(); });
      if (it->second.holders.empty()) g_flocks.erase(it);
    }
  });
}

bool Conflicts(const RecordLock& held, const RecordLock& want) {
  if (held.owner == want.owner && held.ofd == want.ofd) return false;
  if (held.end < want.start || want.end < held.start) return false;
  return held.type == F_WRLCK || want.type == F_WRLCK;
}

bool SameOwner(const RecordLock& a, const RecordLock& b) {
  return a.owner == b.owner && a.ofd == b.ofd;
}

// Whether `a` ends right before `b` starts.
bool EndsBefore(const RecordLock& a, const RecordLock& b) {
  return a.end != kEof && a.end + 1 == b.start;
}

// Applies `l` (or an unlock of its range if type == F_UNLCK) for its owner
// as posix_lock_inode() does: the owner's locks of the same type that
// overlap or touch it merge with it, those of the other type lose the
// range; the owner's locks stay together in the list, ordered by start,
// which is the order F_GETLK reports conflicts in.
void Apply(std::list<RecordLock>& locks, const RecordLock& l, short type) {
  RecordLock n = l;
  n.type = type;
  std::vector<RecordLock> mine;
  for (const RecordLock& r : locks) {
    if (!SameOwner(r, l)) continue;
    const bool overlaps = !(r.end < l.start || l.end < r.start);
    if (type != F_UNLCK && r.type == type &&
        (overlaps || EndsBefore(r, n) || EndsBefore(n, r))) {
      n.start = std::min(n.start, r.start);
      n.end = std::max(n.end, r.end);
      continue;
    }
    if (!overlaps) {
      mine.push_back(r);
      continue;
    }
    // Keep the parts of the old lock outside [l.start, l.end].
    if (r.start < l.start) {
      RecordLock left = r;
      left.end = l.start - 1;
      mine.push_back(left);
    }
    if (r.end > l.end) {
      RecordLock right = r;
      right.start = l.end + 1;
      mine.push_back(right);
    }
  }
  if (type != F_UNLCK) mine.push_back(n);
  std::sort(mine.begin(), mine.end(),
            [](const RecordLock& a, const RecordLock& b) { return a.start < b.start; });
  std::list<RecordLock> out;
  bool placed = false;
  for (RecordLock& r : locks) {
    if (!SameOwner(r, l)) {
      out.push_back(std::move(r));
    } else if (!placed) {
      out.insert(out.end(), mine.begin(), mine.end());
      placed = true;
    }
  }
  if (!placed) out.insert(out.end(), mine.begin(), mine.end());
  locks.swap(out);
}

Result<RecordLock> RangeOf(Task& t, FileDescription& f, const struct flock& fl, bool ofd) {
  int64_t base;
  switch (fl.l_whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: {
      SV_ASSIGN_OR_RETURN(base, f.Seek(0, SEEK_CUR));
      break;
    }
    case SEEK_END: {
      SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
      base = st.st_size;
      break;
    }
    default: return Errno(EINVAL);
  }
  RecordLock l{};
  int64_t start = base + fl.l_start;
  if (fl.l_len > 0) {
    l.start = start;
    l.end = start + fl.l_len - 1;
  } else if (fl.l_len == 0) {
    l.start = start;
    l.end = kEof;
  } else {
    l.start = start + fl.l_len;
    l.end = start - 1;
  }
  if (l.start < 0) return Errno(EINVAL);
  l.ofd = ofd;
  l.owner = ofd ? static_cast<const void*>(&f) : PidKey(t.tgid());
  if (ofd) l.file = f.weak_from_this();
  l.pid = ofd ? -1 : t.tgid();
  return l;
}

// The first lock on `key` that conflicts with `want`, or null.
const RecordLock* Blocker(const FileLockKey& key, const RecordLock& want) {
  auto it = g_locks.find(key);
  if (it == g_locks.end()) return nullptr;
  for (const auto& r : it->second) {
    if (Conflicts(r, want)) return &r;
  }
  return nullptr;
}

// posix_locks_deadlock(): whether waiting for `blocker` closes a cycle back
// to process `tgid`: its owner waits for a lock whose owner waits ... for a
// lock `tgid` holds. Followed for at most 10 steps
// (MAX_DEADLK_ITERATIONS), as Linux does.
bool Deadlocks(const RecordLock* blocker, int tgid) {
  for (int i = 0; blocker != nullptr && !blocker->ofd && i <= 10; ++i) {
    if (blocker->owner == PidKey(tgid)) return true;
    const RecordLock* next = nullptr;
    for (const auto& [task, w] : g_waiters) {
      if (PidKey(w.tgid) != blocker->owner) continue;
      next = Blocker(w.key, w.want);
      if (next) break;
    }
    blocker = next;
  }
  return false;
}

timespec Slice() {
  timespec d = MonotonicNowTimespec();
  return AddTimespec(d, timespec{0, 10 * 1000 * 1000});
}

}  // namespace

namespace file_internal {

void ReleaseRecordLocks(FileDescription& f, int owner) {
  {
    std::lock_guard l(g_mu);
    // A process without record locks: no key to ask (most closes).
    if (!g_posix_files.contains(owner)) return;
  }
  const FileLockKey key = ObjectKey(f);
  std::lock_guard l(g_mu);
  auto owned = g_posix_files.find(owner);
  if (owned == g_posix_files.end() || !owned->second.contains(key)) return;
  owned->second.erase(key);
  if (owned->second.empty()) g_posix_files.erase(owned);
  auto it = g_locks.find(key);
  if (it == g_locks.end()) return;
  it->second.remove_if([&](const RecordLock& r) { return !r.ofd && r.owner == PidKey(owner); });
  DropClosedOfdLocks(it->second);
  if (it->second.empty()) g_locks.erase(it);
}

}  // namespace file_internal

void ReleaseProcessRecordLocks(int tgid) {
  std::lock_guard l(g_mu);
  auto owned = g_posix_files.find(tgid);
  if (owned == g_posix_files.end()) return;
  for (const FileLockKey& key : owned->second) {
    auto it = g_locks.find(key);
    if (it == g_locks.end()) continue;
    it->second.remove_if([&](const RecordLock& r) { return !r.ofd && r.owner == PidKey(tgid); });
    if (it->second.empty()) g_locks.erase(it);
  }
  g_posix_files.erase(owned);
}

namespace file_internal {

// fcntl lock commands; cmd is F_GETLK/F_SETLK/F_SETLKW or an F_OFD_* one.
SyscallReturn FcntlLock(Task& t, FileDescription& f, int cmd, UserAddr arg) {
  bool ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
  struct flock fl;
  SV_TRY(t.CopyInObj(arg, &fl));
  if (ofd && fl.l_pid != 0) return Errno(EINVAL);
  if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(RecordLock want, RangeOf(t, f, fl, ofd));
  want.type = fl.l_type;
  const FileLockKey key = ObjectKey(f);
  if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
    std::lock_guard l(g_mu);
    struct flock out = fl;
    out.l_type = F_UNLCK;
    RecordLock probe = want;
    if (probe.type == F_UNLCK) return Errno(EINVAL);
    if (auto it = g_locks.find(key); it != g_locks.end()) {
      DropClosedOfdLocks(it->second);
      for (const auto& r : it->second) {
        if (Conflicts(r, probe)) {
          out.l_type = r.type;
          out.l_whence = SEEK_SET;
          out.l_start = r.start;
          out.l_len = r.end == kEof ? 0 : r.end - r.start + 1;
          out.l_pid = r.pid;
          break;
        }
      }
    }
    SV_TRY(t.CopyOutObj(arg, out));
    return 0;
  }
  if (fl.l_type == F_RDLCK && !f.readable()) return Errno(EBADF);
  if (fl.l_type == F_WRLCK && !f.writable()) return Errno(EBADF);
  bool wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
  // Whatever ends the wait, the task waits no more.
  struct WaitEnd {
    const Task* task;
    ~WaitEnd() {
      std::lock_guard l(g_mu);
      g_waiters.erase(task);
    }
  } wait_end{&t};
  for (;;) {
    {
      std::lock_guard l(g_mu);
      auto& locks = g_locks[key];
      DropClosedOfdLocks(locks);
      const RecordLock* blocker = nullptr;
      if (want.type != F_UNLCK) {
        for (const auto& r : locks) {
          if (Conflicts(r, want)) {
            blocker = &r;
            break;
          }
        }
      }
      if (!blocker) {
        Apply(locks, want, want.type);
        if (!ofd) NotePosixLocksLocked(key, t.tgid(), locks);
        if (locks.empty()) g_locks.erase(key);
        if (ofd && want.type != F_UNLCK) DropOnLastClose(f, key);
        return 0;
      }
      if (!wait) return Errno(EAGAIN);
      if (!ofd) {
        if (Deadlocks(blocker, t.tgid())) return Errno(EDEADLK);
        g_waiters[&t] = Waiter{t.tgid(), key, want};
      }
    }
    timespec deadline = Slice();
    Status s = t.Block(&deadline);
    if (!s.ok() && s.error() != Errno(ETIMEDOUT)) return Errno(kERESTARTSYS);
  }
}

}  // namespace file_internal

SyscallReturn SysFlock(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, GetIoFile(t, a.Int(0)));
  int op = a.Int(1);
  bool nb = op & LOCK_NB;
  op &= ~LOCK_NB;
  if (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN) return Errno(EINVAL);
  const FileLockKey key = ObjectKey(*f);
  for (;;) {
    {
      std::lock_guard l(g_mu);
      auto& st = g_flocks[key];
      if (op == LOCK_UN) {
        st.holders.erase(f.get());
        if (st.holders.empty()) g_flocks.erase(key);
        return 0;
      }
      bool conflict = false;
      for (auto it = st.holders.begin(); it != st.holders.end();) {
        if (it->second.file.expired()) {
          it = st.holders.erase(it);
          continue;
        }
        if (it->first != f.get() && (it->second.type == LOCK_EX || op == LOCK_EX)) {
          conflict = true;
        }
        ++it;
      }
      if (!conflict) {
        st.holders[f.get()] = FlockHolder{f, static_cast<short>(op)};
        DropOnLastClose(*f, key);
        return 0;
      }
      // A conversion drops the old lock first (flock(2) NOTES).
      st.holders.erase(f.get());
    }
    if (nb) return Errno(EWOULDBLOCK);
    timespec deadline = Slice();
    Status s = t.Block(&deadline);
    if (!s.ok() && s.error() != Errno(ETIMEDOUT)) return Errno(kERESTARTSYS);
  }
}

}  // namespace seedvisor::sentry
