// File leases (fcntl(2) F_SETLEASE/F_GETLEASE, "Leases"; fs/locks.c): a
// read lease holds while nobody opens the file for writing, a write lease
// while nobody opens it at all. Such an open(2), or a truncate(2), breaks
// the lease: the holder's owner gets SIGIO (or the F_SETSIG signal, si_fd
// the lease's fd) and the caller waits until the holder gives the lease up
// or downgrades it, for at most /proc/sys/fs/lease-break-time seconds,
// after which the lease is taken away (__break_lease(), time_out_leases());
// with O_NONBLOCK the open is EWOULDBLOCK at once, after the signal.
//
// Leases belong to an open file description and go with its last close.
// The table is keyed by the file (FileLockKey) as record locks are. Which
// other descriptions have the file open (check_conflicting_open()) is
// found by a walk of every fd table: F_SETLEASE is rare, an open with no
// lease anywhere costs one atomic load. A breaker waits in short slices
// through Task::Block, so signals interrupt it.
#include <fcntl.h>
#include <linux/capability.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/lease_time.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

struct Lease {
  std::weak_ptr<FileDescription> file;
  const FileDescription* fp;
  int fd;          // si_fd of the break signal (the fd F_SETLEASE was given)
  short type;      // F_RDLCK or F_WRLCK
  // While broken: what the holder must come down to (F_RDLCK for a
  // reader's open, F_UNLCK for a writer's: FL_DOWNGRADE_PENDING,
  // FL_UNLOCK_PENDING), and when the lease is taken away.
  short breaking_to = -1;
  timespec deadline{};
};

std::mutex g_mu;
std::map<FileLockKey, std::vector<Lease>> g_leases;  // guarded by g_mu
std::atomic<int> g_files{0};                         // g_leases.size()

void NoteSizeLocked() { g_files.store(static_cast<int>(g_leases.size())); }

bool Before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

// Drops leases whose description is gone, and applies breaks whose time
// ran out (time_out_leases(): down to what the break asked for).
void TidyLocked(const FileLockKey& key, const timespec& now) {
  auto it = g_leases.find(key);
  if (it == g_leases.end()) return;
  auto& v = it->second;
  for (Lease& l : v) {
    if (l.breaking_to >= 0 && !Before(now, l.deadline)) {
      if (l.breaking_to == F_RDLCK) l.type = F_RDLCK;
      else l.file.reset();
      l.breaking_to = -1;
    }
  }
  std::erase_if(v, [](const Lease& l) { return l.file.expired(); });
  if (v.empty()) g_leases.erase(it);
  NoteSizeLocked();
}

// The descriptions other than `self` that have `key`'s file open for
// reading and for writing, and whether `self`'s own is one for writing:
// Linux's i_readcount and i_writecount. Takes Kernel::mu().
struct OpenCounts {
  int readers = 0, writers = 0;
};
OpenCounts CountOpens(Task& t, const FileDescription& self, const FileLockKey& key) {
  std::vector<std::shared_ptr<Task>> tasks;
  {
    absl::MutexLock l(&t.kernel().mu());
    tasks = t.kernel().Tasks();
  }
  std::set<const FileDescription*> seen;
  OpenCounts c;
  for (const auto& task : tasks) {
    for (const auto& [fd, e] : task->fds().Snapshot()) {
      FileDescription& f = *e.file;
      if (&f == &self || !f.dentry() || !seen.insert(&f).second) continue;
      if (f.flags() & O_PATH) continue;
      if (f.LockKey() != key) continue;
      if (f.writable()) {
        ++c.writers;
      } else if (f.readable()) {
        ++c.readers;
      }
    }
  }
  return c;
}

// The last close of a description with a lease drops it (locks_remove_file()).
void DropOnLastClose(FileDescription& f, const FileLockKey& key) {
  f.OnRelease(&g_leases, [key](const FileDescription*) {
    std::lock_guard l(g_mu);
    TidyLocked(key, MonotonicNowTimespec());
  });
}

}  // namespace

