#include "sentry/fs/fanotify/fanotify.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "sentry/kernel/task.h"
#include "sentry/vfs/fd_table.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// The events a non-FID group reports (FANOTIFY_OUTGOING_EVENTS without the
// FID ones and the permission ones, which this sentry does not have).
constexpr uint64_t kEventBits =
    FAN_ACCESS | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE | FAN_OPEN | FAN_OPEN_EXEC;
constexpr size_t kMergeWindow = 128;  // FANOTIFY_MAX_MERGE_EVENTS

// Every live group. Leaked: hooks may run during exit. Taken before a
// group's own lock.
std::mutex g_groups_mu;
auto* g_groups = new std::set<FanotifyFile*>;

}  // namespace

Result<std::shared_ptr<FanotifyFile>> FanotifyFile::Create(unsigned init_flags,
                                                           unsigned event_f_flags, int file_flags,
                                                           std::function<int(Task&)> fd_limit) {
  {
    std::lock_guard l(g_groups_mu);
    // fanotify_init(2): EMFILE past the user's groups (one user here: the
    // sandbox is one container).
    if (g_groups->size() >= static_cast<size_t>(kMaxGroups)) return Errno(EMFILE);
  }
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Errno(errno);
  auto f = std::make_shared<FanotifyFile>(init_flags, event_f_flags, file_flags, efd);
  f->fd_limit_ = std::move(fd_limit);
  {
    std::lock_guard l(g_groups_mu);
    g_groups->insert(f.get());
  }
  FsnotifySetFanotifyHook(&FanotifyFile::Deliver);
  FsnotifyFanotifyGroups(1);
  return f;
}

FanotifyFile::FanotifyFile(unsigned init_flags, unsigned event_f_flags, int file_flags, int efd)
    : HostFdFile(file_flags, efd, "anon_inode:[fanotify]"),
      init_flags_(init_flags),
      event_f_flags_(event_f_flags) {}

FanotifyFile::~FanotifyFile() {
  {
    std::lock_guard l(g_groups_mu);
    g_groups->erase(this);
  }
  FsnotifyFanotifyGroups(-1);
}

std::map<const void*, FanotifyFile::MarkState>& FanotifyFile::MarksOf(MarkType type) {
  switch (type) {
    case kMount: return mount_marks_;
    case kFilesystem: return fs_marks_;
    default: return inode_marks_;
  }
}

size_t FanotifyFile::MarkCountLocked() const {
  return inode_marks_.size() + mount_marks_.size() + fs_marks_.size();
}

Status FanotifyFile::Mark(MarkType type, const DentryRef& d, uint64_t mask, unsigned flags) {
  const void* key = type == kMount        ? static_cast<const void*>(d->mount())
                    : type == kFilesystem ? d->inode()->FsId()
                                          : static_cast<const void*>(d->inode().get());
  // FAN_EVENT_ON_CHILD means something on a directory's inode mark only.
  if (type != kInode || d->inode()->Type() != S_IFDIR) mask &= ~FAN_EVENT_ON_CHILD;
  const bool ignored = flags & FAN_MARK_IGNORED_MASK;
  DentryRef drop;  // released after the lock
  std::lock_guard l(mu_);
  auto& marks = MarksOf(type);
  auto it = marks.find(key);
  if (flags & FAN_MARK_REMOVE) {
    if (it == marks.end()) return Errno(ENOENT);
    (ignored ? it->second.ignored : it->second.mask) &= ~mask;
    if (it->second.mask == 0 && it->second.ignored == 0) {
      drop = std::move(it->second.keep);
      marks.erase(it);
    }
    return {};
  }
  if (it == marks.end()) {
    const size_t limit = (init_flags_ & FAN_UNLIMITED_MARKS) ? kHardMaxMarks : kMaxMarks;
    if (MarkCountLocked() >= limit) return Errno(ENOSPC);
    it = marks.emplace(key, MarkState{.keep = d}).first;
  }
  if (ignored) {
    it->second.ignored |= mask;
    if (flags & FAN_MARK_IGNORED_SURV_MODIFY) it->second.surv_modify = true;
  } else {
    it->second.mask |= mask;
  }
  return {};
}

void FanotifyFile::Flush(MarkType type) {
  std::map<const void*, MarkState> drop;
  std::lock_guard l(mu_);
  drop.swap(MarksOf(type));
}

void FanotifyFile::Deliver(const Dentry& d, uint32_t mask) {
  if (!(mask & kEventBits)) return;
  Task* t = CurrentTask();
  std::lock_guard l(g_groups_mu);
  for (FanotifyFile* g : *g_groups) {
    int pid = 0;
    if (t != nullptr) pid = (g->init_flags_ & FAN_REPORT_TID) ? t->tid() : t->tgid();
    std::lock_guard gl(g->mu_);
    g->HandleLocked(d, mask, pid);
  }
}

