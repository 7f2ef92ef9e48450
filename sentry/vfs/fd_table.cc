#include "sentry/vfs/fd_table.h"

#include <algorithm>

namespace seedvisor::sentry {

Result<int> FdTable::Install(FileRef file, bool cloexec, int min_fd, int limit) {
  absl::MutexLock l(&mu_);
  const int fd = min_fd >= limit ? min_fd : used_.LowestClear(std::max(min_fd, 0));
  if (fd >= limit) return Errno(EMFILE);
  used_.Set(fd);
  fds_[fd] = Entry{std::move(file), cloexec};
  return fd;
}

Status FdTable::InstallAt(int fd, FileRef file, bool cloexec, int limit) {
  if (fd < 0 || fd >= limit) return Errno(EBADF);
  FileRef old;
  {
    absl::MutexLock l(&mu_);
    used_.Set(fd);
    auto& e = fds_[fd];
    old = std::move(e.file);
    e = Entry{std::move(file), cloexec};
  }
  return {};
}

Result<FileRef> FdTable::Get(int fd) const {
  absl::MutexLock l(&mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno(EBADF);
  return it->second.file;
}

Result<FdTable::Entry> FdTable::GetEntry(int fd) const {
  absl::MutexLock l(&mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno(EBADF);
  return it->second;
}

Status FdTable::SetCloexec(int fd, bool cloexec) {
  absl::MutexLock l(&mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno(EBADF);
  it->second.cloexec = cloexec;
  return {};
}

Result<FileRef> FdTable::Remove(int fd) {
  absl::MutexLock l(&mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Errno(EBADF);
  FileRef f = std::move(it->second.file);
  fds_.erase(it);
  used_.Clear(fd);
  return f;
}

void FdTable::CloseOnExec() {
  std::vector<FileRef> dropped;
  absl::MutexLock l(&mu_);
  for (auto it = fds_.begin(); it != fds_.end();) {
    if (it->second.cloexec) {
      dropped.push_back(std::move(it->second.file));
      used_.Clear(it->first);
      it = fds_.erase(it);
    } else {
      ++it;
    }
  }
}

std::shared_ptr<FdTable> FdTable::Fork() const {
  auto t = std::make_shared<FdTable>();
  absl::MutexLock l(&mu_);
  t->fds_ = fds_;
  t->used_ = used_;
  return t;
}

std::map<int, FdTable::Entry> FdTable::Snapshot() const {
  absl::MutexLock l(&mu_);
  return fds_;
}

std::vector<int> FdTable::Numbers() const {
  std::vector<int> out;
  absl::MutexLock l(&mu_);
  out.reserve(fds_.size());
  for (const auto& [fd, e] : fds_) out.push_back(fd);
  return out;
}

void FdTable::Clear() {
  std::map<int, Entry> dropped;
  absl::MutexLock l(&mu_);
  dropped.swap(fds_);
  used_.ClearAll();
}

}  // namespace seedvisor::sentry
