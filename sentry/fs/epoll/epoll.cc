#include "sentry/fs/epoll/epoll.h"

#include "sentry/vfs/inode.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {

EpollFile::~EpollFile() {
  for (auto& [file, weak] : hooked_) {
    if (FileRef f = weak.lock()) f->CancelRelease(this);
  }
  for (auto& [id, r] : regs_) {
    if (r.owns_host_fd) close(r.host_fd);
  }
}

std::map<EpollFile::Key, uint64_t>::iterator EpollFile::FirstOfLocked(const FileDescription* f) {
  return ids_.lower_bound(Key{f, std::numeric_limits<int>::min()});
}

void EpollFile::Released(const FileDescription* file) {
  std::lock_guard l(mu_);
  hooked_.erase(file);
  std::vector<uint64_t> gone;
  for (auto k = FirstOfLocked(file); k != ids_.end() && k->first.first == file; ++k) {
    gone.push_back(k->second);
  }
  for (uint64_t id : gone) DropLocked(id);
}

void EpollFile::DropLocked(uint64_t id) {
  auto it = regs_.find(id);
  if (it == regs_.end()) return;
  ids_.erase(it->second.key);
  // Our dup is the last reference the host epoll item may still have to
  // the file; closing it ends the item. The file's own host fd closed with
  // the file, which ended its item.
  if (it->second.owns_host_fd) close(it->second.host_fd);
  regs_.erase(it);
}

Status EpollFile::Ctl(int op, const FileRef& target, int fd, const epoll_event& ev) {
  if (target.get() == this) return Errno(EINVAL);  // epoll_ctl(2): fd == epfd
  int hfd = target->PollFd();
  if (hfd < 0) return Errno(EPERM);
  if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL) return Errno(EINVAL);
  std::lock_guard l(mu_);
  Key key{target.get(), fd};
  auto found = ids_.find(key);
  if (op != EPOLL_CTL_ADD) {
    if (found == ids_.end()) return Errno(ENOENT);
    Registration& r = regs_[found->second];
    if (op == EPOLL_CTL_DEL) {
      if (epoll_ctl(host_fd(), EPOLL_CTL_DEL, r.host_fd, nullptr) != 0) return Errno(errno);
      DropLocked(found->second);
      return {};
    }
    epoll_event e = ev;
    e.data.u64 = found->second;
    if (epoll_ctl(host_fd(), EPOLL_CTL_MOD, r.host_fd, &e) != 0) return Errno(errno);
    r.data = ev.data.u64;
    r.events = ev.events;
    return {};
  }
  if (found != ids_.end()) return Errno(EEXIST);
  // The file's host fd, unless another fd of the same file holds it here.
  bool shared = false;
  for (auto k = FirstOfLocked(target.get()); k != ids_.end() && k->first.first == target.get();
       ++k) {
    if (!regs_[k->second].owns_host_fd) shared = true;
  }
  Registration r;
  r.key = key;
  r.file = target;
  r.data = ev.data.u64;
  r.events = ev.events;
  r.host_fd = hfd;
  r.src_fd = hfd;
  if (shared) {
    r.host_fd = fcntl(hfd, F_DUPFD_CLOEXEC, 0);
    if (r.host_fd < 0) return Errno(errno);
    r.owns_host_fd = true;
  }
  uint64_t id = next_id_++;
  epoll_event e = ev;
  e.data.u64 = id;
  if (epoll_ctl(host_fd(), EPOLL_CTL_ADD, r.host_fd, &e) != 0) {
    int err = errno;
    if (r.owns_host_fd) close(r.host_fd);
    return Errno(err);
  }
  ids_[key] = id;
  regs_[id] = std::move(r);
  if (hooked_.emplace(target.get(), target).second) {
    std::weak_ptr<EpollFile> self =
        std::static_pointer_cast<EpollFile>(shared_from_this());
    target->OnRelease(this, [self](const FileDescription* f) {
      if (auto ep = self.lock()) ep->Released(f);
    });
  }
  return {};
}

absl::Status EpollFile::AdoptInForkChild(ForkFileContext& ctx) {
  auto self = std::static_pointer_cast<EpollFile>(shared_from_this());
  ctx.deferred.push_back([self, &ctx] { return self->RebuildInForkChild(ctx); });
  return absl::OkStatus();
}

absl::Status EpollFile::RebuildInForkChild(ForkFileContext& ctx) {
  if (rebuilt_) return absl::OkStatus();
  rebuilt_ = true;
  // The seed's current masks, by registration id ("tfd: %8d events: %8x
  // data: %16llx ..." in fdinfo; ep_show_fdinfo()).
  std::map<uint64_t, uint32_t> masks;
  {
    std::string path = absl::StrCat("/proc/self/fdinfo/", host_fd());
    if (FILE* f = fopen(path.c_str(), "re")) {
      char line[256];
      while (fgets(line, sizeof(line), f) != nullptr) {
        int tfd;
        unsigned events;
        unsigned long long data;
        if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3) {
          masks[data] = events;
        }
      }
      fclose(f);
    }
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  std::vector<uint64_t> gone;
  for (auto& [id, r] : regs_) {
    FileRef f = r.file.lock();
    if (f == nullptr) {
      gone.push_back(id);
      continue;
    }
    // A nested instance first, so that we register its new host epoll.
    if (auto* inner = dynamic_cast<EpollFile*>(f.get())) {
      if (absl::Status s = inner->RebuildInForkChild(ctx); !s.ok()) {
        close(ep);
        return s;
      }
    }
    auto m = masks.find(id);
    const uint32_t events = m != masks.end() ? m->second : r.events;
    if (r.owns_host_fd) close(r.host_fd);  // our dup of the seed's object
    r.host_fd = -1;
    // A stdio file of a fork made ahead has no host fd until the request
    // brings the stdio: registered then (ForkFileContext::after_stdio).
    const bool later = std::any_of(ctx.stdio_later.begin(), ctx.stdio_later.end(),
                                   [&](const FileRef& s) { return s.get() == f.get(); });
    if (later) {
      std::weak_ptr<EpollFile> self = std::static_pointer_cast<EpollFile>(shared_from_this());
      ctx.after_stdio.push_back([self, id, events]() -> absl::Status {
        auto ep = self.lock();
        return ep == nullptr ? absl::OkStatus() : ep->RegisterLaterInForkChild(id, events);
      });
      continue;
    }
    if (absl::Status s = AddInForkChild(ep, id, events, r, *f, " again: "); !s.ok()) {
      close(ep);
      return s;
    }
  }
  for (uint64_t id : gone) DropLocked(id);
  return ReplaceHostFdInForkChild(ep);
}