namespace file_internal {

// fcntl(F_SETLEASE): fcntl_setlease(), vfs_setlease(), generic_add_lease().
SyscallReturn FcntlSetLease(Task& t, FileDescription& f, int fd, long arg) {
  if (arg != F_RDLCK && arg != F_WRLCK && arg != F_UNLCK) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
  if (t.creds().fsuid != st.st_uid && !t.creds().HasCap(CAP_LEASE)) return Errno(EACCES);
  if (!S_ISREG(st.st_mode) || !f.dentry()) return Errno(EINVAL);
  const FileLockKey key = f.LockKey();
  const short type = static_cast<short>(arg);
  // Counted before the table is locked: the walk takes the kernel's lock.
  const OpenCounts others = type == F_UNLCK ? OpenCounts{} : CountOpens(t, f, key);
  std::lock_guard l(g_mu);
  TidyLocked(key, MonotonicNowTimespec());
  std::vector<Lease>& v = g_leases[key];
  auto mine = std::find_if(v.begin(), v.end(), [&](const Lease& x) { return x.fp == &f; });
  if (type == F_UNLCK) {
    // generic_delete_lease(): no lease of this description is EAGAIN.
    if (mine == v.end()) {
      if (v.empty()) g_leases.erase(key);
      return Errno(EAGAIN);
    }
    v.erase(mine);
    if (v.empty()) g_leases.erase(key);
    NoteSizeLocked();
    return 0;
  }
  // check_conflicting_open(): a read lease while anyone (this description
  // too) has the file open for writing, a write lease while anyone else has
  // it open at all. A break in progress counts its breaker as such an open.
  const int self_writes = f.writable() ? 1 : 0;
  bool conflict = type == F_RDLCK ? others.writers + self_writes > 0
                                  : others.writers + others.readers > 0;
  for (const Lease& x : v) {
    if (x.fp == &f) {
      if (x.breaking_to >= 0 && !(type == F_RDLCK && x.breaking_to == F_RDLCK)) conflict = true;
      continue;
    }
    // Another description's lease: no write lease beside it, no lease at
    // all beside one being broken.
    if (type == F_WRLCK || x.breaking_to == F_UNLCK) conflict = true;
  }
  if (conflict) {
    if (v.empty()) g_leases.erase(key);
    return Errno(EAGAIN);
  }
  if (mine != v.end()) {
    mine->type = type;  // lease_modify(): also ends a downgrade asked for
    mine->breaking_to = -1;
    mine->fd = fd;
  } else {
    v.push_back(Lease{f.weak_from_this(), &f, fd, type});
    DropOnLastClose(f, key);
  }
  NoteSizeLocked();
  // lease_setup(): the caller's process hears of breaks, unless the file
  // has an owner already.
  if (f.async_owner().pid == nullptr) (void)SetFileOwner(t, f, F_OWNER_PID, t.vtgid());
  return 0;
}

// fcntl(F_GETLEASE): this description's lease, or what a break asked it to
// come down to (target_leasetype()); F_UNLCK without one.
SyscallReturn FcntlGetLease(FileDescription& f) {
  if (g_files.load() == 0) return static_cast<uint64_t>(F_UNLCK);
  const FileLockKey key = f.LockKey();
  std::lock_guard l(g_mu);
  TidyLocked(key, MonotonicNowTimespec());
  auto it = g_leases.find(key);
  if (it == g_leases.end()) return static_cast<uint64_t>(F_UNLCK);
  for (const Lease& x : it->second) {
    if (x.fp == &f) return static_cast<uint64_t>(x.breaking_to >= 0 ? x.breaking_to : x.type);
  }
  return static_cast<uint64_t>(F_UNLCK);
}

// __break_lease(): breaks the leases on `key` that an open for writing
// (`write`) or for reading conflicts with, and waits until none is left.
Status BreakLeases(Task& t, const FileLockKey& key, bool write, bool nonblock) {
  for (;;) {
    std::vector<std::pair<FileRef, int>> tell;
    bool waiting = false;
    {
      std::lock_guard l(g_mu);
      const timespec now = MonotonicNowTimespec();
      TidyLocked(key, now);
      auto it = g_leases.find(key);
      if (it == g_leases.end()) return {};
      for (Lease& x : it->second) {
        if (x.type != F_WRLCK && !write) continue;  // a reader and a read lease
        waiting = true;
        const short want = write ? F_UNLCK : F_RDLCK;
        if (x.breaking_to == F_UNLCK || x.breaking_to == want) continue;  // asked already
        x.breaking_to = want;
        x.deadline = AddTimespec(now, timespec{std::max(LeaseBreakSeconds(), 0), 0});
        if (FileRef held = x.file.lock()) tell.emplace_back(std::move(held), x.fd);
      }
    }
    for (auto& [file, fd] : tell) SendSigioMsg(t.kernel(), *file, fd);
    if (!waiting) return {};
    if (nonblock) return Errno(EWOULDBLOCK);
    timespec slice = AddTimespec(MonotonicNowTimespec(), timespec{0, 10 * 1000 * 1000});
    Status s = t.Block(&slice);
    if (!s.ok() && s.error() != Errno(ETIMEDOUT)) return Errno(kERESTARTSYS);
  }
}

Status BreakLeasesOnOpen(Task& t, FileDescription& f, int flags) {
  if (g_files.load() == 0 || !f.dentry()) return {};
  SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
  if (!S_ISREG(st.st_mode)) return {};
  return BreakLeases(t, f.LockKey(), (flags & O_ACCMODE) != O_RDONLY, flags & O_NONBLOCK);
}

bool AnyLeases() { return g_files.load() != 0; }

}  // namespace file_internal

namespace {

// The VFS's open hook (lease_time.h): every open of a regular file, before
// it truncates.
Status BreakOnOpen(Task& t, FileDescription& f, int flags, bool truncate) {
  if (g_files.load() == 0 || !f.dentry()) return {};
  SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
  if (!S_ISREG(st.st_mode)) return {};
  return BreakLeases(t, f.LockKey(), (flags & O_ACCMODE) != O_RDONLY || truncate,
                     flags & O_NONBLOCK);
}

[[maybe_unused]] const bool kHookInstalled = (SetLeaseBreakOnOpen(&BreakOnOpen), true);

}  // namespace

namespace file_internal {

Status BreakLeasesOnTruncate(Task& t, Inode& inode, bool nonblock) {
  if (g_files.load() == 0) return {};
  return BreakLeases(t, inode.LockKey(), true, nonblock);
}

}  // namespace file_internal

}  // namespace seedvisor::sentry