void FanotifyFile::HandleLocked(const Dentry& d, uint32_t mask, int pid) {
  const bool ondir = mask & FAN_ONDIR;
  const uint64_t event = mask & kEventBits;
  uint64_t marks = 0, ignore = 0;
  // A modification clears the ignored masks that do not survive it
  // (fanotify_handle_event(), FAN_MARK_IGNORED_SURV_MODIFY).
  auto consider = [&](MarkState* m, bool parent) {
    if (m == nullptr) return;
    if ((event & FAN_MODIFY) && !m->surv_modify) m->ignored = 0;
    ignore |= m->ignored;
    if (parent && !(m->mask & FAN_EVENT_ON_CHILD)) return;
    if (ondir && !(m->mask & FAN_ONDIR)) return;
    marks |= m->mask;
  };
  auto find = [](std::map<const void*, MarkState>& ms, const void* key) -> MarkState* {
    auto it = ms.find(key);
    return it == ms.end() ? nullptr : &it->second;
  };
  consider(find(inode_marks_, d.inode().get()), false);
  // fsnotify_parent(): a directory's mark hears about its children (never
  // across a mount's root).
  if (d.parent()) consider(find(inode_marks_, d.parent()->inode().get()), true);
  consider(find(mount_marks_, d.mount()), false);
  consider(find(fs_marks_, d.inode()->FsId()), false);
  const uint64_t report = event & marks & ~ignore & kEventBits;
  if (report == 0) return;
  // fanotify_merge(): into a queued event on the same path by the same task.
  size_t looked = 0;
  for (auto it = queue_.rbegin(); it != queue_.rend() && looked < kMergeWindow; ++it, ++looked) {
    if (it->d.get() == &d && it->pid == pid) {
      it->mask |= report;
      return;
    }
  }
  const size_t limit = (init_flags_ & FAN_UNLIMITED_QUEUE) ? kHardMaxQueued : kMaxQueued;
  if (queue_.size() >= limit) {
    // One FAN_Q_OVERFLOW at the end stands for everything lost.
    if (queue_.back().mask != FAN_Q_OVERFLOW) queue_.push_back(Ev{FAN_Q_OVERFLOW, nullptr, 0});
  } else {
    DentryRef ref = std::const_pointer_cast<Dentry>(d.weak_from_this().lock());
    if (!ref) return;  // not a shared dentry: nothing to open for the reader
    queue_.push_back(Ev{report, std::move(ref), pid});
  }
  SetReadinessEventFd(ready_, !queue_.empty(), /*edge=*/true);
}

void FanotifyFile::SetReadyLocked() { SetReadinessEventFd(ready_, !queue_.empty()); }

Result<size_t> FanotifyFile::Read(Task& t, char* buf, size_t len) {
  constexpr size_t kSize = sizeof(fanotify_event_metadata);
  for (;;) {
    std::deque<Ev> taken;
    {
      std::lock_guard l(mu_);
      if (!queue_.empty()) {
        if (len < kSize) return Errno(EINVAL);  // not even one event fits
        size_t n = std::min(len / kSize, queue_.size());
        for (size_t i = 0; i < n; ++i) {
          taken.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        SetReadyLocked();
      }
    }
    if (taken.empty()) {
      if (nonblocking()) return Errno(EAGAIN);
      SV_TRY(WaitFor(t, POLLIN, nullptr));
      continue;
    }
    // Open each event's file for the reader, outside the group's lock (an
    // open may reach a filesystem that reports events).
    size_t done = 0;
    for (size_t i = 0; i < taken.size(); ++i) {
      Ev& e = taken[i];
      fanotify_event_metadata m{};
      m.event_len = kSize;
      m.vers = FANOTIFY_METADATA_VERSION;
      m.metadata_len = kSize;
      m.mask = e.mask;
      m.fd = FAN_NOFD;
      m.pid = e.pid == 0 ? 0 : TaskIdIn(t, e.pid);
      if (e.d) {
        // dentry_open() of the path, with FMODE_NONOTIFY; no permission
        // check (the group's creds had CAP_SYS_ADMIN).
        const int open_flags = static_cast<int>(event_f_flags_) &
                               (O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC | O_NOATIME);
        Result<FileRef> f = e.d->inode()->Open(e.d, open_flags);
        if (f.ok()) FsnotifyNoNotify(**f);
        Result<int> fd = f.ok() ? t.fds().Install(*f, (event_f_flags_ & O_CLOEXEC) != 0, 0,
                                                  fd_limit_(t))
                                : Result<int>(f.error());
        if (!fd.ok()) {
          if (done == 0) return fd.error();
          // The rest goes back to the front of the queue, in order.
          std::lock_guard l(mu_);
          for (size_t j = taken.size(); j > i; --j) queue_.push_front(std::move(taken[j - 1]));
          SetReadyLocked();
          break;
        }
        m.fd = *fd;
      }
      memcpy(buf + done, &m, kSize);
      done += kSize;
    }
    return done;
  }
}

Result<long> FanotifyFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd != FIONREAD) return Errno(ENOTTY);  // fanotify_ioctl()
  int n;
  {
    std::lock_guard l(mu_);
    n = static_cast<int>(queue_.size() * sizeof(fanotify_event_metadata));
  }
  SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
  return 0L;
}

std::string FanotifyFile::FdInfo() {
  // fanotify_fdinfo(): the group's flags, then a line per inode mark.
  char line[160];
  snprintf(line, sizeof(line), "fanotify flags:%x event-flags:%x\n", init_flags_, event_f_flags_);
  std::string out = line;
  std::lock_guard l(mu_);
  for (const auto& [key, m] : inode_marks_) {
    Result<struct stat> st = m.keep->inode()->Stat();
    if (!st.ok()) continue;
    snprintf(line, sizeof(line), "fanotify ino:%llx sdev:%x mflags:0 mask:%llx ignored_mask:%llx\n",
             static_cast<unsigned long long>(st->st_ino),
             static_cast<unsigned>((major(st->st_dev) << 20) | minor(st->st_dev)),
             static_cast<unsigned long long>(m.mask),
             static_cast<unsigned long long>(m.ignored));
    out += line;
  }
  return out;
}

}  // namespace seedvisor::sentry