absl::Status EpollFile::RegisterLaterInForkChild(uint64_t id, uint32_t events) {
  auto it = regs_.find(id);
  if (it == regs_.end()) return absl::OkStatus();
  FileRef f = it->second.file.lock();
  if (f == nullptr) return absl::OkStatus();
  return AddInForkChild(host_fd(), id, events, it->second, *f, " with the fork's stdio: ");
}

absl::Status EpollFile::AddInForkChild(int ep, uint64_t id, uint32_t events, Registration& r,
                                       FileDescription& f, const char* when) {
  const int hfd = f.PollFd();
  r.src_fd = hfd;
  r.host_fd = r.owns_host_fd ? fcntl(hfd, F_DUPFD_CLOEXEC, 0) : hfd;
  epoll_event e {};
  e.events = events;
  e.data.u64 = id;
  if (r.host_fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, r.host_fd, &e) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll: registering ", f.DisplayPath(), when, strerror(errno)));
  }
  return absl::OkStatus();
}

bool EpollFile::FollowPollFdLocked(uint64_t id, Registration& r, int now) {
  if (now < 0 || now == r.src_fd) return false;
  const int nfd = r.owns_host_fd ? fcntl(now, F_DUPFD_CLOEXEC, 0) : now;
  if (nfd < 0) return false;
  epoll_event e{};
  e.events = r.events;
  e.data.u64 = id;
  if (epoll_ctl(host_fd(), EPOLL_CTL_ADD, nfd, &e) != 0) {
    if (r.owns_host_fd) close(nfd);
    return false;
  }
  (void)epoll_ctl(host_fd(), EPOLL_CTL_DEL, r.host_fd, nullptr);
  if (r.owns_host_fd) close(r.host_fd);
  r.host_fd = nfd;
  r.src_fd = now;
  return true;
}

int EpollFile::FollowMovedPollFds(epoll_event* out, int kept, std::vector<HangupSeen>& hups) {
  // PollFd() outside mu_: a file's may take the file's own lock, under
  // which a file release can come to Released() and take ours.
  for (HangupSeen& h : hups) h.now = h.file->PollFd();
  std::lock_guard l(mu_);
  std::vector<bool> moved(kept, false);
  bool any = false;
  for (const HangupSeen& h : hups) {
    auto it = regs_.find(h.id);
    if (it == regs_.end()) continue;
    if (FollowPollFdLocked(it->first, it->second, h.now)) moved[h.index] = any = true;
  }
  if (!any) return kept;
  int n = 0;
  for (int i = 0; i < kept; ++i) {
    if (!moved[i]) out[n++] = out[i];
  }
  return n;
}

Result<int> EpollFile::Wait(Task& t, epoll_event* out, int max, const timespec* deadline,
                            bool poll_only) {
  for (bool last = false;;) {
    int n = epoll_wait(host_fd(), out, max, 0);
    if (n < 0 && errno != EINTR) return Errno(errno);
    if (n > 0) {
      // Host registration ids back to the guest's data; an event that
      // raced with its file's release is dropped.
      std::vector<HangupSeen> hups;
      std::unique_lock l(mu_);
      int kept = 0;
      for (int i = 0; i < n; ++i) {
        auto it = regs_.find(out[i].data.u64);
        if (it == regs_.end()) continue;
        FileRef f = it->second.file.lock();
        if (f == nullptr) {
          DropLocked(it->first);
          continue;
        }
        if (out[i].events & EPOLLHUP) hups.push_back({kept, it->first, f});
        out[kept] = out[i];
        out[kept].data.u64 = it->second.data;
        // What the host object cannot show (an overflowed eventfd's
        // EPOLLERR), reported whenever the host reports the file at all.
        out[kept].events |= static_cast<uint16_t>(f->PollErrorEvents());
        ++kept;
      }
      l.unlock();
      // A hangup on a host fd its file has left: what the new one shows
      // comes next instead.
      if (!hups.empty()) kept = FollowMovedPollFds(out, kept, hups);
      if (kept > 0) return kept;
      continue;  // only stale events: look again
    }
    if (poll_only || last) return 0;
    Status s = WaitFor(t, POLLIN, deadline);
    if (!s.ok()) {
      if (s.error() == Errno(ETIMEDOUT)) {
        last = true;  // one more look, then time out
        continue;
      }
      // A park (sandbox quiesce) is not a signal: wait again afterwards.
      if (TaskParkInterrupted(t)) return Errno(kERESTARTNOINTR);
      // epoll_wait(2) is never restarted after a signal handler.
      return Errno(EINTR);
    }
  }
}

}  // namespace seedvisor::sentry
