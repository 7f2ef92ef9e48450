#include "shim/oom_watcher.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "shim/log.h"

namespace seedvisor::shim {

OomWatcher::OomWatcher(std::function<void(const std::string& id)> on_oom, std::string mount_root)
    : on_oom_(std::move(on_oom)), mount_root_(std::move(mount_root)) {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_ >= 0 && wake_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  }
}

OomWatcher::~OomWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(wake_, &one, sizeof(one)) < 0) ShimLog("oom watcher: wake: %s", std::strerror(errno));
    thread_.join();
  }
  absl::MutexLock l(&mu_);
  while (!fds_.empty()) Drop(fds_.begin()->first);
  if (wake_ >= 0) close(wake_);
  if (epoll_ >= 0) close(epoll_);
}

absl::Status OomWatcher::Watch(const std::string& id, const std::string& cgroup_path) {
  absl::StatusOr<int> efd = container::RegisterOomEventFd(cgroup_path, mount_root_);
  if (!efd.ok()) return efd.status();
  return WatchFd(id, cgroup_path, *efd);
}

absl::Status OomWatcher::WatchFd(const std::string& id, const std::string& cgroup_path, int efd) {
  if (epoll_ < 0 || wake_ < 0) {
    close(efd);
    return absl::InternalError("oom watcher: no epoll or eventfd");
  }
  absl::MutexLock l(&mu_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = efd;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, efd, &ev) != 0) {
    int e = errno;
    close(efd);
    return absl::InternalError(absl::StrCat("oom watcher: epoll_ctl: ", std::strerror(e)));
  }
  fds_[efd] = {id, cgroup_path};
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void OomWatcher::Unwatch(const std::string& id) {
  absl::MutexLock l(&mu_);
  for (auto it = fds_.begin(); it != fds_.end();) {
    int fd = it->first;
    ++it;
    if (fds_[fd].id == id) Drop(fd);
  }
}

void OomWatcher::Drop(int fd) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  // Closing the eventfd also ends the kernel's registration.
  close(fd);
  fds_.erase(fd);
}

void OomWatcher::Loop() {
  for (;;) {
    epoll_event evs[8];
    int n = epoll_wait(epoll_, evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      ShimLog("oom watcher: epoll_wait: %s", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == wake_) return;
      std::string id;
      {
        absl::MutexLock l(&mu_);
        auto it = fds_.find(fd);
        if (it == fds_.end()) continue;  // unwatched meanwhile
        uint64_t count = 0;
        if (read(fd, &count, sizeof(count)) != sizeof(count)) continue;
        // cgroup v1 signals every registered event when the cgroup is
        // removed (memcg_event_remove): then this is no OOM.
        struct stat st;
        std::string ctl = absl::StrCat(mount_root_, "/memory/", it->second.cgroup_path,
                                       "/cgroup.event_control");
        if (stat(ctl.c_str(), &st) != 0) {
          Drop(fd);
          continue;
        }
        id = it->second.id;
      }
      on_oom_(id);  // outside the lock: it publishes over ttrpc
    }
  }
}

}  // namespace seedvisor::shim
