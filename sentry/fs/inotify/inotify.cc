#include "sentry/fs/inotify/inotify.h"

#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

size_t InotifyFile::Ev::size() const {
  // copy_event_to_user(): the name with at least one NUL, rounded up to a
  // multiple of sizeof(struct inotify_event).
  size_t n = name.empty() ? 0 : (name.size() + 1 + sizeof(inotify_event) - 1) /
                                    sizeof(inotify_event) * sizeof(inotify_event);
  return sizeof(inotify_event) + n;
}

Result<std::shared_ptr<InotifyFile>> InotifyFile::Create(int flags, uid_t uid) {
  // inotify_new_group(): the user's instance count first (EMFILE).
  SV_ASSIGN_OR_RETURN(InotifyCharge instance, InotifyCharge::Instance(uid));
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Errno(errno);
  return std::make_shared<InotifyFile>(flags, efd, std::move(instance), uid);
}

InotifyFile::InotifyFile(int flags, int efd, InotifyCharge instance, uid_t uid)
    : HostFdFile(flags, efd, "anon_inode:inotify"), instance_(std::move(instance)), uid_(uid) {}

InotifyFile::~InotifyFile() { FsnotifyRemoveAll(this); }

Result<int> InotifyFile::AddWatch(const DentryRef& d, uint32_t mask) {
  int wd;
  uint32_t full;
  const FileLockKey key = d->inode()->LockKey();  // a Stat: before mu_
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = wds_.find(key);
    if (it != wds_.end()) {
      if (mask & IN_MASK_CREATE) return Errno(EEXIST);
      wd = it->second;
      full = (mask & IN_MASK_ADD) ? (masks_[wd] | mask) : mask;
    } else {
      // inotify_new_watch(): the user's watch count (ENOSPC).
      SV_ASSIGN_OR_RETURN(InotifyCharge charge, InotifyCharge::Watch(uid_));
      wd = next_wd_++;
      full = mask;
      wds_[key] = wd;
      objects_[wd] = d->inode().get();
      watch_charges_.emplace(wd, std::move(charge));
    }
    full &= ~(IN_MASK_ADD | IN_MASK_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW);
    masks_[wd] = full;
  }
  // Outside mu_: the registry calls Event() with its own lock held.
  FsnotifyAddWatch(d, this, wd, full);
  return wd;
}

std::string InotifyFile::FdInfo() {
  std::string out;
  std::lock_guard<std::mutex> l(mu_);
  // A watch in objects_ holds its object's dentry (Event(IN_IGNORED),
  // under mu_, forgets it before the registry lets the dentry go).
  for (const auto& [wd, inode] : objects_) {
    Result<struct stat> st = const_cast<Inode*>(inode)->Stat();
    if (!st.ok()) continue;
    auto m = masks_.find(wd);
    const uint32_t mask =
        m == masks_.end() ? 0 : m->second & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
    const unsigned sdev = (major(st->st_dev) << 20) | minor(st->st_dev);
    char line[128];
    snprintf(line, sizeof(line), "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:0\n",
             static_cast<unsigned>(wd), static_cast<unsigned long long>(st->st_ino), sdev, mask);
    out += line;
  }
  return out;
}

Status InotifyFile::RemoveWatch(int wd) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!masks_.count(wd)) return Errno(EINVAL);
  }
  // Event(IN_IGNORED) forgets the wd.
  if (!FsnotifyRemoveWatch(this, wd, /*ignored=*/true)) return Errno(EINVAL);
  return {};
}

void InotifyFile::Event(int wd, uint32_t mask, uint32_t cookie, std::string_view name) {
  std::lock_guard<std::mutex> l(mu_);
  if (mask & IN_IGNORED) {
    masks_.erase(wd);
    objects_.erase(wd);
    watch_charges_.erase(wd);
    for (auto it = wds_.begin(); it != wds_.end(); ++it) {
      if (it->second == wd) {
        wds_.erase(it);
        break;
      }
    }
  }
  Ev e{wd, mask, cookie, std::string(name)};
  if (!queue_.empty() && queue_.back() == e) return;  // inotify_merge()
  if (queue_.size() >= kMaxQueued) {
    Ev overflow{-1, IN_Q_OVERFLOW, 0, {}};
    if (queue_.back() == overflow) return;
    e = overflow;
  }
  queued_bytes_ += e.size();
  queue_.push_back(std::move(e));
  SetReadinessEventFd(ready_, /*readable=*/true, /*edge=*/true);
}

void InotifyFile::SetReadyLocked() { SetReadinessEventFd(ready_, !queue_.empty()); }

Result<size_t> InotifyFile::Read(Task& t, char* buf, size_t len) {
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!queue_.empty()) {
        if (queue_.front().size() > len) return Errno(EINVAL);  // inotify_read()
        size_t done = 0;
        while (!queue_.empty() && done + queue_.front().size() <= len) {
          const Ev& e = queue_.front();
          inotify_event h{};
          h.wd = e.wd;
          h.mask = e.mask;
          h.cookie = e.cookie;
          h.len = static_cast<uint32_t>(e.size() - sizeof(h));
          memcpy(buf + done, &h, sizeof(h));
          memset(buf + done + sizeof(h), 0, h.len);
          memcpy(buf + done + sizeof(h), e.name.data(), e.name.size());
          done += e.size();
          queued_bytes_ -= e.size();
          queue_.pop_front();
        }
        SetReadyLocked();
        return done;
      }
    }
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(WaitFor(t, POLLIN, nullptr));
  }
}

Result<long> InotifyFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd != FIONREAD) return Errno(EINVAL);  // inotify_ioctl()
  int n;
  {
    std::lock_guard<std::mutex> l(mu_);
    n = static_cast<int>(queued_bytes_);
  }
  SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
  return 0L;
}

}  // namespace seedvisor::sentry
